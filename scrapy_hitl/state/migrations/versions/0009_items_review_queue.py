"""The review queue's order: items of a status, lowest score first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The console's queue pages by (score, id) within a status, optionally of one run.
    op.create_index("ix_items_status_score_id", "items", ["status", "score", "id"])
    op.create_index("ix_items_run_id_status_score_id", "items", ["run_id", "status", "score", "id"])


def downgrade() -> None:
    op.drop_index("ix_items_run_id_status_score_id", table_name="items")
    op.drop_index("ix_items_status_score_id", table_name="items")
