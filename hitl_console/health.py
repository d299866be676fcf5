"""``GET /health`` (readiness) and ``GET /health/live`` (liveness).

Unauthenticated on purpose (load balancers and orchestrators call them); they reveal no
data, only health.

- ``/health/live``: the process answers; it touches neither the database nor Redis, so a
  database outage does not get every console process restarted.
- ``/health``: ready to serve, meaning the database and Redis answer (else 503). It also
  counts RQ's live workers per kind (crawls, webhooks) in ``workers``: with none the console
  still serves reviewers (``status`` stays ``ok``), but jobs and webhooks wait, so
  ``workers.ok`` is false for a monitor to alert on.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from scrapy_hitl.state import jobs, webhook_events

bp = Blueprint("health", __name__)


@bp.get("/health/live")
def live() -> Any:
    return jsonify({"status": "ok"})


def _workers(state: Any) -> dict[str, Any]:
    from rq import Worker

    serving = [set(w.queue_names()) for w in Worker.all(connection=state.redis)]
    crawls = sum(bool(queues & set(jobs.CRAWL_QUEUES)) for queues in serving)
    webhooks = sum(webhook_events.QUEUE in queues for queues in serving)
    return {"ok": bool(crawls and webhooks), "crawls": crawls, "webhooks": webhooks}


@bp.get("/health")
def health() -> Any:
    state = current_app.extensions["hitl"]
    checks: dict[str, Any] = {}
    try:
        state.db.ping()
        checks["database"] = {"ok": True}
    except Exception as exc:  # report, never raise: this is the health endpoint
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        state.redis.ping()
        checks["redis"] = {"ok": True}
        checks["last_event_age_seconds"] = state.events.last_event_age()
        checks["workers"] = _workers(state)
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
        checks["last_event_age_seconds"] = None
        checks["workers"] = {"ok": False, "crawls": 0, "webhooks": 0}
    ready = checks["database"]["ok"] and checks["redis"]["ok"]
    checks["notifications"] = _notifications(state)
    return jsonify({"status": "ok" if ready else "unavailable", **checks}), 200 if ready else 503


def _notifications(state: Any) -> dict[str, Any]:
    """Channels that keep failing (docs/notifications.md): flagged, not a readiness failure."""
    from hitl_console.notify.config import failing_channels

    found = failing_channels(state)
    return {"ok": found["ok"], "failing_channels": [c["name"] for c in found["failing"]]}
