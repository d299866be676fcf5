"""Tests for scrapy_hitl.tiers: the ladder, path patterns, and what TierMemory learns."""

from __future__ import annotations

import itertools
import math

import pytest

from scrapy_hitl.tiers import TIERS, Ladder, Plan, TierError, TierMemory, lowest, parse_tiers, path_pattern

LADDER_ORDER = "static, browser, stealth, human"

PARSE_OK = [
    pytest.param("static,browser,stealth,human", TIERS, id="all-as-string"),
    pytest.param(" static , Browser ,", ("static", "browser"), id="spaces-case-trailing-comma"),
    pytest.param(["static", "stealth", "human"], ("static", "stealth", "human"), id="list-skipping-browser"),
    pytest.param(("browser",), ("browser",), id="tuple-one-tier"),
    pytest.param("stealth, human", ("stealth", "human"), id="stealth-then-human"),
]


@pytest.mark.parametrize(("value", "expected"), PARSE_OK)
def test_parse_tiers(value, expected):
    assert parse_tiers(value) == expected


PARSE_ERRORS = [
    pytest.param(3, "HITL_TIERS must be a list or a comma-separated string, not int; "
                 f'e.g. "{LADDER_ORDER}"', id="not-a-list"),
    pytest.param("", f'HITL_TIERS is empty; list at least one automated tier, e.g. "{LADDER_ORDER}"',
                 id="empty-string"),
    pytest.param([], f'HITL_TIERS is empty; list at least one automated tier, e.g. "{LADDER_ORDER}"',
                 id="empty-list"),
    pytest.param(["static", 1], f"HITL_TIERS lists 1, which is not a tier name; choose from: {LADDER_ORDER}",
                 id="not-a-name"),
    pytest.param("static,playwright", f'HITL_TIERS lists unknown tier "playwright"; choose from: {LADDER_ORDER}',
                 id="unknown"),
    pytest.param("static,browser,browser", 'HITL_TIERS lists "browser" twice; list each tier once',
                 id="duplicate"),
    pytest.param("browser,static", 'HITL_TIERS lists "browser" before "static"; list tiers in ladder order: '
                 f"{LADDER_ORDER}", id="out-of-order"),
    pytest.param("human", "HITL_TIERS has no automated tier (only human); add at least one of static, browser, "
                 "stealth", id="human-only"),
]


@pytest.mark.parametrize(("value", "message"), PARSE_ERRORS)
def test_parse_tiers_errors(value, message):
    with pytest.raises(TierError) as excinfo:
        parse_tiers(value)
    assert str(excinfo.value) == message


LADDER_ATTRS = [
    pytest.param(TIERS, ("static", "browser", "stealth"), True, "static", id="full"),
    pytest.param(("static", "stealth", "human"), ("static", "stealth"), True, "static", id="no-browser"),
    pytest.param(("browser",), ("browser",), False, "browser", id="browser-only"),
    pytest.param(("static", "browser"), ("static", "browser"), False, "static", id="no-stealth-no-human"),
]


@pytest.mark.parametrize(("tiers", "automated", "human", "first"), LADDER_ATTRS)
def test_ladder_attributes(tiers, automated, human, first):
    ladder = Ladder(tiers)
    assert (ladder.tiers, ladder.automated, ladder.human, ladder.first) == (tuple(tiers), automated, human, first)
    assert [ladder.rank(t) for t in TIERS] == [0, 1, 2, 3]


FULL, SKIP, ONLY_BROWSER = TIERS, ("static", "stealth", "human"), ("browser",)

CAP = [
    pytest.param(FULL, "static", None, "static", id="full-static"),
    pytest.param(FULL, "stealth", None, "stealth", id="full-stealth-no-cap"),
    pytest.param(FULL, "stealth", "human", "stealth", id="full-human-cap-is-no-cap"),
    pytest.param(FULL, "stealth", "browser", "browser", id="full-capped-to-browser"),
    pytest.param(FULL, "browser", "stealth", "browser", id="full-cap-above-tier"),
    pytest.param(FULL, "human", None, "stealth", id="full-human-maps-to-top-automated"),
    pytest.param(FULL, "human", "static", "static", id="full-human-capped-static"),
    pytest.param(SKIP, "browser", None, "static", id="skip-browser-maps-down"),
    pytest.param(SKIP, "stealth", "browser", "static", id="skip-cap-browser-maps-down"),
    pytest.param(SKIP, "human", None, "stealth", id="skip-human"),
    pytest.param(ONLY_BROWSER, "static", None, "browser", id="only-browser-static-maps-up-to-first"),
    pytest.param(ONLY_BROWSER, "stealth", None, "browser", id="only-browser-stealth-maps-down"),
    pytest.param(ONLY_BROWSER, "stealth", "static", "browser", id="only-browser-cap-below-first"),
]


