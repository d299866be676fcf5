"""Error snapshots: the first failure of each kind in a run, per domain, with its page.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "error_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("spider", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("html_type", sa.String(100), nullable=False),
        sa.Column("html_size", sa.Integer(), nullable=False),
        sa.Column("html", sa.LargeBinary(), nullable=True),
        sa.Column("screenshot_size", sa.Integer(), nullable=False),
        sa.Column("screenshot", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("uq_error_snapshots_key", "error_snapshots", ["run_id", "domain", "source", "code"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("uq_error_snapshots_key", table_name="error_snapshots")
    op.drop_table("error_snapshots")
