"""Tests for scrapy_hitl.state.domains: flushed counters, their history samples, and pruning."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select

from scrapy_hitl.learning import DomainCounters
from scrapy_hitl.state import domains
from scrapy_hitl.state.models import DomainSample, utcnow

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: the batch INSERT and the prune run on both databases."""
    return request.param


def counters(attempts: int, blocked_403: int = 0, captchas: int = 0) -> DomainCounters:
    c = DomainCounters()
    for i in range(attempts):
        blocked = i < blocked_403
        captcha = not blocked and i < blocked_403 + captchas
        c.record(engine="http", ok=not (blocked or captcha), status=403 if blocked or captcha else 200,
                 kind="captcha_solve" if captcha else "")
    return c


def flush(state, batch):
    return domains.apply_counters(state.db, batch, min_attempts=1000, block_rate=0.8)


def test_each_flush_leaves_one_sample_per_domain_with_its_deltas(state):
    flush(state, {"a.example": counters(10, blocked_403=2), "b.example": counters(4)})
    flush(state, {"a.example": counters(5, blocked_403=5, captchas=0)})
    flush(state, {"a.example": counters(8, captchas=2)})
    assert domains.get(state.db, "a.example")["attempts"] == 23  # the totals still add up
    history = domains.history(state.db, "a.example")
    assert [(h["attempts"], h["blocked_403"], h["captchas"], h["block_rate"]) for h in history] == [
        (10, 2, 0, 0.2), (5, 5, 0, 1.0), (8, 0, 2, 0.0),
    ]
    assert [h["attempts"] for h in domains.history(state.db, "a.example", limit=2)] == [5, 8]
    assert [h["attempts"] for h in domains.history(state.db, "b.example")] == [4]
    assert domains.history(state.db, "nowhere.example") == []


def test_one_insert_per_flush_batch(state):
    statements = []

    def seen(_conn, _cursor, statement, _params, _context, _executemany):
        if "domain_samples" in statement and statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    event.listen(state.db.engine, "before_cursor_execute", seen)
    try:
        flush(state, {f"d{i}.example": counters(3, blocked_403=1) for i in range(25)})
    finally:
        event.remove(state.db.engine, "before_cursor_execute", seen)
    assert len(statements) == 1
    with state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(DomainSample)) == 25


def test_a_flush_prunes_its_domains_samples_past_the_retention(state):
    flush(state, {"a.example": counters(1), "idle.example": counters(1)})
    now = utcnow()
    old = now - domains.SAMPLE_RETENTION - timedelta(hours=1)
    recent = now - domains.SAMPLE_RETENTION + timedelta(hours=1)
    with state.db.session() as s:
        s.execute(insert(DomainSample), [
            {"domain": d, "at": at, "attempts": 7, "successes": 0, "blocked_403": 0, "blocked_401": 0,
             "captchas": 0, "hard_blocks": 0}
            for d in ("a.example", "idle.example") for at in (old, recent)
        ])
    flush(state, {"a.example": counters(2)})
    assert [h["attempts"] for h in domains.history(state.db, "a.example")] == [7, 1, 2]
    # a domain nobody crawls any more keeps what it had: it no longer grows either
    assert [h["attempts"] for h in domains.history(state.db, "idle.example")] == [7, 7, 1]


def test_list_domains_keyset_and_open_intervention_count(state):
    from scrapy_hitl.state import interventions

    flush(state, {d: counters(1) for d in ("c.example", "a.example", "b.example")})
    assert [d["domain"] for d in domains.list_domains(state.db)] == ["a.example", "b.example", "c.example"]
    assert [d["domain"] for d in domains.list_domains(state.db, after="a.example", limit=1)] == ["b.example"]
    interventions.open_or_update(state, type="manual_access", reason="http_403", domain="b.example")
    interventions.open_or_update(state, type="captcha_solve", reason="captcha", domain="b.example")
    assert domains.open_intervention_count(state.db, "b.example") == 2
    assert domains.open_intervention_count(state.db, "a.example") == 0


def tiers(**patterns) -> DomainCounters:
    """Counters carrying only learned tiers: pattern name -> (tier, updated)."""
    c = DomainCounters()
    for name, (tier, updated) in patterns.items():
        c.learn_tier(f"/{name}", {"tier": tier, "recheck_failures": 0, "updated": updated})
    return c


def learned(state, domain="a.example"):
    t = domains.get(state.db, domain)["tiers"]
    return {p: e["tier"] for p, e in t["patterns"].items()}, t["floor"]


def test_new_domains_have_no_tiers(state):
    out = flush(state, {"a.example": counters(3)})
    assert out["a.example"]["tiers"] == {"patterns": {}, "floor": None}
    assert domains.get(state.db, "a.example")["access_class"] == "public"


def test_tiers_merge_per_pattern_and_the_later_update_wins(state):
    out = flush(state, {"a.example": tiers(js=("browser", 10.0), home=("static", 10.0))})
    assert out["a.example"]["tiers"]["patterns"]["/js"] == {"tier": "browser", "recheck_failures": 0, "updated": 10.0}
    # a crawler flushing late: its older /js must not undo the newer one; its /home is newer
    flush(state, {"a.example": tiers(js=("static", 5.0), home=("browser", 20.0))})
    assert learned(state) == ({"/js": "browser", "/home": "browser"}, "browser")
    flush(state, {"a.example": tiers(js=("stealth", 30.0), new=("static", 31.0))})
    assert learned(state) == ({"/js": "stealth", "/home": "browser", "/new": "static"}, "static")