@pytest.mark.parametrize(("tiers", "tier", "max_tier", "expected"), CAP)
def test_ladder_cap(tiers, tier, max_tier, expected):
    assert Ladder(tiers).cap(tier, max_tier) == expected


NEXT = [
    pytest.param(FULL, "static", None, "browser", id="full-static"),
    pytest.param(FULL, "browser", None, "stealth", id="full-browser"),
    pytest.param(FULL, "stealth", None, None, id="full-top-automated"),
    pytest.param(FULL, "human", None, None, id="full-human"),
    pytest.param(FULL, "static", "static", None, id="full-capped-at-static"),
    pytest.param(FULL, "static", "browser", "browser", id="full-capped-at-browser"),
    pytest.param(FULL, "browser", "browser", None, id="full-at-cap"),
    pytest.param(FULL, "browser", "human", "stealth", id="full-human-cap"),
    pytest.param(SKIP, "static", None, "stealth", id="skip-jumps-over-browser"),
    pytest.param(SKIP, "static", "browser", None, id="skip-cap-between"),
    pytest.param(SKIP, "browser", None, "stealth", id="skip-from-unconfigured"),
    pytest.param(ONLY_BROWSER, "static", None, "browser", id="only-browser-from-below"),
    pytest.param(ONLY_BROWSER, "browser", None, None, id="only-browser-top"),
]


@pytest.mark.parametrize(("tiers", "tier", "max_tier", "expected"), NEXT)
def test_ladder_next(tiers, tier, max_tier, expected):
    assert Ladder(tiers).next(tier, max_tier) == expected


LOWER = [
    pytest.param(FULL, "static", None, id="full-static"),
    pytest.param(FULL, "browser", "static", id="full-browser"),
    pytest.param(FULL, "stealth", "browser", id="full-stealth"),
    pytest.param(FULL, "human", "stealth", id="full-human"),
    pytest.param(SKIP, "stealth", "static", id="skip-stealth-to-static"),
    pytest.param(SKIP, "browser", "static", id="skip-unconfigured"),
    pytest.param(ONLY_BROWSER, "browser", None, id="only-browser"),
    pytest.param(ONLY_BROWSER, "stealth", "browser", id="only-browser-from-stealth"),
]


@pytest.mark.parametrize(("tiers", "tier", "expected"), LOWER)
def test_ladder_lower(tiers, tier, expected):
    assert Ladder(tiers).lower(tier) == expected


LADDER_ERRORS = [
    pytest.param(lambda lad: lad.cap("chrome", None), "hitl_tier", "'chrome'", id="cap-tier"),
    pytest.param(lambda lad: lad.cap("static", "max"), "hitl_max_tier", "'max'", id="cap-max-tier"),
    pytest.param(lambda lad: lad.next("http"), "hitl_tier", "'http'", id="next-tier"),
    pytest.param(lambda lad: lad.next("static", "all"), "hitl_max_tier", "'all'", id="next-max-tier"),
    pytest.param(lambda lad: lad.lower(None), "hitl_tier", "None", id="lower-none"),
    pytest.param(lambda lad: lad.rank("Static"), "hitl_tier", "'Static'", id="rank-is-case-sensitive"),
]


@pytest.mark.parametrize(("call", "key", "shown"), LADDER_ERRORS)
def test_ladder_unknown_names(call, key, shown):
    with pytest.raises(TierError) as excinfo:
        call(Ladder(FULL))
    assert str(excinfo.value) == f'request.meta["{key}"] is {shown}, not a tier; use one of: {LADDER_ORDER}'


