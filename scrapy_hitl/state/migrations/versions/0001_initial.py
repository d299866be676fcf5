"""Initial schema: runs, interventions and their history, sessions, domains.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("spider", sa.String(200), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("project_dir", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("finish_reason", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS),
    )
    op.create_index("ix_runs_spider", "runs", ["spider"])
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "interventions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("vendor", sa.String(64)),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("spider", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("parked_count", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("response_status", sa.Integer()),
        sa.Column("response_headers", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("resolution", sa.JSON(), nullable=False),
        sa.Column("resolved_by", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("resolved_at", TS),
    )
    op.create_index("ix_interventions_domain", "interventions", ["domain"])
    op.create_index("ix_interventions_status_id", "interventions", ["status", "id"])
    op.create_index(
        "uq_interventions_open_domain_type",
        "interventions",
        ["domain", "type"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )

    op.create_table(
        "intervention_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "intervention_id",
            sa.Integer(),
            sa.ForeignKey("interventions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index(
        "ix_intervention_events_intervention_id", "intervention_events", ["intervention_id"]
    )

    op.create_table(
        "sessions",
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

    op.create_table(
        "domains",
        sa.Column("domain", sa.String(255), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("successes", sa.Integer(), nullable=False),
        sa.Column("blocked_403", sa.Integer(), nullable=False),
        sa.Column("blocked_401", sa.Integer(), nullable=False),
        sa.Column("captchas", sa.Integer(), nullable=False),
        sa.Column("hard_blocks", sa.Integer(), nullable=False),
        sa.Column("engine_stats", sa.JSON(), nullable=False),
        sa.Column("access_class", sa.String(16), nullable=False),
        sa.Column("requires_session", sa.String(16), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("domains")
    op.drop_table("sessions")
    op.drop_table("intervention_events")
    op.drop_table("interventions")
    op.drop_table("runs")