def test_a_flush_with_only_tiers_is_written_without_a_sample(state):
    flush(state, {"a.example": counters(4)})
    flush(state, {"a.example": tiers(js=("browser", 1.0))})
    row = domains.get(state.db, "a.example")
    assert row["attempts"] == 4 and learned(state)[0] == {"/js": "browser"}
    assert [h["attempts"] for h in domains.history(state.db, "a.example")] == [4]


def test_tiers_are_trimmed_to_the_most_recently_updated(state):
    from scrapy_hitl.tiers import MAX_PATTERNS

    flush(state, {"a.example": tiers(**{f"p{i}": ("browser", float(i)) for i in range(MAX_PATTERNS)})})
    flush(state, {"a.example": tiers(late=("stealth", 1000.0), stale=("static", -1.0))})
    patterns, floor = learned(state)
    assert len(patterns) == MAX_PATTERNS
    assert "/late" in patterns and "/p0" not in patterns and "/stale" not in patterns
    assert floor == "browser"


def test_the_floor_moves_the_access_class_to_infra_and_back(state):
    flush(state, {"a.example": tiers(js=("browser", 1.0), api=("stealth", 1.0))})
    assert domains.get(state.db, "a.example")["access_class"] == "infra"
    flush(state, {"a.example": tiers(api=("static", 2.0))})
    assert domains.get(state.db, "a.example")["access_class"] == "public"


def test_the_session_rule_wins_over_the_tiers(state):
    c = tiers(js=("static", 1.0))
    for _ in range(10):
        c.record(engine="static", ok=False, status=403)
    out = domains.apply_counters(state.db, {"a.example": c}, min_attempts=10, block_rate=0.8)
    assert (out["a.example"]["requires_session"], out["a.example"]["access_class"]) == ("required", "human")
    flush(state, {"a.example": tiers(js=("browser", 2.0))})
    assert domains.get(state.db, "a.example")["access_class"] == "human"


def test_a_hand_set_class_stays_until_tiers_are_learned(state):
    """Domains without learned tiers keep what a human set (no floor, no rule)."""
    flush(state, {"a.example": counters(2)})
    domains.update(state.db, "a.example", access_class="infra")
    flush(state, {"a.example": counters(2)})
    assert domains.get(state.db, "a.example")["access_class"] == "infra"


def test_setting_a_domain_to_what_it_is_does_not_touch_it(state):
    """The domains pages say when a domain last changed: a set that changes nothing (a resolve
    saying "required" again, the same class chosen twice) must not move it."""
    domains.update(state.db, "a.example", requires_session="required")
    before = domains.get(state.db, "a.example")
    same = domains.update(state.db, "a.example", requires_session="required")
    assert same == before
    changed = domains.update(state.db, "a.example", requires_session="not_required", access_class="public")
    assert changed["requires_session"] == "not_required"
    assert changed["updated_at"] > before["updated_at"]


def test_what_a_crawler_learns_is_what_the_next_run_starts_with(state):
    from scrapy_hitl.tiers import TIERS, Ladder, Plan, TierMemory

    first = TierMemory(Ladder(TIERS))
    for pattern, tier in (("/js/{n}", "browser"), ("/guarded/page/{n}", "stealth")):
        first.succeeded("a.example", pattern, first.plan("a.example", pattern), tier)
    batch = {}
    for domain, entries in first.take_dirty().items():
        for pattern, entry in entries.items():
            batch.setdefault(domain, DomainCounters()).learn_tier(pattern, entry)
    flush(state, batch)

    second = TierMemory(Ladder(TIERS))
    for domain, info in domains.load_all(state.db).items():
        second.load(domain, info["tiers"])
    assert second.learned("a.example") == first.learned("a.example")
    assert second.plan("a.example", "/js/{n}") == Plan("browser", "browser", False, known=True)
    assert second.plan("a.example", "/new") == Plan("browser", "browser", False)  # the floor


def test_crawlers_and_a_reviewer_adding_a_new_domain_at_once_all_succeed(state):
    """The first flush of several crawlers and a CLI resolve that marks the domain as needing a
    session, all for a domain nobody has seen: one row, every counter added, no error."""
    import threading

    n = 6
    barrier = threading.Barrier(n)
    errors = []

    def worker(i):
        barrier.wait()
        try:
            if i == 0:
                domains.update(state.db, "new.example", requires_session="required")
            else:
                flush(state, {"new.example": counters(10), f"own{i}.example": counters(1)})
        except Exception as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    found = domains.get(state.db, "new.example")
    assert found["attempts"] == 10 * (n - 1)
    assert found["requires_session"] == "required"
    assert len(domains.list_domains(state.db)) == n


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "required"),  # no row yet
        ("unknown", "required"),
        ("required", "required"),
        ("not_required", "not_required"),  # a human's "no" stands
    ],
)
def test_a_fix_with_a_session_marks_the_domain_unless_a_human_said_no(state, before, after):
    if before is not None:
        domains.update(state.db, "a.example", requires_session=before)
    stamped = (domains.get(state.db, "a.example") or {}).get("updated_at")
    assert domains.require_session(state.db, "a.example")["requires_session"] == after
    assert domains.get(state.db, "a.example")["requires_session"] == after
    if before in ("required", "not_required"):
        assert domains.get(state.db, "a.example")["updated_at"] == stamped  # nothing written
