"""Notification rules: which events go to which channels, and who is told next when nobody
takes an item.

A rule is ``{name, event, filters, channels, escalate, enabled}``:

- ``event``: one of RULE_EVENTS. ``intervention.created`` (any type; ``run_anomaly`` is one
  too), ``consultation.created``, ``review_queue`` (the queue of items held for review
  reaching ``threshold``), ``run.failed``, ``run_anomaly`` (only that type of
  intervention) and ``job.failed``.
- ``filters``: ``types`` (intervention types), ``domains`` (exact, or ``*.example.com``),
  ``min_priority`` (-100..100), ``threshold`` (review_queue only, default 1).
- ``channels``: channel ids; empty means every channel.
- ``escalate``: ``[{"after": seconds, "channel": id}, ...]`` for interventions and
  consultations: if the item is neither owned ("I'm on it") nor closed ``after`` seconds
  after the previous step, that channel is told. Steps chain (team -> on-call -> lead).

With no rule at all nothing is sent; adding the first channel seeds DEFAULT_RULES (every
intervention, and every consultation of priority 50 or more, to every channel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scrapy_hitl.state import notify_channels
from scrapy_hitl.state.models import NotifyRule, iso, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from scrapy_hitl.state import HitlState

RULE_EVENTS = ("intervention.created", "consultation.created", "review_queue", "run.failed", "run_anomaly",
               "job.failed")
# The events whose items can be owned, so a rule on them may escalate.
ESCALATING_EVENTS = ("intervention.created", "consultation.created", "run_anomaly")
INTERVENTION_TYPES = ("manual_access", "login_refresh", "captcha_solve", "selector_fix", "run_anomaly")
HIGH_PRIORITY = 50  # a consultation from this priority up is "high priority" (docs/consultations.md)
FILTERS = ("types", "domains", "min_priority", "threshold")
MAX_STEPS = 10

DEFAULT_RULES = (
    {"name": "Every intervention", "event": "intervention.created", "filters": {}},
    {"name": "High-priority consultations", "event": "consultation.created",
     "filters": {"min_priority": HIGH_PRIORITY}},
)


class RuleNotFound(LookupError):
    def __init__(self, rule_id: Any) -> None:
        super().__init__(f"No notification rule {rule_id!r}. List them with `hitl notify rules`.")


class RuleInvalid(ValueError):
    """Raised with ``detail``: {field: what is wrong}; the API answers 422 with it."""

    def __init__(self, detail: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in detail.items()))
        self.detail = detail


def rule_to_dict(row: NotifyRule) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "event": row.event, "filters": row.filters,
            "channels": row.channels, "escalate": row.escalate, "enabled": row.enabled,
            "created_by": row.created_by, "created_at": iso(row.created_at)}


def _channel_ids(s: Session, refs: Any, field: str, errors: dict[str, str]) -> list[int]:
    """Channel ids from ids or names; names the first unknown one."""
    if refs is None:
        return []
    if not isinstance(refs, list):
        errors[field] = "a list of channel ids or names"
        return []
    found: list[int] = []
    for ref in refs:
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            errors[field] = f"{ref!r} is not a channel id or name"
            return []
        row = notify_channels.lookup(s, ref)
        if row is None:
            errors[field] = f"unknown channel {ref!r}; see `hitl notify list`"
            return []
        found.append(row.id)
    return found


def check(s: Session, data: dict[str, Any]) -> dict[str, Any]:
    """A rule's fields, checked and normalized; RuleInvalid naming every bad field."""
    errors: dict[str, str] = {}
    unknown = set(data) - {"name", "event", "filters", "channels", "escalate", "enabled"}
    for k in sorted(unknown):
        errors[k] = "unknown field"
    event = data.get("event")
    if event not in RULE_EVENTS:
        errors["event"] = f"unknown event {event!r}; one of {', '.join(RULE_EVENTS)}"
    name = data.get("name") or (event if isinstance(event, str) else "")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or not notify_channels.storable(name):
        errors["name"] = "1 to 200 characters (no NUL bytes or lone surrogates)"
    filters = data.get("filters") or {}
    if not isinstance(filters, dict):
        errors["filters"] = "an object"
        filters = {}
    for k in sorted(set(filters) - set(FILTERS)):
        errors[f"filters.{k}"] = f"unknown filter; one of {', '.join(FILTERS)}"
    types = filters.get("types")
    if types is not None and (not isinstance(types, list) or any(t not in INTERVENTION_TYPES for t in types)):
        errors["filters.types"] = f"a list of intervention types: {', '.join(INTERVENTION_TYPES)}"
    domains = filters.get("domains")
    if domains is not None and (not isinstance(domains, list)
                                or any(not isinstance(d, str) or not d.strip() for d in domains)):
        errors["filters.domains"] = "a list of domains (example.com, or *.example.com)"
    for key, low, high in (("min_priority", -100, 100), ("threshold", 1, 1_000_000)):
        value = filters.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            errors[f"filters.{key}"] = f"a whole number from {low} to {high}"
    channels = _channel_ids(s, data.get("channels"), "channels", errors)
    escalate_in = data.get("escalate") or []
    escalate: list[dict[str, Any]] = []
    if not isinstance(escalate_in, list) or len(escalate_in) > MAX_STEPS:
        errors["escalate"] = f"a list of up to {MAX_STEPS} steps {{after: seconds, channel}}"
    else:
        if escalate_in and event not in ESCALATING_EVENTS:
            errors["escalate"] = f"only rules on {', '.join(ESCALATING_EVENTS)} escalate (their items can be owned)"
        for n, step in enumerate(escalate_in):
            after = step.get("after") if isinstance(step, dict) else None
            if isinstance(after, bool) or not isinstance(after, (int, float)) or not 0 < after <= 30 * 86400:
                errors[f"escalate[{n}].after"] = "seconds, more than 0 and at most 30 days"
                continue
            ids = _channel_ids(s, [step.get("channel")], f"escalate[{n}].channel", errors)
            if ids:
                escalate.append({"after": float(after), "channel": ids[0]})
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        errors["enabled"] = "true or false"
    if errors:
        raise RuleInvalid(errors)
    clean_filters = {k: v for k, v in filters.items() if v is not None}
    if "domains" in clean_filters:
        clean_filters["domains"] = [d.strip().lower() for d in clean_filters["domains"]]
    return {"name": name.strip(), "event": event, "filters": clean_filters, "channels": channels,
            "escalate": escalate, "enabled": enabled}


