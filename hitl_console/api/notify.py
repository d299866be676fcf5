"""`/api/v1/notify/...`: notification channels and rules (admins), the messages sent and
their attempts, and ownership ("I'm on it") of interventions and consultations.

Channel URLs are checked by Apprise (422 naming what is wrong), stored encrypted and only
ever answered redacted. See docs/notifications.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, current_app, g, jsonify, request

from hitl_console import api
from hitl_console.auth.guard import require
from hitl_console.bounds import MAX_ID
from hitl_console.errors import ApiError
from scrapy_hitl.state import (consultations, interventions, models, notifications, notify_channels, notify_rules,
                               ownership)

if TYPE_CHECKING:
    from collections.abc import Callable

    from hitl_console.notify.config import NotifyConfig

bp = Blueprint("notify", __name__)


def _config() -> NotifyConfig:
    config = current_app.extensions.get("hitl_notify")
    if config is None:
        from hitl_console.notify.config import NotifyConfig

        try:
            config = NotifyConfig.from_env()
        except ValueError as exc:
            raise ApiError(503, "misconfigured", str(exc)) from None
        current_app.extensions["hitl_notify"] = config
    return config


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (notify_channels.ChannelNotFound, notify_rules.RuleNotFound, interventions.InterventionNotFound,
            consultations.ConsultationNotFound) as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except notify_rules.RuleInvalid as exc:
        raise ApiError(422, "invalid", exc.detail) from None
    except notify_channels.ChannelInvalid as exc:
        raise ApiError(422, "invalid", {"name": str(exc)}) from None
    except ownership.NotOwnable as exc:
        raise ApiError(409, "closed", str(exc)) from None


def _actor() -> str:
    return f"user:{g.user['email']}"


# --- channels ------------------------------------------------------------------------------------


@bp.get("/api/v1/notify/channels")
@require("admin")
def channels_list() -> Any:
    return jsonify({"items": notify_channels.list_(api.state(), failing_after=_config().failing_after)})


@bp.post("/api/v1/notify/channels")
@require("admin")
def channels_add() -> Any:
    """``{"url": "slack://...", "name"?: "team"}``: 201 with the channel, its URL redacted."""
    from hitl_console.notify.channels import ChannelUrlError, check_url

    data = api.json_object({"url", "name"})
    try:
        scheme, redacted = check_url(data.get("url"))
    except ChannelUrlError as exc:
        raise ApiError(422, "invalid", {"url": str(exc)}) from None
    name = data.get("name") or scheme
    if not isinstance(name, str):
        raise ApiError(422, "invalid", {"name": "must be a string"})
    channel = _call(notify_channels.add, api.state(), name=name, url=data["url"].strip(), scheme=scheme,
                    redacted=redacted, actor=_actor())
    return jsonify(channel), 201


@bp.delete("/api/v1/notify/channels/<int:channel_id>")
@require("admin")
def channels_remove(channel_id: int) -> Any:
    return jsonify(_call(notify_channels.remove, api.state(), channel_id))


@bp.post("/api/v1/notify/channels/<int:channel_id>/test")
@require("admin")
def channels_test(channel_id: int) -> Any:
    """Send a test message now: ``outcome`` is ``delivered`` or ``failed``, with ``error``
    the service's answer (an SMTP server's refusal, a connection error)."""
    from hitl_console.notify.delivery import send_test

    return jsonify(_call(send_test, api.state(), _config(), channel_id, actor=_actor()))


# --- rules ---------------------------------------------------------------------------------------

_RULE_FIELDS = {"name", "event", "filters", "channels", "escalate", "enabled"}


@bp.get("/api/v1/notify/rules")
@require("admin")
def rules_list() -> Any:
    return jsonify({"items": notify_rules.list_(api.state()), "events": list(notify_rules.RULE_EVENTS)})


@bp.post("/api/v1/notify/rules")
@require("admin")
def rules_add() -> Any:
    data = api.json_object(_RULE_FIELDS)
    return jsonify(_call(notify_rules.add, api.state(), data, actor=_actor())), 201


@bp.patch("/api/v1/notify/rules/<int:rule_id>")
@require("admin")
def rules_update(rule_id: int) -> Any:
    _call(notify_rules.get, api.state(), rule_id)  # an unknown id is 404 whatever the body
    return jsonify(_call(notify_rules.update_, api.state(), rule_id, api.json_object(_RULE_FIELDS)))


@bp.delete("/api/v1/notify/rules/<int:rule_id>")
@require("admin")
def rules_remove(rule_id: int) -> Any:
    return jsonify(_call(notify_rules.remove, api.state(), rule_id))


# --- messages --------------------------------------------------------------------------------------


@bp.get("/api/v1/notifications")
@require()
def messages_list() -> Any:
    """Newest first: ``?limit=&cursor=&state=&channel_id=``."""
    limit, cursor = api.page_args(1)
    state = api.choice_arg("state", models.NOTIFICATION_STATES)
    channel = request.args.get("channel_id")
    if channel is not None and not (channel.isascii() and channel.isdigit() and int(channel) <= MAX_ID):
        raise ApiError(400, "bad_request", {"channel_id": "a channel id"})
    before = cursor[0] if cursor else None
    if before is not None and (type(before) is not int or before < 0):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    rows = notifications.list_(api.state().db, limit=limit + 1, before=before, state=state,
                               channel_id=int(channel) if channel else None)
    return api.page(rows, limit, lambda n: [n["id"]])


@bp.get("/api/v1/notifications/<int:notification_id>/attempts")
@require()
def message_attempts(notification_id: int) -> Any:
    if notifications.get(api.state().db, notification_id) is None:
        raise ApiError(404, "not_found", f"No notification {notification_id}")
    return jsonify({"items": notifications.attempts(api.state().db, notification_id=notification_id)})


# --- ownership: "I'm on it" --------------------------------------------------------------------------


def _own(kind: str, item_id: int, take: bool) -> Any:
    state = api.state()
    if take:
        result = _call(ownership.take, state, kind, item_id, owner=g.user["email"], actor=_actor())
    else:
        result = _call(ownership.release, state, kind, item_id, actor=_actor())
    return jsonify(result)


@bp.post("/api/v1/interventions/<int:intervention_id>/owner")
@require()
def intervention_take(intervention_id: int) -> Any:
    """The caller is on it: the intervention is theirs, and its escalation stops."""
    return _own("intervention", intervention_id, True)


@bp.delete("/api/v1/interventions/<int:intervention_id>/owner")
@require()
def intervention_release(intervention_id: int) -> Any:
    return _own("intervention", intervention_id, False)


@bp.post("/api/v1/consultations/<int:consultation_id>/owner")
@require()
def consultation_take(consultation_id: int) -> Any:
    return _own("consultation", consultation_id, True)


@bp.delete("/api/v1/consultations/<int:consultation_id>/owner")
@require()
def consultation_release(consultation_id: int) -> Any:
    return _own("consultation", consultation_id, False)
