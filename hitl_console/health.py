"""``GET /health``: readiness of the database and Redis, and the age of the last event.

Unauthenticated on purpose (load balancers call it); it reveals no data, only health.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


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
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
        checks["last_event_age_seconds"] = None
    ready = checks["database"]["ok"] and checks["redis"]["ok"]
    return jsonify({"status": "ok" if ready else "unavailable", **checks}), 200 if ready else 503
