"""Session pools: several named sessions per domain, each with its health record, and a
per-domain record of probes and observed session lifetimes.

The ``sessions`` table's key becomes (domain, name); existing sessions are kept under the
name ``default``. The copy-and-rename works the same on SQLite and PostgreSQL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
_OLD = ("domain", "secret", "cookie_names", "source_format", "health", "health_reason", "captured_at",
        "last_validated", "expires_at", "captured_by")


def upgrade() -> None:
    op.create_table(
        "session_pool",
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("cookie_names", sa.JSON(), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),  # origins with localStorage (no values)
        sa.Column("source_format", sa.String(32), nullable=False),
        sa.Column("health", sa.String(16), nullable=False),
        sa.Column("health_reason", sa.String(255), nullable=False),
        sa.Column("captured_at", TS, nullable=False),
        sa.Column("last_validated", TS),
        sa.Column("expires_at", TS),
        sa.Column("captured_by", sa.String(255), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error_score", sa.Float(), nullable=False, server_default="0"),
        sa.Column("last_used", TS),
        sa.Column("retired_at", TS),
    )
    cols = ", ".join(_OLD)
    op.execute(f"INSERT INTO session_pool ({cols}, name, origins, uses, errors, error_score) "  # noqa: S608
               f"SELECT {cols}, 'default', '[]', 0, 0, 0 FROM sessions")
    op.drop_table("sessions")
    op.rename_table("session_pool", "sessions")
    op.create_table(
        "session_domains",
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("probe_url", sa.Text(), nullable=False, server_default=""),
        sa.Column("probe_selector", sa.Text(), nullable=False, server_default=""),
        sa.Column("probe_status", sa.Integer()),
        sa.Column("probe_result", sa.String(16), nullable=False, server_default=""),
        sa.Column("probe_detail", sa.Text(), nullable=False, server_default=""),
        sa.Column("probe_at", TS),
        sa.Column("lifetimes", sa.JSON(), nullable=False),  # seconds each retired session stayed valid
        sa.Column("required_reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("session_domains")
    op.create_table(
        "sessions_old",
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("cookie_names", sa.JSON(), nullable=False),
        sa.Column("source_format", sa.String(32), nullable=False),
        sa.Column("health", sa.String(16), nullable=False),
        sa.Column("health_reason", sa.String(255), nullable=False),
        sa.Column("captured_at", TS, nullable=False),
        sa.Column("last_validated", TS),
        sa.Column("expires_at", TS),
        sa.Column("captured_by", sa.String(255), nullable=False),
    )
    cols = ", ".join(_OLD)
    # one session per domain again: the first by name
    op.execute(f"INSERT INTO sessions_old ({cols}) SELECT {cols} FROM sessions s "  # noqa: S608
               "WHERE s.name = (SELECT MIN(t.name) FROM sessions t WHERE t.domain = s.domain)")
    op.drop_table("sessions")
    op.rename_table("sessions_old", "sessions")
