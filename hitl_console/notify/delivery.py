"""The RQ job that sends one notification: ``deliver(notification_id)``.

One call is one attempt, as for webhooks (``hitl_console.webhooks.delivery``): claim the
message (a lease), write it from the item as it is *now* (``messages.compose``), send it with
Apprise, record the attempt and the channel's health, then finish: delivered, retried later
(``enqueue_at`` with backoff and full jitter, ``HITL_NOTIFY_RETRY_SCHEDULE``), or failed
after ``HITL_NOTIFY_MAX_ATTEMPTS``. A worker killed mid-attempt loses nothing: the lease
expires and the sweep queues the message again.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from hitl_console.notify import channels, messages
from hitl_console.notify.config import NotifyConfig
from hitl_console.webhooks.retry import backoff_delay
from scrapy_hitl.state import artifacts, consultations, interventions, notifications, notify_channels, ownership, runs
from scrapy_hitl.state.models import utcnow

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

SCREENSHOT_WAIT = 1.5  # seconds a browser-tier block's message waits for its screenshot to be stored


@dataclass
class _Context:
    pid: int
    state: HitlState
    config: NotifyConfig


_context: _Context | None = None
_context_lock = threading.Lock()


def use(state: HitlState, config: NotifyConfig) -> None:
    """Make ``deliver`` jobs in this process use this state and config (``hitl worker``)."""
    global _context
    _context = _Context(os.getpid(), state, config)


def _current() -> _Context:
    global _context
    with _context_lock:
        if _context is None or _context.pid != os.getpid():
            from scrapy_hitl.config import StateConfig
            from scrapy_hitl.state import HitlState

            _context = _Context(os.getpid(), HitlState.open(StateConfig.from_env(), create_schema=False),
                                NotifyConfig.from_env())
        return _context


def deliver(notification_id: int) -> str:
    """The RQ job: one attempt at ``notification_id``."""
    ctx = _current()
    return deliver_notification(ctx.state, ctx.config, notification_id)


def _aware(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _screenshot(hitl: HitlState, item: dict[str, Any], age: float) -> bytes | None:
    """The intervention's screenshot. A browser tier stores it just after opening the
    intervention, so a message that goes out at once may wait for it briefly."""
    deadline = time.monotonic() + (SCREENSHOT_WAIT if age < 10 else 0)
    expect = (item.get("evidence") or {}).get("tier") in ("browser", "stealth")
    while True:
        try:
            content_type, data = artifacts.load(hitl.db, item["id"], "screenshot")
            return data if content_type == "image/png" else None
        except artifacts.ArtifactNotFound:
            if not expect or time.monotonic() >= deadline:
                return None
        time.sleep(0.05)


def build(hitl: HitlState, config: NotifyConfig, claim: notifications.Claim) -> tuple[messages.Message,
                                                                                      list[channels.Attachment]]:
    """The message for a claimed notification, and its attachments."""
    now = utcnow()
    kind, item_id = claim.subject_kind, claim.subject_id
    event = (claim.data or {}).get("event") or {}
    extra: dict[str, Any] = {"event_type": claim.event_type}
    attachments: list[channels.Attachment] = []
    item: dict[str, Any] = {}
    status = "open"
    path = "/"
    if kind == "intervention" and item_id:
        try:
            item = interventions.get(hitl, int(item_id), parked_limit=1)
        except interventions.InterventionNotFound:
            item = {"id": item_id, "domain": claim.domain}
        status = item.get("status", "open")
        path = f"/interventions/{item_id}"
    elif kind == "consultation" and item_id:
        try:
            item = consultations.get(hitl, int(item_id))
        except consultations.ConsultationNotFound:
            item = {"id": item_id}
        status = item.get("state", "pending")
        path = f"/consultations/{item_id}"
    elif kind == "run" and item_id:
        item = runs.get_run(hitl.db, item_id) or {"id": item_id}
        status = "failed"
        path = f"/runs/{item_id}"
    elif kind == "items":
        facts = (claim.data or {}).get("facts") or {}
        extra.update(pending=facts.get("pending", 0), threshold=1)
        path = "/items"
    elif kind == "test":
        item = dict(claim.data or {})
    elif kind == "job":
        item = {**(event.get("payload") or {}), "spider": event.get("spider")}
        path = f"/jobs/{item_id}" if str(item_id).isdigit() else "/jobs"
    else:
        item = {**(event.get("payload") or {}), "spider": event.get("spider")}
        if event.get("run_id"):
            path = f"/runs/{event['run_id']}"
    opened = _aware(item.get("created_at")) or claim.created_at
    age = (now - opened).total_seconds()
    if kind == "intervention" and item.get("evidence") is not None:
        shot = _screenshot(hitl, item, age)
        if shot:
            attachments.append(channels.Attachment(messages.SCREENSHOT_NAME, "image/png", shot))
            extra["screenshot"] = True
    message = messages.compose(kind, item, link=config.link(path), age=age, grouped=claim.grouped,
                               window=config.throttle, escalation_step=claim.escalation_step, status=status,
                               extra=extra)
    return message, attachments


def deliver_notification(
    hitl: HitlState,
    config: NotifyConfig,
    notification_id: int,
    *,
    send: Callable[..., channels.SendResult] = channels.send,
    rng: Callable[[], float] = random.random,
) -> str:
    """One attempt: ``skipped`` (not due, or another worker has it), ``delivered``,
    ``retry``, ``failed``, or ``cancelled`` (an escalation whose item was taken or closed
    meanwhile)."""
    claim = notifications.claim(hitl.db, notification_id, lease_seconds=config.lease_seconds)
    if claim is None:
        return "skipped"
    stale = _taken_or_closed(hitl, claim)
    if stale:  # an escalation's retry, after someone took or closed the item: nobody further is told
        notifications.finish(hitl.db, claim, "cancelled", error=stale)
        logger.info("Notification %(id)s cancelled: %(why)s", {"id": claim.id, "why": stale})
        return "cancelled"
    try:
        url = notify_channels.secret_url(hitl, claim.channel_id)
    except notify_channels.ChannelNotFound:
        notifications.finish(hitl.db, claim, "failed", error="the channel was removed")
        return "failed"
    except RuntimeError as exc:  # HITL_SECRET_KEY changed: retried, the key may be put back
        message, result = None, channels.SendResult(False, str(exc), 0)
    else:
        try:
            message, files = build(hitl, config, claim)
        except Exception as exc:  # a bug writing the message: audited and retried, never lost silently
            logger.exception("Notification %(id)s: could not write the message", {"id": claim.id})
            message, result = None, channels.SendResult(False, f"could not write the message: {exc!r}", 0)
        else:
            result = send(url, title=message.title, body=message.text, html=message.html, attachments=files,
                          timeout=config.timeout)
    notify_channels.record_outcome(hitl, claim.channel_id, ok=result.ok, error=result.error)
    title = message.title if message else ""
    log = {"id": claim.id, "channel": claim.channel_id, "attempt": claim.attempt, "error": result.error}
    if result.ok:
        notifications.finish(hitl.db, claim, "delivered", duration_ms=result.duration_ms, title=title)
        logger.info("Notification %(id)s delivered to channel %(channel)s (attempt %(attempt)s)", log)
        return "delivered"
    if claim.attempt >= config.max_attempts:
        notifications.finish(hitl.db, claim, "failed", error=result.error, duration_ms=result.duration_ms,
                             title=title)
        logger.warning("Notification %(id)s to channel %(channel)s failed after attempt %(attempt)s: %(error)s",
                       log)
        return "failed"
    at = utcnow() + timedelta(seconds=backoff_delay(claim.attempt, config.retry_schedule, rng))
    if notifications.finish(hitl.db, claim, "retry", error=result.error, duration_ms=result.duration_ms,
                            title=title, next_attempt_at=at):
        notifications.dispatch(hitl.redis, claim.id, at)
    logger.info("Notification %(id)s to channel %(channel)s: attempt %(attempt)s failed (%(error)s); retried",
                log)
    return "retry"


def _taken_or_closed(hitl: HitlState, claim: notifications.Claim) -> str | None:
    """Why an escalation message must not go out any more, or None. The sweep checks this
    before it writes the message; a message whose first attempt failed is checked again."""
    if not claim.escalation_step or claim.subject_kind not in ownership.KINDS or not claim.subject_id.isdigit():
        return None
    is_open, owner = ownership.status(hitl, claim.subject_kind, int(claim.subject_id))
    if not is_open:
        return f"not sent: the {claim.subject_kind} was closed before this escalation went out"
    if owner:
        return f"not sent: {owner} took the {claim.subject_kind} before this escalation went out"
    return None


def send_test(hitl: HitlState, config: NotifyConfig, channel: int | str, *, actor: str,
              send: Callable[..., channels.SendResult] = channels.send) -> dict[str, Any]:
    """Send a test message to a channel now, in this process, once (no retry), audited like
    any other. Returns the notification, with ``error`` the service's answer if it failed."""
    import dataclasses
    import secrets

    found = notify_channels.get(hitl, channel)
    made = notifications.add(hitl.db, channel_id=found["id"], group_key=f"test:{secrets.token_hex(8)}",
                             event_type="test", throttle=0, subject_kind="test",
                             data={"channel": found["name"], "actor": actor})
    assert made is not None
    outcome = deliver_notification(hitl, dataclasses.replace(config, max_attempts=1), made[0], send=send)
    result = notifications.get(hitl.db, made[0]) or {}
    return {**result, "outcome": outcome, "channel": found["name"], "error": result.get("last_error")}
