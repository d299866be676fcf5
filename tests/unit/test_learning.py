"""Tests for scrapy_hitl.learning: the pure rules a domain's counters feed."""

from __future__ import annotations

import pytest

from scrapy_hitl.learning import (
    DomainCounters,
    access_class_for,
    access_class_for_tiers,
    decide_requires_session,
    merge_tier_patterns,
    tier_floor,
)

# (current, attempts, blocked_403, min_attempts, block_rate) -> expected
REQUIRES_SESSION = [
    pytest.param("unknown", 9, 9, 10, 0.8, "unknown", id="below-min-attempts-all-blocked"),
    pytest.param("unknown", 10, 8, 10, 0.8, "required", id="rate-exactly-at-threshold"),
    pytest.param("unknown", 10, 7, 10, 0.8, "unknown", id="rate-just-below-threshold"),
    pytest.param("unknown", 100, 100, 10, 0.8, "required", id="every-attempt-blocked"),
    pytest.param("unknown", 10, 0, 10, 0.8, "unknown", id="no-blocks"),
    pytest.param("unknown", 1, 1, 1, 1.0, "required", id="min-one-rate-one"),
    pytest.param("required", 100, 0, 10, 0.8, "required", id="required-is-sticky"),
    pytest.param("not_required", 100, 100, 10, 0.8, "not_required", id="human-decision-wins"),
    pytest.param("unknown", 0, 0, 10, 0.8, "unknown", id="no-attempts-yet"),
]


@pytest.mark.parametrize(
    ("current", "attempts", "blocked_403", "min_attempts", "block_rate", "expected"),
    REQUIRES_SESSION,
)
def test_decide_requires_session(current, attempts, blocked_403, min_attempts, block_rate, expected):
    got = decide_requires_session(
        current,
        attempts=attempts,
        blocked_403=blocked_403,
        min_attempts=min_attempts,
        block_rate=block_rate,
    )
    assert got == expected


ACCESS_CLASS = [
    pytest.param("public", "required", "human", id="public-to-human-when-required"),
    pytest.param("infra", "required", "human", id="infra-to-human-when-required"),
    pytest.param("public", "unknown", "public", id="public-stays-when-unknown"),
    pytest.param("infra", "unknown", "infra", id="infra-stays-when-unknown"),
    pytest.param("infra", "not_required", "infra", id="infra-stays-when-not-required"),
    pytest.param("human", "not_required", "human", id="human-stays-until-a-human-changes-it"),
]


@pytest.mark.parametrize(("current", "requires_session", "expected"), ACCESS_CLASS)
def test_access_class_for(current, requires_session, expected):
    assert access_class_for(current, requires_session) == expected


# One response each: (record kwargs) -> the counters it must move, all others stay 0.
RECORD = [
    pytest.param(
        {"engine": "static", "ok": True, "status": 200},
        {"successes": 1},
        id="ok-200",
    ),
    pytest.param(
        {"engine": "static", "ok": False, "status": 403, "reason": "forbidden", "kind": "manual_access"},
        {"blocked_403": 1},
        id="plain-403",
    ),
    pytest.param(
        {"engine": "static", "ok": False, "status": 403, "reason": "session_rejected", "kind": "login_refresh"},
        {"blocked_403": 1},
        id="403-with-session",
    ),
    pytest.param(
        {"engine": "static", "ok": False, "status": 403, "reason": "cloudflare", "kind": "captcha_solve"},
        {"captchas": 1},
        id="captcha-served-with-403-is-not-a-403-block",
    ),
    pytest.param(
        {"engine": "browser", "ok": False, "status": 200, "reason": "recaptcha", "kind": "captcha_solve"},
        {"captchas": 1},
        id="captcha-served-with-200",
    ),
    pytest.param(
        {"engine": "static", "ok": False, "status": 403, "reason": "hard_block", "kind": "manual_access"},
        {"hard_blocks": 1},
        id="hard-block-403-is-not-a-403-block",
    ),
    pytest.param(
        {"engine": "static", "ok": False, "status": 401, "reason": "unauthorized", "kind": "login_refresh"},
        {"blocked_401": 1},
        id="401",
    ),
    pytest.param(
        {"engine": "static", "ok": False, "status": 503},
        {},
        id="503-counts-only-the-attempt",
    ),
]


@pytest.mark.parametrize(("kwargs", "moved"), RECORD)
def test_record_counts_one_response(kwargs, moved):
    c = DomainCounters()
    c.record(**kwargs)
    expected = {
        "attempts": 1,
        "successes": 0,
        "blocked_403": 0,
        "blocked_401": 0,
        "captchas": 0,
        "hard_blocks": 0,
        "engines": {kwargs["engine"]: {"attempts": 1, "successes": int(kwargs["ok"])}},
        "tiers": {},
    }
    expected.update(moved)
    assert c.as_dict() == expected
    # counters are ints, not bools that happen to add up
    assert all(type(v) is int for k, v in c.as_dict().items() if k not in ("engines", "tiers"))


