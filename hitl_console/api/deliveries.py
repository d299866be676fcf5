"""``/api/v1/consultations/{id}/deliveries`` and ``/redeliver``: a consultation's webhooks.

Reading is open to console users and to the agent that asked (another agent's consultation
is 404, as everywhere in the consultations API). Redelivering is for console users: it sends
the consultation's latest webhook again, now, with the same ``webhook-id`` and body (the
receiver can tell it is the same event), and a fresh attempt budget if it had given up.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify

from hitl_console import api
from hitl_console.auth.guard import require, require_user_or_agent
from hitl_console.errors import ApiError
from scrapy_hitl.state import apikeys, consultations, deliveries, webhook_events

bp = Blueprint("api_deliveries", __name__)

MAX_ATTEMPTS_SHOWN = 1000  # attempts answered, oldest first (not paginated)


def _consultation(consultation_id: int) -> dict[str, Any]:
    agent = g.get("agent")
    try:
        return consultations.get(api.state(), consultation_id, owner=agent["id"] if agent else None)
    except consultations.ConsultationNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@bp.get("/api/v1/consultations/<int:consultation_id>/deliveries")
@require_user_or_agent()
def list_(consultation_id: int) -> Any:
    """``{"webhooks": [...newest first], "attempts": [...oldest first]}``."""
    _consultation(consultation_id)
    db = api.state().db
    return jsonify({"webhooks": webhook_events.list_for(db, consultation_id),
                    "attempts": deliveries.list_for(db, consultation_id, limit=MAX_ATTEMPTS_SHOWN)})


@bp.post("/api/v1/consultations/<int:consultation_id>/redeliver")
@require()
def redeliver(consultation_id: int) -> Any:
    consultation = _consultation(consultation_id)
    state = api.state()
    if consultation["api_key_id"] is not None \
            and apikeys.get(state, consultation["api_key_id"])["webhook_disabled_at"] is not None:
        raise ApiError(409, "webhook_disabled", "the agent's endpoint answered 410 Gone, so its webhooks are "
                                                "disabled; it must be re-enabled before anything is sent")
    try:
        event_id, event = webhook_events.redeliver(state.db, consultation_id, actor=f"user:{g.user['email']}")
    except webhook_events.NoWebhook as exc:
        raise ApiError(409, "no_webhook", str(exc)) from None
    webhook_events.dispatch(state, event_id)  # a failed enqueue is the sweep's
    return jsonify({"webhook": event}), 202
