"""The Notifications page (admins): channels, rules, and every message with its attempts.

A shell like the other pages (:mod:`hitl_console.pages`): ``static/js/notifications.js``
fills it from ``/api/v1/notify/...`` and ``/api/v1/notifications``.
"""

from __future__ import annotations

from flask import Blueprint

from hitl_console.pages import _page, admin_required
from scrapy_hitl.state import notify_rules

bp = Blueprint("notify_pages", __name__)


@bp.get("/notifications")
@admin_required
def notifications_page() -> str:
    return _page("notifications.html", "notifications", events=notify_rules.RULE_EVENTS,
                 types=notify_rules.INTERVENTION_TYPES)