@pytest.mark.parametrize(("tiers", "expected"), [
    pytest.param(["stealth", "browser"], "browser", id="browser"),
    pytest.param(["human", "static", "stealth"], "static", id="static"),
    pytest.param(["nope", "stealth"], "stealth", id="unknown-ignored"),
    pytest.param([], None, id="none"),
])
def test_lowest(tiers, expected):
    assert lowest(tiers) == expected


PATTERNS = [
    pytest.param("/guarded/page/3", "/guarded/page/{n}", id="number"),
    pytest.param("http://x.test:8/js/detail/17?a=1#f", "/js/detail/{n}", id="full-url"),
    pytest.param("/", "/", id="root"),
    pytest.param("", "/", id="empty"),
    pytest.param("https://x.test", "/", id="host-only"),
    pytest.param("https://x.test?q=1", "/", id="query-only"),
    pytest.param("/product/blue-widget-123", "/product/{id}", id="slug-with-number"),
    pytest.param("/a/b/c/d/e/f", "/a/b/c/d/*", id="deep"),
    pytest.param("/a/b/c/d", "/a/b/c/d", id="four-segments-kept"),
    pytest.param("/Mixed/App/5", "/mixed/app/{n}", id="lower-cased"),
    pytest.param("/list/", "/list", id="trailing-slash-ignored"),
    pytest.param("/a//b", "/a/b", id="empty-segment-ignored"),
    pytest.param("/v2/users", "/{id}/users", id="digit-and-letter"),
    pytest.param("/p/a", "/p/a", id="one-letter-kept"),
    pytest.param("/x/550e8400-e29b-41d4-a716-446655440000", "/x/{id}", id="uuid"),
    pytest.param("/x/deadbeefcafebabe", "/x/{id}", id="hex-without-digits"),
    pytest.param("/x/decade", "/x/decade", id="short-hex-word-kept"),
    pytest.param("/watch/XyZqWeRtYuIoPaSd", "/watch/{id}", id="base64-without-digits"),
    pytest.param("/JavaScriptTutorials", "/javascripttutorials", id="camel-case-word-kept"),
    pytest.param("/" + "x" * 41, "/{id}", id="longer-than-40"),
    pytest.param("/" + "x" * 40, "/" + "x" * 40, id="exactly-40-kept"),
    pytest.param("/caf%C3%A9/menu", "/café/menu", id="percent-decoded"),
    pytest.param("/item/%31%32", "/item/{n}", id="encoded-digits"),
    pytest.param("/search?q=shoes&page=2", "/search", id="query-dropped"),
]


@pytest.mark.parametrize(("url", "expected"), PATTERNS)
def test_path_pattern(url, expected):
    assert path_pattern(url) == expected
    assert path_pattern(url) == expected  # its segments now from the cache


