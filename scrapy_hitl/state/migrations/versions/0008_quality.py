"""Quality gate: scored items, their versions and audit trail, and the pages they came from.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_evidence",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE")),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("encoding", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_item_evidence_run_id", "item_evidence", ["run_id"])

    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE")),
        sa.Column("spider", sa.String(200), nullable=False),
        sa.Column("item_type", sa.String(200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deliverable", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("breakdown", sa.JSON(), nullable=False),
        sa.Column("failing", sa.JSON(), nullable=False),
        sa.Column("evidence_id", sa.Integer(), sa.ForeignKey("item_evidence.id", ondelete="SET NULL")),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("review_deadline", sa.DateTime(timezone=True)),
        sa.Column("on_timeout", sa.String(8), nullable=False),
        sa.Column("reviewed_by", sa.String(255)),
        sa.Column("reviewed_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_items_run_id_status_id", "items", ["run_id", "status", "id"])
    op.create_index("ix_items_run_id_deliverable_id", "items", ["run_id", "deliverable", "id"])
    op.create_index("ix_items_status_deadline", "items", ["status", "review_deadline"])

    op.create_table(
        "item_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("uq_item_versions_item_id_version", "item_versions", ["item_id", "version"], unique=True)

    op.create_table(
        "item_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_item_events_item_id", "item_events", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_item_events_item_id", table_name="item_events")
    op.drop_table("item_events")
    op.drop_index("uq_item_versions_item_id_version", table_name="item_versions")
    op.drop_table("item_versions")
    op.drop_index("ix_items_status_deadline", table_name="items")
    op.drop_index("ix_items_run_id_deliverable_id", table_name="items")
    op.drop_index("ix_items_run_id_status_id", table_name="items")
    op.drop_table("items")
    op.drop_index("ix_item_evidence_run_id", table_name="item_evidence")
    op.drop_table("item_evidence")
