"""Alembic environment. The connection comes from ``scrapy_hitl.state.db.Database``."""

from __future__ import annotations

from alembic import context

from scrapy_hitl.state.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
)
with context.begin_transaction():
    context.run_migrations()