def test_record_accumulates_per_engine():
    c = DomainCounters()
    assert not c
    for _ in range(3):
        c.record(engine="static", ok=False, status=403)
    c.record(engine="static", ok=True, status=200)
    c.record(engine="browser", ok=True, status=200)
    c.record(engine="browser", ok=False, status=200, reason="turnstile", kind="captcha_solve")
    assert c
    assert c.as_dict() == {
        "attempts": 6,
        "successes": 2,
        "blocked_403": 3,
        "blocked_401": 0,
        "captchas": 1,
        "hard_blocks": 0,
        "engines": {
            "static": {"attempts": 4, "successes": 1},
            "browser": {"attempts": 2, "successes": 1},
        },
        "tiers": {},
    }


def test_counters_feed_the_rule():
    """Ten 403s out of ten attempts cross the default threshold; captchas do not."""
    blocked, captcha = DomainCounters(), DomainCounters()
    for _ in range(10):
        blocked.record(engine="static", ok=False, status=403)
        captcha.record(engine="static", ok=False, status=403, reason="datadome", kind="captcha_solve")
    rule = {"min_attempts": 10, "block_rate": 0.8}
    assert decide_requires_session(
        "unknown", attempts=blocked.attempts, blocked_403=blocked.blocked_403, **rule
    ) == "required"
    assert decide_requires_session(
        "unknown", attempts=captcha.attempts, blocked_403=captcha.blocked_403, **rule
    ) == "unknown"


ACCESS_CLASS_FOR_TIERS = [
    pytest.param("public", "static", "public", id="public-stays-when-static-works"),
    pytest.param("public", "browser", "infra", id="public-to-infra-when-all-need-a-browser"),
    pytest.param("public", "stealth", "infra", id="public-to-infra-when-all-need-stealth"),
    pytest.param("infra", "static", "public", id="infra-back-to-public-when-static-works"),
    pytest.param("infra", "browser", "infra", id="infra-stays-with-browser"),
    pytest.param("infra", "stealth", "infra", id="infra-stays-with-stealth"),
    pytest.param("human", "static", "human", id="human-never-changes-static"),
    pytest.param("human", "browser", "human", id="human-never-changes-browser"),
    pytest.param("public", "human", "public", id="human-floor-is-left-to-the-session-rule"),
]


@pytest.mark.parametrize(("current", "floor", "expected"), ACCESS_CLASS_FOR_TIERS)
def test_access_class_for_tiers(current, floor, expected):
    assert access_class_for_tiers(current, floor) == expected


def entry(tier: str, updated: float, failures: int = 0) -> dict:
    return {"tier": tier, "recheck_failures": failures, "updated": updated}


MERGE = [
    pytest.param({}, {"/a": entry("browser", 5)}, 10, {"/a": entry("browser", 5)}, id="first-pattern"),
    pytest.param(None, {"/a": entry("browser", 5)}, 10, {"/a": entry("browser", 5)}, id="nothing-persisted"),
    pytest.param({"/a": entry("static", 1)}, {"/a": entry("browser", 5)}, 10, {"/a": entry("browser", 5)},
                 id="newer-wins"),
    pytest.param({"/a": entry("browser", 9)}, {"/a": entry("static", 5)}, 10, {"/a": entry("browser", 9)},
                 id="older-flush-does-not-regress"),
    pytest.param({"/a": entry("static", 5)}, {"/a": entry("browser", 5, 2)}, 10, {"/a": entry("browser", 5, 2)},
                 id="tie-goes-to-the-flush"),
    pytest.param({"/a": entry("static", 1), "/b": entry("static", 2)}, {"/c": entry("browser", 3)}, 10,
                 {"/a": entry("static", 1), "/b": entry("static", 2), "/c": entry("browser", 3)},
                 id="other-patterns-kept"),
    pytest.param({"/a": entry("static", 1), "/b": entry("static", 4)}, {"/c": entry("browser", 3)}, 2,
                 {"/b": entry("static", 4), "/c": entry("browser", 3)}, id="trimmed-to-most-recent"),
    pytest.param({"/a": "garbage", "/b": entry("static", 4)}, {}, 10, {"/b": entry("static", 4)},
                 id="malformed-persisted-entry-dropped"),
]


@pytest.mark.parametrize(("current", "incoming", "limit", "expected"), MERGE)
def test_merge_tier_patterns(current, incoming, limit, expected):
    assert merge_tier_patterns(current, incoming, limit=limit) == expected


@pytest.mark.parametrize(("patterns", "expected"), [
    pytest.param({}, None, id="nothing-learned"),
    pytest.param({"/a": entry("stealth", 1), "/b": entry("browser", 2)}, "browser", id="lowest"),
    pytest.param({"/a": entry("stealth", 1), "/b": entry("static", 2)}, "static", id="static"),
    pytest.param({"/a": {"updated": 1}}, None, id="no-tier"),
])
def test_tier_floor(patterns, expected):
    assert tier_floor(patterns) == expected


def test_learn_tier_keeps_the_latest_and_makes_the_counters_worth_a_flush():
    c = DomainCounters()
    assert not c
    c.learn_tier("/a", entry("browser", 5))
    assert c  # no attempts, but a change to write
    c.learn_tier("/a", entry("static", 3))  # an older entry arriving late
    c.learn_tier("/b", entry("stealth", 4))
    c.learn_tier("/b", entry("browser", 6, 1))
    assert c.as_dict()["tiers"] == {"/a": entry("browser", 5), "/b": entry("browser", 6, 1)}
    assert c.attempts == 0