def add(hitl: HitlState, data: dict[str, Any], *, actor: str) -> dict[str, Any]:
    with hitl.db.session() as s:
        fields = check(s, data)
        row = NotifyRule(**fields, created_by=actor, created_at=utcnow())
        s.add(row)
        s.flush()
        return rule_to_dict(row)


def update_(hitl: HitlState, rule_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Change some fields of a rule; the whole rule is checked again."""
    with hitl.db.session() as s:
        row = s.get(NotifyRule, rule_id)
        if row is None:
            raise RuleNotFound(rule_id)
        current = {k: v for k, v in rule_to_dict(row).items() if k in ("name", "event", "filters", "channels",
                                                                      "escalate", "enabled")}
        fields = check(s, {**current, **changes})
        for k, v in fields.items():
            setattr(row, k, v)
        s.flush()
        return rule_to_dict(row)


def remove(hitl: HitlState, rule_id: int) -> dict[str, Any]:
    with hitl.db.session() as s:
        row = s.get(NotifyRule, rule_id)
        if row is None:
            raise RuleNotFound(rule_id)
        data = rule_to_dict(row)
        s.delete(row)
        return data


def list_(hitl: HitlState, *, enabled_only: bool = False) -> list[dict[str, Any]]:
    q = select(NotifyRule).order_by(NotifyRule.id)
    if enabled_only:
        q = q.where(NotifyRule.enabled.is_(True))
    with hitl.db.session() as s:
        return [rule_to_dict(r) for r in s.scalars(q)]


def get(hitl: HitlState, rule_id: int) -> dict[str, Any]:
    with hitl.db.session() as s:
        row = s.get(NotifyRule, rule_id)
        if row is None:
            raise RuleNotFound(rule_id)
        return rule_to_dict(row)


def seed_defaults(s: Session, *, actor: str) -> None:
    """In the caller's transaction: DEFAULT_RULES, to every channel, no escalation."""
    now = utcnow()
    for rule in DEFAULT_RULES:
        s.add(NotifyRule(name=rule["name"], event=rule["event"], filters=dict(rule["filters"]), channels=[],
                         escalate=[], enabled=True, created_by=actor, created_at=now))
