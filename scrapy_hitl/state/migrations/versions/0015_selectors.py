"""Selector fixer: reviewers' selector overrides (versioned, audited), the fields spiders
declare, fingerprints of good elements, and the pages the fixer tests selectors on.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "selector_overrides",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("spider", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("css", sa.Text(), nullable=True),
        sa.Column("xpath", sa.Text(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("intervention_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("uq_selector_overrides_version", "selector_overrides",
                    ["spider", "domain", "field", "version"], unique=True)
    op.create_table(
        "selector_declarations",
        sa.Column("spider", sa.String(200), primary_key=True),
        sa.Column("declaration", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "selector_fingerprints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("spider", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("pattern", sa.String(255), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("uq_selector_fingerprints_key", "selector_fingerprints",
                    ["spider", "domain", "pattern", "field"], unique=True)
    op.create_table(
        "selector_pages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("spider", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("pattern", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("html", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_selector_pages_key", "selector_pages", ["spider", "domain", "kind"])


def downgrade() -> None:
    op.drop_index("ix_selector_pages_key", table_name="selector_pages")
    op.drop_table("selector_pages")
    op.drop_index("uq_selector_fingerprints_key", table_name="selector_fingerprints")
    op.drop_table("selector_fingerprints")
    op.drop_table("selector_declarations")
    op.drop_index("uq_selector_overrides_version", table_name="selector_overrides")
    op.drop_table("selector_overrides")
