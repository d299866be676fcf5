"""Webhook events: the transactional outbox the webhook worker delivers from.

A consultation with a ``callback_url`` (asked by an agent, so there is a key to sign with)
that becomes ``responded`` or ``timed_out`` gets one ``webhook_events`` row, written by
``add`` *in the transaction that makes the transition*: the webhook exists exactly when the
transition does. After the commit, ``dispatch`` enqueues an RQ job for it; if that enqueue
fails (Redis down) or the worker dies mid-delivery, the worker's sweep finds the event again
(``due``): it is pending, due, and not leased (or its lease expired).

The life of an event::

    pending ──claim──► (attempt in flight: lease) ──► delivered | failed | disabled
       ▲                        │ non-2xx, timeout, connection error
       └──── retry: next_attempt_at = now + backoff ◄┘

``claim`` starts an attempt: a conditional UPDATE, so of two workers exactly one gets it. It
counts the attempt and takes a lease (``lease_token`` + ``lease_until``). ``finish`` ends it
and records it in ``webhook_deliveries`` in one transaction, and only changes the event while
its lease is still held. A claim that takes over an expired lease records the lost attempt as
interrupted. Every attempt of one event sends the same ``webhook_id`` and the same body.

Sending, signing and the retry policy live in the worker (``hitl_console.webhooks``); this
module only knows the records, and the name of the RQ job that sends them.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from scrapy_hitl.state import deliveries, leases
from scrapy_hitl.state.models import ConsultationEvent, WebhookEvent, iso, utcnow

if TYPE_CHECKING:
    import redis
    from sqlalchemy.orm import Session

    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.db import Database
    from scrapy_hitl.state.models import Consultation

logger = logging.getLogger(__name__)

QUEUE = "hitl-webhooks"  # the RQ queue `hitl worker` serves
JOB = "hitl_console.webhooks.delivery.deliver"  # by name: the state layer never imports the console
FAILURE_TTL = 7 * 24 * 3600  # seconds RQ keeps a job that raised (the event itself is retried)
# The consultation states that send a webhook, and the event type each sends. A cancelled
# consultation sends none: the agent cancelled it itself.
EVENT_TYPES = {"responded": "consultation.responded", "timed_out": "consultation.timed_out"}
INTERRUPTED = "interrupted: the worker stopped during this attempt (its lease expired)"


class NoWebhook(LookupError):
    """Raised by ``redeliver`` for a consultation that never had a webhook (no callback_url,
    or not answered or timed out yet): the API answers 409 ``no_webhook``."""


@dataclass(frozen=True, slots=True)
class Claim:
    """An attempt in flight, as ``claim`` handed it out."""

    id: int
    webhook_id: str
    consultation_id: int
    api_key_id: int
    event_type: str
    url: str
    payload: str
    attempt: int  # the attempt number, 1 for the first ever
    round_attempt: int  # the attempt number since the last redelivery (what the maximum counts)
    lease_token: str


def _aware(dt: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone=True columns.
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def new_webhook_id() -> str:
    """A Standard Webhooks message id: ``msg_`` and 32 hex characters."""
    return "msg_" + secrets.token_hex(16)


def event_to_dict(row: WebhookEvent) -> dict[str, Any]:
    return {
        "webhook_id": row.webhook_id,
        "event_type": row.event_type,
        "url": row.url,
        "state": row.state,
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.state == "pending" else None,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "delivered_at": iso(row.delivered_at),
    }


# --- writes ------------------------------------------------------------------------------------


def add(s: Session, row: Consultation, state: str, data: dict[str, Any]) -> int | None:
    """In the caller's transaction (``consultations._transition``): the webhook for ``row``
    entering ``state``, if it sends one; returns its id, else None. ``data`` is the
    consultation as the API shows it, sent as the payload's ``data``."""
    event_type = EVENT_TYPES.get(state)
    if event_type is None or not row.callback_url or row.api_key_id is None:
        return None
    now = utcnow()
    body = json.dumps({"type": event_type, "timestamp": iso(now), "data": data},
                      separators=(",", ":"), ensure_ascii=False, default=str)
    event = WebhookEvent(
        webhook_id=new_webhook_id(), consultation_id=row.id, api_key_id=row.api_key_id,
        event_type=event_type, url=row.callback_url, payload=body, state="pending", attempts=0,
        attempt_offset=0, next_attempt_at=now, created_at=now, updated_at=now,
    )
    s.add(event)
    s.flush()
    return event.id


