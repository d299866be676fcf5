"""``hitl status``: health of Redis and the database, parked counts, open interventions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy_hitl.state import pauses, spill
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
    }


def render_status(data: dict[str, Any]) -> str:
    r, d = data["redis"], data["database"]
    lines = [
        f"Redis     {'ok' if r['ok'] else 'DOWN: ' + str(r['error'])}  {r['url']}",
        f"Database  {'ok' if d['ok'] else 'DOWN: ' + str(d['error'])}  {d['url']} (schema {d['schema']})",
    ]
    if r.get("persistence_warning"):
        lines.append(f"WARNING   {r['persistence_warning']}")
    lines.append("")
    if data["parked"]:
        lines.append(f"Parked requests: {data['parked_total']}")
        for p in data["parked"]:
            lines.append(f"  {p['spider']:24} {p['domain']:30} {p['parked']:>7}")
    else:
        lines.append("Parked requests: none")
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
