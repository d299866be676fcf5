"""``hitl status``: health of Redis and the database, parked counts, open interventions, and
the workers: who serves which queue from which host, how deep each queue is, the free disk in
the data dir, and the oldest open intervention."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from scrapy_hitl.state import jobs, pauses, spill, webhook_events
from scrapy_hitl.state.interventions import list_interventions
from scrapy_hitl.state.redis_server import persistence_warning

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState


def collect_status(state: HitlState) -> dict[str, Any]:
    redis_ok, redis_error = True, None
    try:
        state.redis.ping()
    except Exception as exc:  # pragma: no cover - status reports, never raises
        redis_ok, redis_error = False, str(exc)
    db_ok, db_error = True, None
    try:
        state.db.ping()
        revision = state.db.current_revision()
    except Exception as exc:  # pragma: no cover
        db_ok, db_error, revision = False, str(exc), None
    parked = [
        {"spider": s, "domain": d, "parked": n} for (s, d), n in sorted(state.parking.counts().items())
    ]
    return {
        "redis": {
            "ok": redis_ok,
            "error": redis_error,
            "url": state.config.redis_url or f"embedded ({state.config.data_dir})",
            "persistence_warning": persistence_warning(state.redis) if redis_ok else None,
        },
        "database": {"ok": db_ok, "error": db_error, "url": state.db.safe_url, "schema": revision,
                     "head": state.db.head_revision()},
        "last_event_age_seconds": state.events.last_event_age(),
        "parked": parked,
        "parked_total": sum(p["parked"] for p in parked),
        "paused_domains": sorted(pauses.paused_domains(state.redis)),
        "paused_spiders": sorted(pauses.paused_spiders(state.redis)),
        # On this host only: what crawls here could not write to Redis at close.
        "unwritten_files": spill.describe(state.config.data_dir),
        "open_interventions": list_interventions(state, status="open", limit=1000),
        "notifications": _notifications(state),
        **(workers_and_queues(state) if redis_ok else {"workers": [], "queues": []}),
        "disk": disk(state.config.data_dir),
        "oldest_open_intervention": oldest_open(state) if db_ok else None,
        "jobs": jobs.counts(state.db) if db_ok else None,
    }


def workers_and_queues(state: HitlState) -> dict[str, Any]:
    """RQ's live workers (a dead one drops out when its heartbeat key expires) and the depth
    of every queue: the crawl queues and the webhooks' always, and any other RQ knows."""
    from rq import Queue, Worker
    from rq.registry import StartedJobRegistry

    workers = []
    for w in Worker.all(connection=state.redis):
        beat = w.last_heartbeat
        workers.append({"name": w.name, "host": w.hostname, "pid": w.pid, "state": w.get_state(),
                        "queues": w.queue_names(), "current_job": w.get_current_job_id(),
                        "last_heartbeat": beat.replace(tzinfo=timezone.utc).isoformat() if beat else None,
                        "heartbeat_age_seconds": _age(beat)})
    workers.sort(key=lambda w: (w["host"] or "", w["name"]))
    names = list(dict.fromkeys([*jobs.CRAWL_QUEUES, webhook_events.QUEUE,
                                *sorted(q.name for q in Queue.all(connection=state.redis))]))
    queues = []
    for name in names:
        queue = Queue(name, connection=state.redis)
        queues.append({"name": name, "queued": queue.count,
                       "running": StartedJobRegistry(queue=queue).count,
                       "workers": sum(name in w["queues"] for w in workers)})
    return {"workers": workers, "queues": queues}


def _age(at: datetime | None) -> float | None:
    if at is None:
        return None
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return round(max(0.0, (datetime.now(timezone.utc) - at).total_seconds()), 1)


