"""Block-rate history per domain (domain_samples), and an index for newest-first run pages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domain_samples",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "domain",
            sa.String(255),
            sa.ForeignKey("domains.domain", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("blocked_403", sa.Integer(), nullable=False),
        sa.Column("blocked_401", sa.Integer(), nullable=False),
        sa.Column("captchas", sa.Integer(), nullable=False),
        sa.Column("hard_blocks", sa.Integer(), nullable=False),
    )
    op.create_index("ix_domain_samples_domain_at", "domain_samples", ["domain", "at"])
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_created_at_id", table_name="runs")
    op.drop_table("domain_samples")
