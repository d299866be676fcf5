"""Notifications: the outbox ``hitl worker`` delivers from, its attempts, and escalations.

The worker's router (``hitl_console.notify.router``) reads the event stream, matches the
rules, and calls ``add`` for each channel a rule names. Nothing on the crawl's side waits
for any of it: a crawl only writes its events, as it always did.

Storms are grouped (``HITL_NOTIFY_THROTTLE``): events of one rule and domain share a
``group_key`` per channel. While the group's latest message is not sent yet (pending, no
attempt started), ``add`` only raises its ``grouped`` count. Otherwise, if that message's
window (``scheduled_at`` + throttle) is still open, a new message is scheduled for the end
of the window; the events until then are grouped into it. So one message per window at
most, and the next says how many it stands for.

The life of a message, as for webhooks (``webhook_events``)::

    pending ──claim (lease)──► delivered | failed
       ▲            │ error
       └── retry: next_attempt_at = now + backoff

Every attempt is a ``notification_attempts`` row (outcome, error, duration), written with
the message's new state in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from scrapy_hitl.state import leases
from scrapy_hitl.state.models import Notification, NotificationAttempt, NotifyChannel, NotifyEscalation, iso, utcnow

if TYPE_CHECKING:
    import redis

    from scrapy_hitl.state.db import Database

logger = logging.getLogger(__name__)

QUEUE = "hitl-notify"  # the RQ queue `hitl worker` serves for notifications
JOB = "hitl_console.notify.delivery.deliver"  # by name: the state layer never imports the console
FAILURE_TTL = 7 * 24 * 3600
ERROR_CHARS = 2000
INTERRUPTED = "interrupted: the worker stopped during this attempt (its lease expired)"


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    channel_id: int
    rule_id: int | None
    event_type: str
    subject_kind: str
    subject_id: str
    domain: str
    grouped: int
    escalation_step: int
    data: dict[str, Any]
    attempt: int
    created_at: datetime
    lease_token: str


def to_dict(row: Notification, channel_name: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id, "channel_id": row.channel_id, "channel": channel_name, "rule_id": row.rule_id,
        "event_type": row.event_type, "subject_kind": row.subject_kind, "subject_id": row.subject_id,
        "domain": row.domain, "grouped": row.grouped, "escalation_step": row.escalation_step,
        "state": row.state, "attempts": row.attempts, "title": row.title, "last_error": row.last_error,
        "scheduled_at": iso(row.scheduled_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.state == "pending" else None,
        "created_at": iso(row.created_at), "delivered_at": iso(row.delivered_at),
    }


def attempt_to_dict(row: NotificationAttempt) -> dict[str, Any]:
    return {"id": row.id, "notification_id": row.notification_id, "channel_id": row.channel_id,
            "event_type": row.event_type, "attempt": row.attempt, "outcome": row.outcome, "error": row.error,
            "duration_ms": row.duration_ms, "created_at": iso(row.created_at)}


# --- the outbox --------------------------------------------------------------------------------


def add(
    db: Database,
    *,
    channel_id: int,
    group_key: str,
    event_type: str,
    throttle: float,
    rule_id: int | None = None,
    subject_kind: str = "",
    subject_id: str = "",
    domain: str = "",
    data: dict[str, Any] | None = None,
    escalation_step: int = 0,
    now: datetime | None = None,
) -> tuple[int, datetime] | None:
    """One event for ``channel_id`` in group ``group_key``. Returns ``(id, when)`` of a new
    message to queue at ``when``, or None when the event joined a message not sent yet."""
    now = now or utcnow()
    with db.session() as s:
        when = now
        if throttle > 0:  # 0 (HITL_NOTIFY_THROTTLE=0): no grouping, every event is its own message
            waiting = (select(Notification.id)
                       .where(Notification.group_key == group_key, Notification.state == "pending",
                              Notification.attempts == 0, Notification.lease_token.is_(None))
                       .order_by(Notification.id.desc()).limit(1)).scalar_subquery()
            joined = s.execute(update(Notification).where(Notification.id == waiting)
                               .values(grouped=Notification.grouped + 1, updated_at=now)
                               .execution_options(synchronize_session=False)).rowcount
            if joined:
                return None
            last = s.scalars(select(Notification.scheduled_at).where(Notification.group_key == group_key)
                             .order_by(Notification.id.desc()).limit(1)).first()
            if last is not None:
                when = max(now, _aware(last) + timedelta(seconds=throttle))  # type: ignore[operator]
        row = Notification(channel_id=channel_id, rule_id=rule_id, event_type=event_type,
                           subject_kind=subject_kind, subject_id=str(subject_id or ""), domain=domain or "",
                           group_key=group_key[:400], grouped=1, escalation_step=escalation_step,
                           data=data or {}, state="pending", attempts=0, scheduled_at=when,
                           next_attempt_at=when, title="", created_at=now, updated_at=now)
        s.add(row)
        s.flush()
        return row.id, when


def enqueue(client: redis.Redis, notification_id: int, *, at: datetime | None = None) -> None:
    """Queue the delivery job now, or at ``at`` (RQ's scheduler moves it then)."""
    from rq import Queue

    queue = Queue(QUEUE, connection=client)
    options: dict[str, Any] = {"result_ttl": 0, "failure_ttl": FAILURE_TTL,
                               "description": f"notification {notification_id}"}
    if at is None or at <= utcnow():
        queue.enqueue(JOB, notification_id, **options)
    else:
        queue.enqueue_at(at, JOB, notification_id, **options)


def dispatch(client: redis.Redis, notification_id: int, at: datetime | None = None) -> None:
    """Queue, never raise: the sweep sends what a failed enqueue left behind."""
    try:
        enqueue(client, notification_id, at=at)
    except Exception as exc:
        logger.warning("Could not queue notification %(id)s (%(error)s); the worker's sweep will send it",
                       {"id": notification_id, "error": exc})


def claim(db: Database, notification_id: int, *, lease_seconds: float, now: datetime | None = None) -> Claim | None:
    """Start an attempt if the message is pending, due and not leased (or its lease
    expired); None otherwise."""
    now = now or utcnow()
    with db.session() as s:
        row, token, interrupted = leases.take(s, Notification, notification_id, lease_seconds=lease_seconds, now=now)
        if row is None:
            return None
        if interrupted:
            s.add(NotificationAttempt(notification_id=row.id, channel_id=row.channel_id, event_type=row.event_type,
                                      attempt=row.attempts - 1, outcome="interrupted", error=INTERRUPTED,
                                      created_at=now))
        return Claim(id=row.id, channel_id=row.channel_id, rule_id=row.rule_id, event_type=row.event_type,
                     subject_kind=row.subject_kind, subject_id=row.subject_id, domain=row.domain,
                     grouped=row.grouped, escalation_step=row.escalation_step, data=dict(row.data or {}),
                     attempt=row.attempts, created_at=_aware(row.created_at) or now, lease_token=token)


def finish(
    db: Database,
    claim: Claim,
    outcome: str,
    *,
    error: str | None = None,
    duration_ms: int | None = None,
    title: str = "",
    next_attempt_at: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """End the attempt: ``delivered``, ``retry`` (at ``next_attempt_at``), ``failed``, or
    ``cancelled`` (not sent: an escalation whose item was taken or closed meanwhile).
    The attempt is recorded either way; False if the lease was lost meanwhile."""
    now = now or utcnow()
    values: dict[str, Any] = {"lease_token": None, "lease_until": None, "updated_at": now,
                              "last_error": error[:ERROR_CHARS] if error else None}
    if title:
        values["title"] = title
    if outcome == "retry":
        if next_attempt_at is None:
            raise ValueError("a retry needs next_attempt_at")
        values.update(state="pending", next_attempt_at=next_attempt_at)
    elif outcome == "delivered":
        values.update(state="delivered", delivered_at=now)
    elif outcome in ("failed", "cancelled"):
        values.update(state=outcome)
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    with db.session() as s:
        won = s.execute(update(Notification)
                        .where(Notification.id == claim.id, Notification.lease_token == claim.lease_token)
                        .values(**values).execution_options(synchronize_session=False)).rowcount
        s.add(NotificationAttempt(notification_id=claim.id, channel_id=claim.channel_id,
                                  event_type=claim.event_type, attempt=claim.attempt,
                                  outcome=outcome if outcome in ("delivered", "cancelled") else "error",
                                  error=error[:ERROR_CHARS] if error else None, duration_ms=duration_ms,
                                  created_at=now))
    return bool(won)


def due(db: Database, *, now: datetime | None = None, grace: float = 0.0, limit: int = 500) -> list[int]:
    """For the sweep: pending messages due ``grace`` seconds ago or more, not leased."""
    now = now or utcnow()
    q = (select(Notification.id)
         .where(Notification.state == "pending", Notification.next_attempt_at <= now - timedelta(seconds=grace),
                or_(Notification.lease_until.is_(None), Notification.lease_until <= now))
         .order_by(Notification.next_attempt_at, Notification.id).limit(limit))
    with db.session() as s:
        return list(s.scalars(q))


# --- reads -------------------------------------------------------------------------------------


def get(db: Database, notification_id: int) -> dict[str, Any] | None:
    with db.session() as s:
        row = s.get(Notification, notification_id)
        return to_dict(row) if row is not None else None


def list_(db: Database, *, limit: int = 50, before: int | None = None, channel_id: int | None = None,
          state: str | None = None, subject: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """Newest first; ``before``: ids below it (the next page)."""
    q = (select(Notification, NotifyChannel.name).join(NotifyChannel, NotifyChannel.id == Notification.channel_id)
         .order_by(Notification.id.desc()).limit(limit))
    if before is not None:
        q = q.where(Notification.id < before)
    if channel_id is not None:
        q = q.where(Notification.channel_id == channel_id)
    if state is not None:
        q = q.where(Notification.state == state)
    if subject is not None:
        q = q.where(Notification.subject_kind == subject[0], Notification.subject_id == str(subject[1]))
    with db.session() as s:
        return [to_dict(row, name) for row, name in s.execute(q)]


def attempts(db: Database, *, notification_id: int | None = None, limit: int = 100,
             before: int | None = None) -> list[dict[str, Any]]:
    """Attempts, newest first: of one message, or of all (the Notifications page)."""
    q = select(NotificationAttempt).order_by(NotificationAttempt.id.desc()).limit(limit)
    if notification_id is not None:
        q = q.where(NotificationAttempt.notification_id == notification_id)
    if before is not None:
        q = q.where(NotificationAttempt.id < before)
    with db.session() as s:
        return [attempt_to_dict(r) for r in s.scalars(q)]


# --- escalations -------------------------------------------------------------------------------


def start_escalation(db: Database, *, rule_id: int, subject_kind: str, subject_id: int, after: float,
                     now: datetime | None = None) -> int | None:
    """Begin a rule's chain for an item (once per rule and item)."""
    now = now or utcnow()
    with db.session() as s:
        exists = s.scalars(select(NotifyEscalation.id).where(
            NotifyEscalation.rule_id == rule_id, NotifyEscalation.subject_kind == subject_kind,
            NotifyEscalation.subject_id == subject_id)).first()
        if exists is not None:
            return None
        row = NotifyEscalation(rule_id=rule_id, subject_kind=subject_kind, subject_id=subject_id, step=0,
                               due_at=now + timedelta(seconds=after), state="pending", reason="",
                               created_at=now, updated_at=now)
        s.add(row)
        s.flush()
        return row.id


def escalation_to_dict(row: NotifyEscalation) -> dict[str, Any]:
    return {"id": row.id, "rule_id": row.rule_id, "subject_kind": row.subject_kind, "subject_id": row.subject_id,
            "step": row.step, "due_at": iso(row.due_at), "state": row.state, "reason": row.reason}


def due_escalations(db: Database, *, now: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
    now = now or utcnow()
    q = (select(NotifyEscalation).where(NotifyEscalation.state == "pending", NotifyEscalation.due_at <= now)
         .order_by(NotifyEscalation.due_at, NotifyEscalation.id).limit(limit))
    with db.session() as s:
        return [escalation_to_dict(r) for r in s.scalars(q)]


def advance(db: Database, escalation_id: int, *, from_step: int, next_due: datetime | None, state: str = "pending",
            reason: str = "", now: datetime | None = None) -> bool:
    """Move a chain past ``from_step`` (to the next step due ``next_due``, or to ``state``
    done / stopped). Conditional on the step, so two sweeps never notify one step twice."""
    now = now or utcnow()
    values: dict[str, Any] = {"updated_at": now, "reason": reason[:255]}
    if state == "pending" and next_due is not None:
        values.update(step=from_step + 1, due_at=next_due)
    else:
        values.update(state=state)
    with db.session() as s:
        return bool(s.execute(update(NotifyEscalation)
                              .where(NotifyEscalation.id == escalation_id, NotifyEscalation.step == from_step,
                                     NotifyEscalation.state == "pending")
                              .values(**values).execution_options(synchronize_session=False)).rowcount)


def stop_escalations(db: Database, subject_kind: str, subject_id: int, *, reason: str,
                     now: datetime | None = None) -> int:
    """Stop every pending chain of an item (it was resolved, cancelled, answered)."""
    now = now or utcnow()
    with db.session() as s:
        return s.execute(update(NotifyEscalation)
                         .where(and_(NotifyEscalation.subject_kind == subject_kind,
                                     NotifyEscalation.subject_id == subject_id, NotifyEscalation.state == "pending"))
                         .values(state="stopped", reason=reason[:255], updated_at=now)
                         .execution_options(synchronize_session=False)).rowcount


def escalations_for(db: Database, subject_kind: str, subject_id: int) -> list[dict[str, Any]]:
    q = (select(NotifyEscalation).where(NotifyEscalation.subject_kind == subject_kind,
                                        NotifyEscalation.subject_id == subject_id).order_by(NotifyEscalation.id))
    with db.session() as s:
        return [escalation_to_dict(r) for r in s.scalars(q)]
