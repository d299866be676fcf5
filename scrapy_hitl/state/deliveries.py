"""Webhook deliveries: one row per attempt, written by the webhook worker.

Only the record is here; sending, signing and retrying belong to the worker
(``hitl_console.webhooks``), the events it sends to ``webhook_events``. Every attempt
of one event shares its ``webhook_id`` (the Standard Webhooks message id), so a receiver can
deduplicate retries and the console can group them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scrapy_hitl.state.models import WebhookDelivery, iso, utcnow

if TYPE_CHECKING:
    from scrapy_hitl.state.db import Database

EXCERPT_CHARS = 1000  # of the receiver's answer kept per attempt
ERROR_CHARS = 1000


def delivery_to_dict(row: WebhookDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "consultation_id": row.consultation_id,
        "api_key_id": row.api_key_id,
        "webhook_id": row.webhook_id,
        "event_type": row.event_type,
        "url": row.url,
        "attempt": row.attempt,
        "status_code": row.status_code,
        "response_excerpt": row.response_excerpt,
        "error": row.error,
        "duration_ms": row.duration_ms,
        "created_at": iso(row.created_at),
    }


def attempt_row(
    *,
    consultation_id: int,
    api_key_id: int | None,
    webhook_id: str,
    event_type: str,
    url: str,
    attempt: int,
    status_code: int | None = None,
    response_excerpt: str = "",
    error: str | None = None,
    duration_ms: int | None = None,
) -> WebhookDelivery:
    """The row for one attempt, for a caller that adds it to its own transaction (the outbox
    in ``webhook_events`` records an attempt and its outcome together)."""
    return WebhookDelivery(
        consultation_id=consultation_id, api_key_id=api_key_id, webhook_id=webhook_id,
        event_type=event_type, url=url, attempt=attempt, status_code=status_code,
        response_excerpt=(response_excerpt or "")[:EXCERPT_CHARS],
        error=error[:ERROR_CHARS] if error is not None else None, duration_ms=duration_ms,
        created_at=utcnow(),
    )


def record_attempt(
    db: Database,
    *,
    consultation_id: int,
    api_key_id: int | None,
    webhook_id: str,
    event_type: str,
    url: str,
    attempt: int,
    status_code: int | None = None,
    response_excerpt: str = "",
    error: str | None = None,
    duration_ms: int | None = None,
) -> dict[str, Any]:
    """Record one attempt. ``status_code`` is None when no answer came (timeout, refused
    connection, SSRF refusal: say which in ``error``). The excerpt and the error are cut to
    1000 characters."""
    with db.session() as s:
        row = attempt_row(
            consultation_id=consultation_id, api_key_id=api_key_id, webhook_id=webhook_id,
            event_type=event_type, url=url, attempt=attempt, status_code=status_code,
            response_excerpt=response_excerpt, error=error, duration_ms=duration_ms,
        )
        s.add(row)
        s.flush()
        return delivery_to_dict(row)


def list_for(db: Database, consultation_id: int, *, after: int | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
    """A consultation's attempts, oldest first; keyset-paginated with ``after`` (the last id)."""
    q = (select(WebhookDelivery).where(WebhookDelivery.consultation_id == consultation_id)
         .order_by(WebhookDelivery.id).limit(limit))
    if after is not None:
        q = q.where(WebhookDelivery.id > after)
    with db.session() as s:
        return [delivery_to_dict(r) for r in s.scalars(q)]
