"""The RQ job that sends one webhook event: ``deliver(event_id)``.

One call is one attempt: claim the event (a lease, so one worker sends it at a time), sign
the stored body with the key's secrets, POST it to the checked address, record the attempt,
then finish: delivered, retry later (``enqueue_at``: RQ's scheduler queues it when due),
given up, or disabled (410). A ``consultation.responded`` webhook then moves the
consultation to callback_sent / callback_failed (``mark_callback``, which records who and
when and emits the event).

The policy lives in ``retry.decide``; the outbox in ``scrapy_hitl.state.webhook_events``.
A worker killed at any point loses nothing: until ``finish`` the event stays leased, and once
the lease expires the sweep queues it again.

Why ``enqueue_at`` and not RQ's ``Retry``: ``Retry`` re-runs a job that raised, after fixed
intervals, and keeps its count in the job. Here each wait depends on the attempt (full
jitter, the receiver's ``Retry-After``), and the count must survive the job being lost, so it
lives in the outbox row; the next attempt is a new job that RQ's scheduler queues when due.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from standardwebhooks import Webhook

from hitl_console.webhooks import transport
from hitl_console.webhooks.config import WebhookConfig
from hitl_console.webhooks.retry import decide, parse_retry_after
from scrapy_hitl.state import apikeys, consultations, webhook_events
from scrapy_hitl.state.models import utcnow

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

ACTOR = "webhook-worker"  # in the consultation's history


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"scrapy-hitl-webhooks/{version('scrapy-hitl')}"
    except PackageNotFoundError:
        return "scrapy-hitl-webhooks"


USER_AGENT = _user_agent()


def signature_headers(webhook_id: str, body: str, secrets: Sequence[str], timestamp: datetime) -> dict[str, str]:
    """The Standard Webhooks headers. Signed by the ``standardwebhooks`` library itself
    (``Webhook.sign``), not a hand-rolled HMAC, so it is byte for byte what receivers verify
    with. One ``v1,<base64>`` per secret, space-separated: two during a secret rotation."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(math.floor(timestamp.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(webhook_id, timestamp, body) for secret in secrets),
    }


@dataclass
class _Context:
    pid: int
    state: HitlState
    config: WebhookConfig


_context: _Context | None = None
_context_lock = threading.Lock()


def use(state: HitlState, config: WebhookConfig) -> None:
    """Make ``deliver`` jobs in this process use this state and config (``hitl worker``)."""
    global _context
    _context = _Context(os.getpid(), state, config)


def _current() -> _Context:
    """The process's state and config; opened from the environment on first use, so any RQ
    worker serving the queue can run the job."""
    global _context
    with _context_lock:
        if _context is None or _context.pid != os.getpid():
            from scrapy_hitl.config import StateConfig
            from scrapy_hitl.state import HitlState

            _context = _Context(os.getpid(), HitlState.open(StateConfig.from_env(), create_schema=False),
                                WebhookConfig.from_env())
        return _context


def deliver(event_id: int) -> str:
    """The RQ job: one attempt at ``event_id``. Returns what happened (for RQ's log)."""
    ctx = _current()
    return deliver_event(ctx.state, ctx.config, event_id)


def deliver_event(
    hitl: HitlState,
    config: WebhookConfig,
    event_id: int,
    *,
    rng: Callable[[], float] = random.random,
    post: Callable[..., transport.Result] = transport.post,
) -> str:
    """One attempt: ``skipped`` (not due, or another worker has it), ``delivered``,
    ``retry``, ``failed`` or ``disabled``."""
    claim = webhook_events.claim(hitl.db, event_id, lease_seconds=config.lease_seconds)
    if claim is None:
        return "skipped"
    key = apikeys.get(hitl, claim.api_key_id)
    if key["webhook_disabled_at"] is not None:
        reason = "the endpoint is disabled: it answered 410 Gone"
        _settle(hitl, claim, delivered=False, detail={"reason": reason})
        webhook_events.finish(hitl.db, claim, "disabled", error=reason)
        return "disabled"

    now = utcnow()
    try:
        secrets = apikeys.webhook_secrets(hitl, claim.api_key_id)
    except RuntimeError as exc:  # HITL_SECRET_KEY changed: retried, it may be put back
        result = transport.Result(None, error=str(exc))
    else:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   **signature_headers(claim.webhook_id, claim.payload, secrets, now)}
        result = post(claim.url, claim.payload.encode(), headers, timeout=config.timeout,
                      allow_private=config.allow_private)

    done = utcnow()
    decision = decide(status_code=result.status_code, permanent=result.permanent,
                      round_attempt=claim.round_attempt, retry_after=parse_retry_after(result.retry_after, done),
                      config=config, rng=rng)
    attempt: dict[str, Any] = {"status_code": result.status_code, "response_excerpt": result.excerpt,
                               "error": result.error, "duration_ms": result.duration_ms}
    log = {"webhook_id": claim.webhook_id, "attempt": claim.attempt, "url": claim.url,
           "status": result.status_code, "error": result.error}
    if decision.outcome == "retry":
        at = done + timedelta(seconds=decision.delay)
        if webhook_events.finish(hitl.db, claim, "retry", attempt=attempt, next_attempt_at=at,
                                 status_code=result.status_code, error=result.error):
            try:
                webhook_events.enqueue(hitl.redis, event_id, at=at)
            except Exception as exc:  # the sweep queues it once due
                logger.warning("Could not schedule the retry of webhook %(webhook_id)s: %(error)s",
                               {"webhook_id": claim.webhook_id, "error": exc})
        logger.info("Webhook %(webhook_id)s attempt %(attempt)s to %(url)s failed (%(status)s %(error)s); "
                    "retry in %(delay).1f s", {**log, "delay": decision.delay})
        return "retry"

    if decision.outcome == "disabled":
        apikeys.disable_webhook(hitl, claim.api_key_id)
    error = result.error if decision.outcome == "delivered" else "; ".join(
        part for part in (result.error, decision.reason) if part)
    # The consultation first, the event after: a crash in between sends the webhook again (same
    # webhook-id, which receivers deduplicate) rather than leave the consultation behind.
    _settle(hitl, claim, delivered=decision.outcome == "delivered",
            detail={"webhook_id": claim.webhook_id, "attempts": claim.attempt,
                    "status_code": result.status_code, **({"reason": error} if error else {})})
    webhook_events.finish(hitl.db, claim, decision.outcome, attempt=attempt,
                          status_code=result.status_code, error=error)
    if decision.outcome == "delivered":
        logger.info("Webhook %(webhook_id)s delivered to %(url)s (attempt %(attempt)s)", log)
    else:
        logger.warning("Webhook %(webhook_id)s to %(url)s: %(outcome)s after attempt %(attempt)s (%(reason)s)",
                       {**log, "outcome": decision.outcome, "reason": error})
    return decision.outcome


def _settle(hitl: HitlState, claim: webhook_events.Claim, *, delivered: bool, detail: dict[str, Any]) -> None:
    """callback_sent / callback_failed for an answer's webhook (a timeout's has no such state)."""
    if claim.event_type != webhook_events.EVENT_TYPES["responded"]:
        return
    try:
        consultations.mark_callback(hitl, claim.consultation_id, delivered=delivered, actor=ACTOR, detail=detail)
    except consultations.ConsultationClosed:
        pass  # already callback_sent: a redelivery of a delivered webhook
    except consultations.ConsultationNotFound:
        logger.warning("Webhook %(webhook_id)s: consultation %(id)s is gone",
                       {"webhook_id": claim.webhook_id, "id": claim.consultation_id})