def disk(path: Any) -> dict[str, Any]:
    """Free space where this host keeps the data dir (JOBDIRs, job logs, the embedded Redis)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return {"path": str(path), "free_bytes": None, "total_bytes": None, "error": str(exc)}
    return {"path": str(path), "free_bytes": usage.free, "total_bytes": usage.total, "error": None}


def oldest_open(state: HitlState) -> dict[str, Any] | None:
    from sqlalchemy import select

    from scrapy_hitl.state.interventions import intervention_to_dict
    from scrapy_hitl.state.models import Intervention

    with state.db.session() as s:
        row = s.scalar(select(Intervention).where(Intervention.status == "open")
                       .order_by(Intervention.created_at, Intervention.id).limit(1))
        return intervention_to_dict(row) if row is not None else None


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


def render_ops(data: dict[str, Any]) -> list[str]:
    """The workers, queues, disk and oldest intervention part of ``hitl status``."""
    lines = []
    workers = data.get("workers") or []
    lines.append(f"Workers: {len(workers)}" if workers else
                 "Workers: none (start one with `hitl worker`; jobs and webhooks wait until then)")
    for w in workers:
        age = w["heartbeat_age_seconds"]
        lines.append(f"  {w['host'] or '?':20} pid {w['pid'] or '?':<7} {w['state']:10} "
                     f"heartbeat {'?' if age is None else f'{age:.0f} s ago':10} {','.join(w['queues'])}")
    lines.append(f"{'Queues:':22} {'queued':>6} {'running':>8} {'workers':>8}")
    for q in data.get("queues") or []:
        lines.append(f"  {q['name']:20} {q['queued']:>6} {q['running']:>8} {q['workers']:>8}")
    counts = data.get("jobs")
    if counts:
        lines.append("Jobs      " + ", ".join(f"{counts[k]} {words}" for k, words in (
            ("queued", "queued"), ("running", "running"), ("waiting_for_human", "waiting for a person"))
            ) + f"; {counts['finished']} finished, {counts['failed']} failed, {counts['cancelled']} cancelled")
    d = data.get("disk") or {}
    if d.get("error"):
        lines.append(f"Disk      {d['path']}: {d['error']}")
    elif d:
        share = d["free_bytes"] / d["total_bytes"] if d["total_bytes"] else 0
        lines.append(f"Disk      {_size(d['free_bytes'])} free of {_size(d['total_bytes'])} ({share:.0%}) in {d['path']}")
    oldest = data.get("oldest_open_intervention")
    if oldest:
        lines.append(f"Oldest open intervention: #{oldest['id']} {oldest['type']} on {oldest['domain']}, "
                     f"opened {oldest['created_at']}")
    return lines


def render_status(data: dict[str, Any]) -> str:
    r, d = data["redis"], data["database"]
    lines = [
        f"Redis     {'ok' if r['ok'] else 'DOWN: ' + str(r['error'])}  {r['url']}",
        f"Database  {'ok' if d['ok'] else 'DOWN: ' + str(d['error'])}  {d['url']} (schema {d['schema']})",
    ]
    if r.get("persistence_warning"):
        lines.append(f"WARNING   {r['persistence_warning']}")
    lines.extend(render_notifications(data))
    lines.append("")
    if data["parked"]:
        lines.append(f"Parked requests: {data['parked_total']}")
        for p in data["parked"]:
            lines.append(f"  {p['spider']:24} {p['domain']:30} {p['parked']:>7}")
    else:
        lines.append("Parked requests: none")
    lines += ["", *render_ops(data)]
    if data["paused_spiders"]:
        lines.append(f"Paused spiders: {', '.join(data['paused_spiders'])}")
    spilled = data.get("unwritten_files") or []
    if spilled:
        total = sum(f.get("parks", 0) for f in spilled)
        lines.append(f"Saved on this host, not yet in Redis: {total} parked requests in "
                     f"{len(spilled)} file(s); the next crawl started on this host with this "
                     "data dir parks them")
        for f in spilled:
            what = (f"{f['spider']:24} {f['parks']:>7} parked, {f['acks']} acks"
                    if "error" not in f else f"unreadable: {f['error']}")
            lines.append(f"  {what}  {f['path']}")
    lines.append("")
    opened = data["open_interventions"]
    if opened:
        lines.append(f"Open interventions: {len(opened)}")
        for i in opened:
            lines.append(f"  #{i['id']:<5} {i['type']:14} {i['reason'][:22]:22} {i['domain']:28} "
                         f"parked {i['parked_count']}")
        lines.append("Resolve one with: hitl interventions resolve ID --cookies FILE")
    else:
        lines.append("Open interventions: none")
    return "\n".join(lines)


def _notifications(state: HitlState) -> dict[str, Any]:
    from hitl_console.notify.config import failing_channels

    return failing_channels(state)


def render_notifications(data: dict[str, Any]) -> list[str]:
    """``WARNING`` lines for channels that keep failing (docs/notifications.md)."""
    return [f"WARNING   Notification channel {c['name']!r} is failing: {c['failures']} attempts in a row "
            f"failed; last: {c['last_error']}. Check it with: hitl notify test {c['name']}"
            for c in (data.get("notifications") or {}).get("failing", [])]
