"""Notifications: channels (Apprise URLs, encrypted), rules, the outbox and its attempts,
escalation chains, and who owns ("I'm on it") an intervention or a consultation.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for table in ("interventions", "consultations"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
            batch.add_column(sa.Column("owned_at", _TS, nullable=True))
    op.create_table(
        "notify_channels",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("scheme", sa.String(32), nullable=False),
        sa.Column("url_secret", sa.LargeBinary(), nullable=False),
        sa.Column("url_redacted", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_failure_at", _TS, nullable=True),
        sa.Column("last_success_at", _TS, nullable=True),
    )
    op.create_table(
        "notify_rules",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("escalate", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel_id", sa.Integer(), sa.ForeignKey("notify_channels.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("notify_rules.id", ondelete="SET NULL"), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("group_key", sa.String(400), nullable=False),
        sa.Column("grouped", sa.Integer(), nullable=False),
        sa.Column("escalation_step", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", _TS, nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
    )
    op.create_index("ix_notifications_channel_id", "notifications", ["channel_id"])
    op.create_index("ix_notifications_state_next_attempt_at", "notifications", ["state", "next_attempt_at"])
    op.create_index("ix_notifications_group_key_id", "notifications", ["group_key", "id"])
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("notification_id", sa.Integer(), sa.ForeignKey("notifications.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("channel_id", sa.Integer(), sa.ForeignKey("notify_channels.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_notification_attempts_notification_id", "notification_attempts", ["notification_id"])
    op.create_table(
        "notify_escalations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("notify_rules.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_notify_escalations_state_due_at", "notify_escalations", ["state", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_notify_escalations_state_due_at", table_name="notify_escalations")
    op.drop_table("notify_escalations")
    op.drop_index("ix_notification_attempts_notification_id", table_name="notification_attempts")
    op.drop_table("notification_attempts")
    op.drop_index("ix_notifications_group_key_id", table_name="notifications")
    op.drop_index("ix_notifications_state_next_attempt_at", table_name="notifications")
    op.drop_index("ix_notifications_channel_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notify_rules")
    op.drop_table("notify_channels")
    for table in ("consultations", "interventions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owned_at")
            batch.drop_column("owner")
