"""Which rules an event satisfies, and the escalation step syntax (pure, table-driven)."""

from __future__ import annotations

import click
import pytest

from hitl_console.cli_notify import parse_step
from hitl_console.notify.match import domain_matches, matches


def rule(event, **filters):
    return {"event": event, "filters": filters, "enabled": True}


@pytest.mark.parametrize(("rule_", "event_type", "facts", "expected"), [
    (rule("intervention.created"), "intervention.created", {"type": "manual_access", "domain": "a.com"}, True),
    (rule("intervention.created"), "intervention.created", {"type": "run_anomaly"}, True),
    (rule("intervention.created"), "intervention.updated", {"type": "manual_access"}, False),
    (rule("intervention.created", types=["captcha_solve"]), "intervention.created", {"type": "manual_access"}, False),
    (rule("intervention.created", types=["captcha_solve"]), "intervention.created", {"type": "captcha_solve"}, True),
    (rule("intervention.created", domains=["*.shop.com"]), "intervention.created", {"domain": "eu.shop.com"}, True),
    (rule("intervention.created", domains=["*.shop.com"]), "intervention.created", {"domain": "shop.com"}, True),
    (rule("intervention.created", domains=["*.shop.com"]), "intervention.created", {"domain": "myshop.com"}, False),
    (rule("intervention.created", min_priority=5), "intervention.created", {"priority": 4}, False),
    (rule("run_anomaly"), "intervention.created", {"type": "run_anomaly"}, True),
    (rule("run_anomaly"), "intervention.created", {"type": "manual_access"}, False),
    (rule("consultation.created", min_priority=50), "consultation.created", {"priority": 50}, True),
    (rule("consultation.created", min_priority=50), "consultation.created", {"priority": 49}, False),
    (rule("consultation.created"), "consultation.responded", {"priority": 99}, False),
    (rule("review_queue", threshold=10), "item.review_required", {"pending": 9}, False),
    (rule("review_queue", threshold=10), "item.review_required", {"pending": 10}, True),
    (rule("review_queue"), "item.review_required", {"pending": 1}, True),
    (rule("run.failed"), "run.failed", {"spider": "shop"}, True),
    (rule("run.failed"), "run.completed", {}, False),
    (rule("job.failed"), "job.failed", {}, True),
    ({**rule("run.failed"), "enabled": False}, "run.failed", {}, False),
])
def test_matches(rule_, event_type, facts, expected):
    assert matches(rule_, event_type, facts) is expected


@pytest.mark.parametrize(("domain", "patterns", "expected"), [
    ("shop.com", ["shop.com"], True),
    ("Shop.com", ["shop.com"], True),
    ("www.shop.com", ["shop.com"], False),
    ("www.shop.com", ["*.shop.com"], True),
    ("", ["*.shop.com"], False),
])
def test_domain_matches(domain, patterns, expected):
    assert domain_matches(domain, patterns) is expected


@pytest.mark.parametrize(("value", "expected"), [
    ("15m:oncall", {"after": 900.0, "channel": "oncall"}),
    ("15:oncall", {"after": 900.0, "channel": "oncall"}),
    ("90s:team", {"after": 90.0, "channel": "team"}),
    ("1.5h:3", {"after": 5400.0, "channel": 3}),
])
def test_parse_step(value, expected):
    assert parse_step(value) == expected


@pytest.mark.parametrize("value", ["oncall", "15m", "m:oncall", "-5m:x", "15d:x"])
def test_parse_step_refuses(value):
    with pytest.raises(click.BadParameter, match="write DELAY:CHANNEL"):
        parse_step(value)
