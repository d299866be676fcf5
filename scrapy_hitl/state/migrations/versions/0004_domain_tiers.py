"""Escalation tiers learned per URL path pattern (domains.tiers).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain-string server default: existing rows get '{}', and SQLite adds the column in
    # place (a SQL-expression default would make the batch copy the table).
    with op.batch_alter_table("domains") as batch:
        batch.add_column(sa.Column("tiers", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    # recreate="never": SQLite (3.35+) drops the column in place. Copying the table instead
    # would DROP domains, and with foreign_keys=ON that cascades to domain_samples.
    with op.batch_alter_table("domains", recreate="never") as batch:
        batch.drop_column("tiers")