def enqueue(client: redis.Redis, event_id: int, *, at: datetime | None = None) -> None:
    """Queue the delivery job for ``event_id`` now, or at ``at`` (RQ's scheduler, which
    `hitl worker` runs, moves it to the queue then). Raises on a Redis error."""
    from rq import Queue  # here: a crawl that never sends a webhook need not import RQ

    queue = Queue(QUEUE, connection=client)
    options: dict[str, Any] = {"result_ttl": 0, "failure_ttl": FAILURE_TTL,
                               "description": f"webhook event {event_id}"}
    if at is None:
        queue.enqueue(JOB, event_id, **options)
    else:
        queue.enqueue_at(at, JOB, event_id, **options)


def dispatch(hitl: HitlState, event_id: int | None) -> None:
    """After the commit: queue the delivery. Never raises: the event is in the database, and
    the worker's sweep sends whatever a failed enqueue left behind."""
    if event_id is None:
        return
    try:
        enqueue(hitl.redis, event_id)
    except Exception as exc:  # Redis down, or RQ missing: the sweep delivers it later
        logger.warning("Could not queue webhook event %(id)s (%(error)s); the worker's sweep will "
                       "send it", {"id": event_id, "error": exc})


def claim(db: Database, event_id: int, *, lease_seconds: float, now: datetime | None = None) -> Claim | None:
    """Start an attempt: the event if it is pending, due and not leased (or its lease expired),
    now leased for ``lease_seconds``; None otherwise (delivered meanwhile, not due yet, or
    another worker has it). Taking over an expired lease records that attempt as
    interrupted."""
    now = now or utcnow()
    with db.session() as s:
        row, token, interrupted = leases.take(s, WebhookEvent, event_id, lease_seconds=lease_seconds, now=now)
        if row is None:
            return None
        if interrupted:
            s.add(deliveries.attempt_row(
                consultation_id=row.consultation_id, api_key_id=row.api_key_id, webhook_id=row.webhook_id,
                event_type=row.event_type, url=row.url, attempt=row.attempts - 1, error=INTERRUPTED,
            ))
        return Claim(id=row.id, webhook_id=row.webhook_id, consultation_id=row.consultation_id,
                     api_key_id=row.api_key_id, event_type=row.event_type, url=row.url, payload=row.payload,
                     attempt=row.attempts, round_attempt=row.attempts - row.attempt_offset, lease_token=token)


