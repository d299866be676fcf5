"""A token version per user (users.token_version): a password change or a disable revokes
every JWT issued before it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain-string server default: existing rows get 0, and SQLite adds the column in place.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # recreate="never": SQLite (3.35+) drops the column in place (see 0004).
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.drop_column("token_version")
