"""A session probe may run in a browser (session_domains.probe_browser): headless Chromium
started from the session's storage state, so a login kept only in localStorage can be checked.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing probes stay plain HTTP probes (false); SQLite adds the column in place.
    with op.batch_alter_table("session_domains") as batch:
        batch.add_column(sa.Column("probe_browser", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # recreate="never": SQLite (3.35+) drops the column in place (see 0004).
    with op.batch_alter_table("session_domains", recreate="never") as batch:
        batch.drop_column("probe_browser")
