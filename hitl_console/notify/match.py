"""Which rules an event satisfies (pure; table-tested in tests/notify/test_match.py)."""

from __future__ import annotations

from typing import Any

# stream event -> the rule events it can satisfy
_RULE_EVENTS = {
    "intervention.created": ("intervention.created", "run_anomaly"),
    "consultation.created": ("consultation.created",),
    "item.review_required": ("review_queue",),
    "run.failed": ("run.failed",),
    "job.failed": ("job.failed",),
}
# stream events that close an item, so its escalations stop
CLOSING = {
    "intervention.resolved": "intervention", "intervention.cancelled": "intervention",
    "intervention.expired": "intervention", "consultation.responded": "consultation",
    "consultation.cancelled": "consultation", "consultation.timed_out": "consultation",
}


def interesting(event_type: str) -> bool:
    """Whether the router needs to look at this stream event at all."""
    return event_type in _RULE_EVENTS or event_type in CLOSING


def domain_matches(domain: str, patterns: list[str]) -> bool:
    """``example.com`` matches itself; ``*.example.com`` matches it and its subdomains."""
    domain = (domain or "").lower()
    for p in patterns:
        if p.startswith("*."):
            if domain == p[2:] or domain.endswith(p[1:]):
                return True
        elif domain == p:
            return True
    return False


def matches(rule: dict[str, Any], event_type: str, facts: dict[str, Any]) -> bool:
    """Whether ``rule`` fires for a stream event of ``event_type`` whose item has ``facts``
    (``type``, ``domain``, ``priority``, ``pending`` as they apply)."""
    if not rule.get("enabled", True):
        return False
    event = rule["event"]
    if event not in _RULE_EVENTS.get(event_type, ()):
        return False
    if event == "run_anomaly" and facts.get("type") != "run_anomaly":
        return False
    f = rule.get("filters") or {}
    if f.get("types") and facts.get("type") not in f["types"]:
        return False
    if f.get("domains") and not domain_matches(str(facts.get("domain") or ""), f["domains"]):
        return False
    if f.get("min_priority") is not None and int(facts.get("priority") or 0) < f["min_priority"]:
        return False
    if event == "review_queue" and int(facts.get("pending") or 0) < int(f.get("threshold") or 1):
        return False
    return True
