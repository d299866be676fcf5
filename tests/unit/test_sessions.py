"""scrapy_hitl.sessions: the pure parts of session pools (limits, rotation, scores)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from scrapy_hitl.sessions import DomainPool, PooledSession, SessionLimits, parse_limits
from scrapy_hitl.state.vault import Session

NOW = datetime.now(timezone.utc)


def session(name: str, *, age: float = 0.0, expires_in: float | None = None) -> Session:
    return Session(domain="shop.test", cookies=(), user_agent=None, proxy=None, health="unknown",
                   expires_at=NOW + timedelta(seconds=expires_in) if expires_in is not None else None,
                   name=name, captured_at=NOW - timedelta(seconds=age))


@pytest.mark.parametrize(
    ("limits", "entry", "expected"),
    [
        (SessionLimits(), PooledSession(session("a"), uses=10_000), None),
        (SessionLimits(max_uses=5), PooledSession(session("a"), uses=4), None),
        (SessionLimits(max_uses=5), PooledSession(session("a"), uses=5), "max_uses"),
        (SessionLimits(max_error_score=3), PooledSession(session("a"), error_score=2.5), None),
        (SessionLimits(max_error_score=3), PooledSession(session("a"), error_score=3), "max_error_score"),
        (SessionLimits(max_error_score=0), PooledSession(session("a"), error_score=99), None),
        (SessionLimits(max_age=3600), PooledSession(session("a", age=3599)), None),
        (SessionLimits(max_age=3600), PooledSession(session("a", age=3700)), "max_age"),
        (SessionLimits(), PooledSession(session("a", expires_in=60)), None),
        (SessionLimits(), PooledSession(session("a", expires_in=-1)), "expired"),
    ],
)
def test_limits(limits, entry, expected):
    assert limits.exceeded(entry, NOW.timestamp()) == expected


def test_pool_rotates_round_robin_and_retires_on_the_way():
    a, b, c = (PooledSession(session(n)) for n in "abc")
    pool = DomainPool("shop.test", [a, b, c], SessionLimits(max_uses=2))
    picked = []
    for _ in range(6):
        entry, retired = pool.pick()
        assert retired == []
        entry.uses += 1
        picked.append(entry.name)
    assert picked == ["a", "b", "c", "a", "b", "c"]
    entry, retired = pool.pick()
    assert entry is None and sorted((e.name, why) for e, why in retired) == [
        ("a", "max_uses"), ("b", "max_uses"), ("c", "max_uses")]
    assert sorted(e.name for e, _why in pool.retired) == ["a", "b", "c"] and pool.entries == []


def test_error_score_rises_on_blocks_and_falls_on_good_responses():
    entry = PooledSession(session("a"))
    pool = DomainPool("shop.test", [entry], SessionLimits(max_error_score=2))
    assert pool.bad(entry) is None and entry.error_score == 1
    pool.good(entry)
    assert entry.error_score == 0.5
    assert pool.bad(entry) is None
    assert pool.bad(entry) == "max_error_score" and entry.errors == 3


@pytest.mark.parametrize(
    ("base", "per_domain", "message"),
    [
        ({"max_uses": -1}, {}, "max_uses must be >= 0"),
        ({"max_age": "soon"}, {}, "max_age must be a number"),
        ({}, [], "HITL_SESSION_LIMITS must be a dict"),
        ({}, {"a.test": 5}, "HITL_SESSION_LIMITS['a.test'] must be a dict"),
        ({}, {"a.test": {"max_usage": 5}}, "unknown keys ['max_usage']"),
    ],
)
def test_bad_limits_name_the_setting(base, per_domain, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_limits(base, per_domain)


def test_per_domain_limits_fall_back_on_the_defaults():
    base, per_domain = parse_limits({"max_uses": 100}, {".Shop.test": {"max_age": 60}})
    assert base == SessionLimits(max_uses=100)
    assert per_domain == {"shop.test": SessionLimits(max_age=60, max_uses=100)}
