"""Interventions: open, resolve, cancel, list. The CLI, the console and the crawler call these.

At most one intervention is open per (domain, type); a unique partial index enforces it
across processes. A domain is paused while any of its interventions is open; resolving the
last one releases the domain, and the crawlers resume its parked requests on the event.

``run_anomaly`` (a run monitor alerted at spider close, ``scrapy_hitl/monitors.py``) is the
exception: it asks a human to look at a finished run's data, so it pauses nothing and holds
no parked requests; resolving it records that someone looked, cancelling it drops nothing.
So is an advisory intervention (priority below 0): a ``login_refresh`` asked ahead of a
session's expiry, or a login a reviewer opened from the sessions page. If the domain's block
comes while one is open, the crawler's ``open_or_update`` turns it into the real, pausing one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from scrapy_hitl.state import pauses, vault
from scrapy_hitl.state.crawler_models import iso, utcnow
from scrapy_hitl.state.incident_models import Intervention, InterventionEvent
from scrapy_hitl.state.runs import get_run

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scrapy_hitl.cookies import Cookie
    from scrapy_hitl.state import HitlState


# Every intervention type. The classifier's pause types (scrapy_hitl.classifier.PAUSE_TYPES)
# pause their domain; the rest do not.
TYPES = ("manual_access", "login_refresh", "captcha_solve", "selector_fix", "run_anomaly")
NON_PAUSING_TYPES = frozenset({"run_anomaly"})
ADVISORY_PRIORITY = -1  # an advisory intervention ("a session expires in 25 min") pauses nothing


def holds_requests(type: str, priority: int) -> bool:
    """Whether an intervention pauses its domain (and so holds its parked requests): not a
    NON_PAUSING_TYPES one, and not advisory (priority below 0, e.g. a refresh asked ahead of a
    session's expiry, or a login opened from the sessions page)."""
    return type not in NON_PAUSING_TYPES and priority >= 0


# A block of these types fixed with a session teaches that the domain needs one.
SESSION_FIXED_TYPES = frozenset({"manual_access", "login_refresh"})


class InterventionNotFound(LookupError):
    """Raised for an unknown intervention id."""

    def __init__(self, intervention_id: Any) -> None:
        super().__init__(
            f"No intervention with id {intervention_id}. "
            "List them with `hitl interventions list`."
        )
        self.intervention_id = intervention_id


class InterventionClosed(ValueError):
    """Raised when resolving or cancelling an intervention that is no longer open."""


def intervention_to_dict(row: Intervention, *, live_parked: int | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "reason": row.reason,
        "vendor": row.vendor,
        "domain": row.domain,
        "spider": row.spider,
        "run_id": row.run_id,
        "status": row.status,
        "priority": row.priority,
        "parked_count": live_parked if live_parked is not None else row.parked_count,
        "url": row.url,
        "response_status": row.response_status,
        "response_headers": row.response_headers,
        "evidence": row.evidence,
        "note": row.note,
        "resolution": row.resolution,
        "resolved_by": row.resolved_by,
        "owner": row.owner,
        "owned_at": iso(row.owned_at),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "resolved_at": iso(row.resolved_at),
    }


def _history(row: Intervention) -> list[dict[str, Any]]:
    return [
        {"action": h.action, "actor": h.actor, "detail": h.detail, "at": iso(h.at)}
        for h in row.history
    ]


def _open_ids(session: Any, domain: str) -> list[int]:
    """The domain's open interventions that pause it."""
    q = select(Intervention.id).where(Intervention.domain == domain, Intervention.status == "open",
                                      Intervention.type.not_in(NON_PAUSING_TYPES), Intervention.priority >= 0)
    return sorted(session.scalars(q))


def open_or_update(
    state: HitlState,
    *,
    type: str,
    reason: str,
    domain: str,
    spider: str = "",
    run_id: str | None = None,
    vendor: str | None = None,
    url: str = "",
    response_status: int | None = None,
    response_headers: dict[str, Any] | None = None,
    evidence: dict[str, Any] | None = None,
    priority: int = 0,
    actor: str = "crawler",
) -> tuple[dict[str, Any], bool]:
    """Open an intervention for (domain, type), or touch the open one. Pauses the domain
    (unless ``type`` is one of NON_PAUSING_TYPES).

    Returns (intervention, created).
    """
    pausing = holds_requests(type, priority)
    upgraded = False
    for _attempt in range(3):
        try:
            with state.db.session() as s:
                q = select(Intervention).where(
                    Intervention.domain == domain,
                    Intervention.type == type,
                    Intervention.status == "open",
                )
                row = s.scalars(q).first()
                created = row is None
                if row is None:
                    row = Intervention(
                        type=type, reason=reason, vendor=vendor, domain=domain, spider=spider,
                        run_id=run_id, status="open", priority=priority, parked_count=0,
                        url=url, response_status=response_status,
                        response_headers=response_headers or {}, evidence=evidence or {},
                        note="", resolution={},
                    )
                    s.add(row)
                    s.flush()
                    s.add(InterventionEvent(
                        intervention_id=row.id, action="created", actor=actor,
                        detail={"reason": reason, "url": url, "run_id": run_id, "spider": spider},
                    ))
                else:
                    row.updated_at = utcnow()
                    if evidence:
                        row.evidence = {**row.evidence, **evidence}
                    if pausing and row.priority < 0:  # an advisory one becomes the real block
                        row.priority, row.reason, upgraded = priority, reason, True
                    pausing = holds_requests(row.type, row.priority)
                    s.add(InterventionEvent(
                        intervention_id=row.id, action="updated", actor=actor,
                        detail={"reason": reason, "url": url, "run_id": run_id, "spider": spider},
                    ))
                s.flush()
                data = intervention_to_dict(row)
                open_ids = _open_ids(s, domain)
            break
        except IntegrityError:  # another process opened it first: touch theirs
            continue
    else:  # pragma: no cover - three lost races in a row
        raise RuntimeError(f"Could not open an intervention for {domain}/{type}")
    if pausing:
        pauses.set_domain(state.redis, domain, open_ids)
    ids = {"intervention_id": data["id"], "domain": domain, "spider": spider or None, "run_id": run_id}
    payload = {"type": type, "reason": reason, "vendor": vendor, "url": url}
    state.events.emit("intervention.created" if created else "intervention.updated", payload, **ids)
    if (created or upgraded) and pausing:
        state.events.emit("domain.paused", {"interventions": open_ids}, domain=domain)
    return data, created


def _close(
    state: HitlState,
    intervention_id: int,
    *,
    status: str,
    actor: str,
    note: str,
    resolution: dict[str, Any],
    parked: int,
) -> tuple[dict[str, Any], list[int]]:
    with state.db.session() as s:
        # A conditional UPDATE, so of two humans closing at once exactly one wins, on
        # SQLite and PostgreSQL alike.
        won = s.execute(
            update(Intervention)
            .where(Intervention.id == intervention_id, Intervention.status == "open")
            .values(status=status, note=note, resolution=resolution, resolved_by=actor,
                    resolved_at=utcnow(), updated_at=utcnow(), parked_count=parked)
        ).rowcount
        row = s.get(Intervention, intervention_id, populate_existing=True)
        if row is None:
            raise InterventionNotFound(intervention_id)
        if not won:
            raise InterventionClosed(
                f"Intervention {intervention_id} is already {row.status}; nothing to do."
            )
        s.add(InterventionEvent(
            intervention_id=row.id, action=status, actor=actor,
            detail={"note": note, **resolution, "parked": parked},
        ))
        s.flush()
        data = intervention_to_dict(row)
        open_ids = _open_ids(s, row.domain)
    if data["type"] not in NON_PAUSING_TYPES:
        pauses.set_domain(state.redis, data["domain"], open_ids)
    return data, open_ids


def _require_open(state: HitlState, intervention_id: int) -> Intervention:
    with state.db.session() as s:
        row = s.get(Intervention, intervention_id)
        if row is None:
            raise InterventionNotFound(intervention_id)
        if row.status != "open":
            raise InterventionClosed(
                f"Intervention {intervention_id} is already {row.status}; nothing to do."
            )
        return row


def resolve(
    state: HitlState,
    intervention_id: int,
    *,
    cookies: Iterable[Cookie] | None = None,
    user_agent: str | None = None,
    proxy: str | None = None,
    source_format: str = "",
    note: str = "",
    actor: str = "cli",
    details: dict[str, Any] | None = None,
    origins: Iterable[dict[str, Any]] = (),
    session_name: str = vault.DEFAULT_NAME,
) -> dict[str, Any]:
    """Resolve: store the captured session (if any) first, then release the domain.

    ``cookies`` (with ``origins``, the localStorage of a storage state) become the session
    ``session_name`` of the domain's pool. A block fixed with a session marks the domain
    "session required" at once, with the reason shown on its page.

    The session is in the vault before the event goes out, so a crawler that reacts to
    ``intervention.resolved`` always finds it. ``details`` (what the resolver reported, e.g.
    ``captured_method``) are kept in the resolution, never over its ``action`` and cookie names.
    """
    row = _require_open(state, intervention_id)
    session_info = None
    if cookies is not None:
        session_info = vault.capture(
            state, row.domain, cookies, name=session_name, origins=origins, user_agent=user_agent, proxy=proxy,
            source_format=source_format, captured_by=actor,
        )
        if row.type in SESSION_FIXED_TYPES:
            from scrapy_hitl.state import domains, session_health

            domains.require_session(state.db, row.domain)  # unless a human said "not required"
            session_health.mark_required(
                state.db, row.domain, f"a reviewer fixed its {row.type} ({row.reason}) with a session "
                                      f"on intervention {row.id}")
    pausing = holds_requests(row.type, row.priority)
    parked = state.parking.domain_count(row.domain) if pausing else 0
    resolution: dict[str, Any] = {**(details or {}), "action": "cookies" if session_info else "done"}
    if session_info:
        resolution["cookie_names"] = session_info["cookie_names"]
    data, open_ids = _close(
        state, intervention_id, status="resolved", actor=actor, note=note,
        resolution=resolution, parked=parked,
    )
    released = pausing and not open_ids  # a run_anomaly held nothing: nothing to release
    state.events.emit(
        "intervention.resolved",
        {"type": data["type"], "action": resolution["action"], "parked": parked,
         "domain_released": released, "note": note},
        intervention_id=data["id"], domain=data["domain"], spider=data["spider"] or None,
        run_id=data["run_id"],
    )
    if released:
        state.events.emit("domain.resumed", {"parked": parked}, domain=data["domain"])
    reruns = _rerun(state, data["domain"], actor=actor) if released else None
    run = get_run(state.db, data["run_id"]) if data["run_id"] else None
    return {
        "intervention": data,
        "session": session_info,
        "run": run,
        "run_status": run["status"] if run else None,
        "requests_to_resume": parked if released else 0,
        "reruns": reruns,
    }


def _rerun(state: HitlState, domain: str, *, actor: str, spiders: Iterable[str] = ()) -> dict[str, Any] | None:
    """Queue again the crawls that closed waiting on ``domain`` (scrapy_hitl.state.rerun).
    Never fails the resolve: what cannot be queued now, the worker's sweep queues later."""
    from scrapy_hitl.state import rerun

    try:
        return rerun.summary(rerun.after_release(state, domain, actor=actor, spiders=spiders))
    except Exception:
        logger.exception("Could not queue the re-runs for %(domain)s now; the worker's sweep will",
                         {"domain": domain})
        return None


def cancel(state: HitlState, intervention_id: int, *, note: str = "", actor: str = "cli") -> dict[str, Any]:
    """Give up: the domain's parked requests fail with reason ``intervention_cancelled``."""
    row = _require_open(state, intervention_id)
    pausing = holds_requests(row.type, row.priority)
    # Close first: if a concurrent resolve won, its requests must resume, not be dropped.
    data, open_ids = _close(
        state, intervention_id, status="cancelled", actor=actor, note=note,
        resolution={"action": "cancel"}, parked=state.parking.domain_count(row.domain) if pausing else 0,
    )
    failed: dict[str, int] = {}
    for spider, domain in state.parking.pairs() if pausing else ():  # a run_anomaly holds no request
        if domain == row.domain:
            n = state.parking.discard(spider, domain)
            if n:
                failed[spider] = n
    total = sum(failed.values())
    with state.db.session() as s:
        s.execute(update(Intervention).where(Intervention.id == intervention_id)
                  .values(parked_count=total, resolution={"action": "cancel", "failed": total}))
    data["parked_count"] = total
    data["resolution"] = {"action": "cancel", "failed": total}
    state.events.emit(
        "intervention.cancelled",
        {"type": data["type"], "failed": total, "failed_by_spider": failed,
         "reason": "intervention_cancelled", "domain_released": not open_ids, "note": note},
        intervention_id=data["id"], domain=data["domain"], spider=data["spider"] or None,
        run_id=data["run_id"],
    )
    for spider, n in failed.items():
        state.events.emit(
            "requests.failed", {"count": n, "reason": "intervention_cancelled"},
            spider=spider, domain=data["domain"], intervention_id=data["id"],
        )
    if pausing and not open_ids:
        state.events.emit("domain.resumed", {"parked": 0}, domain=data["domain"])
    # the waiting crawls go on without those requests, and finish
    reruns = _rerun(state, data["domain"], actor=actor, spiders=failed) if pausing and not open_ids else None
    return {"intervention": data, "failed": total, "failed_by_spider": failed, "reruns": reruns}


def expire(
    state: HitlState, intervention_id: int, *, reason: str, failed: int = 0, note: str = "", actor: str = "crawler",
) -> dict[str, Any]:
    """Nobody solved it in time (a live page's HITL_LIVE_TIMEOUT): mark it ``expired``.

    Only the request that held the page fails (``failed``, with ``reason``, e.g.
    ``captcha_expired``); the domain's other parked requests are released like after a
    resolve, so they are tried again (and may open a new intervention).
    """
    row = _require_open(state, intervention_id)
    parked = state.parking.domain_count(row.domain)
    data, open_ids = _close(
        state, intervention_id, status="expired", actor=actor, note=note,
        resolution={"action": "expire", "reason": reason, "failed": failed}, parked=parked,
    )
    released = not open_ids
    ids = {"intervention_id": data["id"], "domain": data["domain"], "spider": data["spider"] or None,
           "run_id": data["run_id"]}
    state.events.emit("intervention.expired", {"type": data["type"], "reason": reason, "failed": failed,
                                               "parked": parked, "domain_released": released, "note": note}, **ids)
    if failed:
        state.events.emit("requests.failed", {"count": failed, "reason": reason}, spider=data["spider"] or None,
                          domain=data["domain"], intervention_id=data["id"])
    if released:
        state.events.emit("domain.resumed", {"parked": parked}, domain=data["domain"])
    return {"intervention": data, "failed": failed}


def get(state: HitlState, intervention_id: int, *, parked_limit: int = 20) -> dict[str, Any]:
    with state.db.session() as s:
        row = s.get(Intervention, intervention_id)
        if row is None:
            raise InterventionNotFound(intervention_id)
        is_open, holds = row.status == "open", holds_requests(row.type, row.priority)
        live = (state.parking.domain_count(row.domain) if holds else 0) if is_open else None
        data = intervention_to_dict(row, live_parked=live)
        data["history"] = _history(row)
    if is_open:
        data["parked_requests"] = [] if not holds else [
            {"park_id": p["park_id"], "url": p["request"].get("url"), "spider": spider,
             "reason": p.get("reason")}
            for spider, domain in state.parking.pairs() if domain == row.domain
            for p in state.parking.peek(spider, domain, parked_limit)
        ]
    return data


def list_interventions(
    state: HitlState,
    *,
    status: str | None = None,
    type: str | None = None,
    domain: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
    cursor: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated on id (pass the last id seen as ``cursor``)."""
    q = select(Intervention).order_by(Intervention.id.desc()).limit(limit)
    if status:
        q = q.where(Intervention.status == status)
    if type:
        q = q.where(Intervention.type == type)
    if domain:
        q = q.where(Intervention.domain == domain)
    if run_id:
        q = q.where(Intervention.run_id == run_id)
    if cursor is not None:
        q = q.where(Intervention.id < cursor)
    with state.db.session() as s:
        rows = list(s.scalars(q))
    counts: dict[str, int] = {}
    if any(r.status == "open" and holds_requests(r.type, r.priority) for r in rows):
        for (_spider, d), n in state.parking.counts().items():
            counts[d] = counts.get(d, 0) + n
    return [
        intervention_to_dict(r, live_parked=(counts.get(r.domain, 0) if holds_requests(r.type, r.priority) else 0)
                             if r.status == "open" else None)
        for r in rows
    ]