def test_path_pattern_segment_cache_is_bounded():
    from scrapy_hitl import tiers

    for i in range(tiers._MAX_CACHED_SEGMENTS + 10):  # that many different words
        word = "".join(chr(97 + (i // 26**k) % 26) for k in range(3))
        assert path_pattern(f"/{word.upper()}/a") == f"/{word}/a"
    assert 0 < len(tiers._SEGMENTS) <= tiers._MAX_CACHED_SEGMENTS


# --- TierMemory ---------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def memory(tiers=FULL, **kwargs) -> TierMemory:
    return TierMemory(Ladder(tiers), clock=Clock(), **kwargs)


def run(mem: TierMemory, steps, domain="d.test"):
    """Each step: (pattern, tier it succeeds at; None: the tier planned). Returns per step
    (planned tier, predicted, recheck, misprediction)."""
    out = []
    for pattern, tier in steps:
        plan = mem.plan(domain, pattern)
        mis = mem.succeeded(domain, pattern, plan, tier or plan.tier)
        out.append((plan.tier, plan.predicted, plan.recheck, mis))
    return out


SCENARIOS = [
    pytest.param(
        FULL, 0.1, [("/p/{n}", "browser"), ("/p/{n}", None)],
        [("static", None, False, False), ("browser", "browser", False, False)],
        id="first-try-climbs-then-starts-at-browser",
    ),
    pytest.param(
        FULL, 0.1, [("/p/{n}", "browser"), ("/p/{n}", "stealth"), ("/p/{n}", None)],
        [("static", None, False, False), ("browser", "browser", False, True),
         ("stealth", "stealth", False, False)],
        id="climbing-past-the-prediction-is-a-misprediction",
    ),
    pytest.param(
        FULL, 0.1, [("/p/{n}", "browser"), ("/q", None), ("/q", None)],
        [("static", None, False, False), ("browser", "browser", False, False),
         ("browser", "browser", False, False)],
        id="new-pattern-starts-at-domain-floor",
    ),
    pytest.param(
        FULL, 0.1, [("/p/{n}", "browser"), ("/q", "stealth")],
        [("static", None, False, False), ("browser", "browser", False, True)],
        id="floor-guess-too-low-is-a-misprediction",
    ),
    pytest.param(
        FULL, 0.5, [("/p", "browser"), ("/p", None), ("/p", None), ("/p", None)],
        [("static", None, False, False), ("browser", "browser", False, False),
         ("static", "browser", True, True), ("static", "static", False, False)],
        id="recheck-passes-lower-and-the-pattern-comes-down",
    ),
    pytest.param(
        FULL, 0.5, [("/p", "stealth")] + [("/p", "stealth")] * 8,
        [("static", None, False, False),
         ("stealth", "stealth", False, False), ("browser", "stealth", True, False),  # interval 2
         ("stealth", "stealth", False, False), ("stealth", "stealth", False, False),
         ("stealth", "stealth", False, False), ("browser", "stealth", True, False),  # interval 4
         ("stealth", "stealth", False, False), ("stealth", "stealth", False, False)],
        id="failed-rechecks-double-the-interval",
    ),
    pytest.param(
        FULL, 1.0, [("/p", "browser"), ("/p", "stealth"), ("/p", None), ("/p", None)],
        [("static", None, False, False), ("static", "browser", True, False),
         ("stealth", "stealth", False, False), ("browser", "stealth", True, True)],
        id="recheck-that-climbs-past-the-prediction-learns-the-new-tier",
    ),
    pytest.param(
        FULL, 0, [("/p", "stealth")] + [("/p", None)] * 5,
        [("static", None, False, False)] + [("stealth", "stealth", False, False)] * 5,
        id="share-zero-never-rechecks",
    ),
    pytest.param(
        FULL, 1.0, [("/p", None)] * 3,
        [("static", None, False, False), ("static", "static", False, False), ("static", "static", False, False)],
        id="first-tier-is-never-rechecked",
    ),
    pytest.param(
        SKIP, 1.0, [("/p", "stealth"), ("/p", None)],
        [("static", None, False, False), ("static", "stealth", True, True)],
        id="recheck-skips-unconfigured-browser",
    ),
    pytest.param(
        ONLY_BROWSER, 1.0, [("/p", None), ("/p", None)],
        [("browser", None, False, False), ("browser", "browser", False, False)],
        id="one-tier-ladder",
    ),
    pytest.param(
        FULL, 0.1, [("/p", "human"), ("/p", None)],
        [("static", None, False, False), ("stealth", "stealth", False, False)],
        id="human-success-is-learned-as-top-automated",
    ),
]


@pytest.mark.parametrize(("tiers", "share", "steps", "expected"), SCENARIOS)
def test_memory_scenarios(tiers, share, steps, expected):
    assert run(memory(tiers, recheck_share=share), steps) == expected


def test_recheck_positions_and_reset():
    """share 0.25: the 4th request re-checks; a failure doubles to 8, a pass resets to 4."""
    mem = memory(recheck_share=0.25)
    run(mem, [("/p", "browser")])
    steps = [mem.plan("d.test", "/p") for _ in range(12)]
    assert [i for i, p in enumerate(steps, 1) if p.recheck] == [4, 8, 12]  # nothing reported back yet
    for p in steps:
        mem.succeeded("d.test", "/p", p, "browser")  # every re-check failed: 3 failures
    rechecks = [i for i in range(1, 201) if run(mem, [("/p", "browser")])[0][2]]
    assert rechecks == [32, 96]  # interval 4 * 2**3 = 32, then 4 * 2**4 = 64, next 128 at 224
    assert [r[2] for r in run(mem, [("/p", "browser")] * 23)] == [False] * 23
    # a re-check that passes: static, failures back to 0, and the pattern comes down
    assert run(mem, [("/p", "static")]) == [("static", "browser", True, True)]
    assert mem.take_dirty()["d.test"]["/p"]["recheck_failures"] == 0
    assert mem.learned("d.test") == {"/p": "static"}


def test_climbing_to_a_new_tier_resets_the_failures():
    mem = memory(recheck_share=0.5)
    run(mem, [("/p", "browser"), ("/p", "browser"), ("/p", "browser")])  # a failed re-check: interval 4
    assert mem.take_dirty()["d.test"]["/p"]["recheck_failures"] == 1
    run(mem, [("/p", "browser")])  # same tier: kept, and nothing new to persist
    assert mem.take_dirty() == {}
    run(mem, [("/p", "stealth")])  # the site got harder: start over
    assert mem.take_dirty()["d.test"]["/p"]["recheck_failures"] == 0


def test_the_exponent_is_capped():
    mem = memory(recheck_share=1.0)
    mem.load("d.test", {"patterns": {"/p": {"tier": "browser", "recheck_failures": 50, "updated": 1.0}}})
    plans = [mem.plan("d.test", "/p") for _ in range(1024)]
    assert [i for i, p in enumerate(plans, 1) if p.recheck] == [1024]


def test_a_js_only_pattern_wastes_few_static_fetches():
    """After learning "browser", 500 requests re-check static only at 10, 30, 70, 150, 310."""
    mem = memory()
    run(mem, [("/app/{n}", "browser")])
    results = run(mem, [("/app/{n}", "browser")] * 500)
    positions = [i for i, r in enumerate(results, 1) if r[2]]
    assert positions == [10, 30, 70, 150, 310]
    expected = len(list(itertools.takewhile(lambda n: n <= 500, itertools.accumulate(10 * 2**k for k in range(20)))))
    assert len(positions) == expected == 5
    assert sum(r[0] == "static" for r in results) == 5
    assert not any(r[3] for r in results)  # a failed re-check is not a misprediction


def test_floor_and_learned():
    mem = memory()
    assert mem.floor("d.test") == "static"
    run(mem, [("/a", "stealth"), ("/b", "stealth")])
    assert mem.floor("d.test") == "stealth"
    run(mem, [("/c", "browser")])
    assert mem.floor("d.test") == "browser"
    assert mem.learned("d.test") == {"/a": "stealth", "/b": "stealth", "/c": "browser"}
    assert mem.learned("other.test") == {}
    assert memory(ONLY_BROWSER).floor("d.test") == "browser"


def test_domains_are_separate():
    mem = memory()
    run(mem, [("/p", "stealth")], domain="a.test")
    assert mem.plan("b.test", "/p") == Plan("static", None, False)


def test_eviction_forgets_the_least_recently_updated():
    mem = memory(max_patterns=3)
    run(mem, [("/a", "browser"), ("/b", "browser"), ("/c", "browser"), ("/a", None), ("/d", "stealth")])
    assert list(mem.learned("d.test")) == ["/c", "/a", "/d"]  # /b was updated least recently
    assert mem.plan("d.test", "/b") == Plan("browser", "browser", False)  # the floor guess again


def test_take_dirty():
    clock = Clock()
    mem = TierMemory(Ladder(FULL), clock=clock)
    assert mem.take_dirty() == {}
    run(mem, [("/a", "browser"), ("/a", None)], domain="a.test")
    run(mem, [("/b", "static")], domain="b.test")
    assert mem.take_dirty() == {
        # the second /a success only confirmed the tier: nothing to persist, "updated" stays
        "a.test": {"/a": {"tier": "browser", "recheck_failures": 0, "updated": 1001.0}},
        "b.test": {"/b": {"tier": "static", "recheck_failures": 0, "updated": 1002.0}},
    }
    assert mem.take_dirty() == {}
    mem.plan("a.test", "/a")  # planning is not a change
    assert mem.take_dirty() == {}


LOADED = {"patterns": {
    "/js/{n}": {"tier": "browser", "recheck_failures": 2, "updated": 50.0},
    "/old": {"tier": "stealth", "recheck_failures": 0, "updated": 10},
    "/human": {"tier": "human", "recheck_failures": 0, "updated": 60.0},
    "/bad-failures": {"tier": "browser", "recheck_failures": "x", "updated": 1.0},
    "/bad-updated": {"tier": "browser", "recheck_failures": 0, "updated": None},
    "/not-a-dict": "browser",
}, "floor": "browser"}


def test_load_persisted_data():
    mem = memory(recheck_share=0.5)
    mem.load("d.test", LOADED)
    assert mem.learned("d.test") == {"/old": "stealth", "/js/{n}": "browser"}
    assert mem.floor("d.test") == "browser"
    # recheck_failures 2: interval 2 * 4 = 8
    plans = [mem.plan("d.test", "/js/{n}") for _ in range(8)]
    assert [p.recheck for p in plans] == [False] * 7 + [True]
    assert mem.take_dirty() == {}  # loading changes nothing to write back


def test_load_ignores_tiers_not_in_the_ladder():
    mem = memory(SKIP)
    mem.load("d.test", LOADED)
    assert mem.learned("d.test") == {"/old": "stealth"}


@pytest.mark.parametrize("data", [None, {}, {"patterns": []}, {"patterns": {"/x": {"tier": "nope"}}}])
def test_load_nothing_usable(data):
    mem = memory()
    mem.load("d.test", data)
    assert mem.learned("d.test") == {}
    assert mem.plan("d.test", "/x") == Plan("static", None, False)


def test_load_keeps_what_is_newer_in_memory():
    mem = memory()  # the clock starts at 1001
    run(mem, [("/a", "stealth")])
    mem.load("d.test", {"patterns": {
        "/a": {"tier": "static", "recheck_failures": 0, "updated": 5.0},  # older than memory
        "/b": {"tier": "browser", "recheck_failures": 0, "updated": 5.0},  # new to memory
    }})
    assert mem.learned("d.test") == {"/b": "browser", "/a": "stealth"}
    mem.load("d.test", {"patterns": {"/a": {"tier": "static", "recheck_failures": 0, "updated": 9e9}}})
    assert mem.learned("d.test")["/a"] == "static"  # another crawler learned it later


def test_load_trims_to_max_patterns():
    mem = memory(max_patterns=2)
    mem.load("d.test", {"patterns": {
        f"/{i}": {"tier": "browser", "recheck_failures": 0, "updated": float(i)} for i in range(5)
    }})
    assert list(mem.learned("d.test")) == ["/3", "/4"]


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"recheck_share": 1.5}, "HITL_TIER_RECHECK_SHARE must be from 0 to 1; got 1.5", id="share-above-1"),
    pytest.param({"recheck_share": -0.1}, "HITL_TIER_RECHECK_SHARE must be from 0 to 1; got -0.1", id="share-negative"),
    pytest.param({"max_patterns": 0}, "max_patterns must be at least 1; got 0", id="no-patterns"),
])
def test_memory_arguments(kwargs, message):
    with pytest.raises(ValueError) as excinfo:
        TierMemory(Ladder(FULL), **kwargs)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(("share", "interval"), [(0.1, 10), (0.25, 4), (0.3, 4), (0.07, 15), (0.01, 100), (1.0, 1)])
def test_recheck_interval_is_ceil_of_the_inverse_share(share, interval):
    mem = memory(recheck_share=share)
    run(mem, [("/p", "browser")])
    plans = [mem.plan("d.test", "/p") for _ in range(interval)]
    assert [i for i, p in enumerate(plans, 1) if p.recheck] == [interval]
    assert interval == math.ceil(round(1 / share, 9))


def test_plans_say_whether_the_pattern_itself_is_known():
    mem = TierMemory(Ladder(FULL), recheck_share=0)
    assert mem.plan("d.test", "/a").known is False  # unknown domain
    mem.succeeded("d.test", "/a", mem.plan("d.test", "/a"), "static")
    assert mem.plan("d.test", "/a").known is True
    assert mem.plan("d.test", "/b").known is False  # guessed from the domain's floor