def finish(
    db: Database,
    claim: Claim,
    outcome: str,
    *,
    attempt: dict[str, Any] | None = None,
    next_attempt_at: datetime | None = None,
    status_code: int | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> bool:
    """End the attempt: ``outcome`` is ``retry`` (pending again at ``next_attempt_at``),
    ``delivered``, ``failed`` (given up) or ``disabled`` (the endpoint is off). ``attempt``
    (``record_attempt``'s fields, less the event's own) is recorded in the same transaction.
    Returns False if the lease was lost meanwhile: the attempt is recorded, the event left
    to whoever holds it now."""
    now = now or utcnow()
    values: dict[str, Any] = {"lease_token": None, "lease_until": None, "updated_at": now,
                              "last_status_code": status_code,
                              "last_error": error[: deliveries.ERROR_CHARS] if error else None}
    if outcome == "retry":
        if next_attempt_at is None:
            raise ValueError("a retry needs next_attempt_at")
        values.update(state="pending", next_attempt_at=next_attempt_at)
    elif outcome == "delivered":
        values.update(state="delivered", delivered_at=now)
    elif outcome in ("failed", "disabled"):
        values.update(state=outcome)
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    with db.session() as s:
        won = s.execute(update(WebhookEvent)
                        .where(WebhookEvent.id == claim.id, WebhookEvent.lease_token == claim.lease_token)
                        .values(**values).execution_options(synchronize_session=False)).rowcount
        if attempt is not None:
            s.add(deliveries.attempt_row(
                consultation_id=claim.consultation_id, api_key_id=claim.api_key_id,
                webhook_id=claim.webhook_id, event_type=claim.event_type, url=claim.url,
                attempt=claim.attempt, **attempt,
            ))
    if not won:
        logger.warning("Webhook %(webhook_id)s: the lease of attempt %(attempt)s expired before it "
                       "finished; another worker has the event now",
                       {"webhook_id": claim.webhook_id, "attempt": claim.attempt})
    return bool(won)


def redeliver(db: Database, consultation_id: int, *, actor: str = "system",
              now: datetime | None = None) -> tuple[int, dict[str, Any]]:
    """Send the consultation's latest webhook again, now, with the same ``webhook_id`` and
    body: a delivered or given-up one becomes pending with a fresh attempt budget; a pending
    one is made due at once. The consultation's history records ``redeliver`` by ``actor``.
    Returns ``(event id, event)`` for ``enqueue``; raises NoWebhook if it has none."""
    now = now or utcnow()
    with db.session() as s:
        event_id = s.scalars(select(WebhookEvent.id).where(WebhookEvent.consultation_id == consultation_id)
                             .order_by(WebhookEvent.id.desc()).limit(1)).first()
    if event_id is None:
        raise NoWebhook(f"Consultation {consultation_id} has no webhook to send: it has no callback_url, "
                        "or it has not been answered or timed out yet.")
    with db.session() as s:
        s.execute(update(WebhookEvent).where(WebhookEvent.id == event_id, WebhookEvent.state != "pending")
                  .values(state="pending", attempt_offset=WebhookEvent.attempts)
                  .execution_options(synchronize_session=False))
        s.execute(update(WebhookEvent).where(WebhookEvent.id == event_id)
                  .values(next_attempt_at=now, updated_at=now).execution_options(synchronize_session=False))
        row = s.get(WebhookEvent, event_id, populate_existing=True)
        assert row is not None
        s.add(ConsultationEvent(consultation_id=consultation_id, action="redeliver", actor=actor, at=now,
                                detail={"webhook_id": row.webhook_id, "event_type": row.event_type}))
        return row.id, event_to_dict(row)


# --- reads -------------------------------------------------------------------------------------


def due(db: Database, *, now: datetime | None = None, grace: float = 0.0, limit: int = 500) -> list[int]:
    """For the sweep: pending events due ``grace`` seconds ago or more that no live lease
    holds, oldest first. (The grace leaves a freshly queued or scheduled event to its job.)"""
    now = now or utcnow()
    q = (select(WebhookEvent.id)
         .where(WebhookEvent.state == "pending", WebhookEvent.next_attempt_at <= now - timedelta(seconds=grace),
                or_(WebhookEvent.lease_until.is_(None), WebhookEvent.lease_until <= now))
         .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id).limit(limit))
    with db.session() as s:
        return list(s.scalars(q))


def get(db: Database, event_id: int) -> dict[str, Any] | None:
    with db.session() as s:
        row = s.get(WebhookEvent, event_id)
        return event_to_dict(row) if row is not None else None


def list_for(db: Database, consultation_id: int) -> list[dict[str, Any]]:
    """A consultation's webhooks, newest first."""
    q = (select(WebhookEvent).where(WebhookEvent.consultation_id == consultation_id)
         .order_by(WebhookEvent.id.desc()))
    with db.session() as s:
        return [event_to_dict(r) for r in s.scalars(q)]


def next_attempt_at(db: Database, event_id: int) -> datetime | None:
    """When a pending event is next tried (None if it is not pending)."""
    with db.session() as s:
        row = s.get(WebhookEvent, event_id)
        return _aware(row.next_attempt_at) if row is not None and row.state == "pending" else None
