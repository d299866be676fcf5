"""Consistency against earlier items of a run: type and format changes, numeric outliers."""

from __future__ import annotations

import statistics

import pytest

from scrapy_hitl.quality.consistency import (
    _DIGITS,
    _MAX_CACHED_SHAPES,
    _SHAPE_TABLE,
    _SHAPES,
    _WORDS,
    LONG,
    RESERVOIR,
    SHORT,
    RunConsistency,
    as_number,
    check_rules,
    json_type,
    median,
    shape,
)


@pytest.mark.parametrize("values", [
    [5], [1, 2], [3, 1, 2], [4, 1, 3, 2], [2.5, 2.5, 7.0], [-1, 10**6, 3, 3], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    [7, 7, 7, 7], list(range(513, 0, -1)),
])
def test_median_is_statistics_median(values):
    """``median`` stands in for ``statistics.median`` (not imported by a crawl): same values, types."""
    got, expected = median(values), statistics.median(values)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("value", "expected"), [
    ("£1,234.50", "£9.9"),
    ("£51.77", "£9.9"),
    ("In stock", "a"),
    ("Out of stock", "a"),
    ("SKU-00042", "a-9"),
    ("2024-05-01", "9-9-9"),
    ("http://shop.example/item/7", "a://a.a/a/9"),
    ("Price on request", "a"),
    ("  Room  101 ", "a  9"),
    ("x" * 41, "<text>"),
])
def test_shape(value, expected):
    assert shape(value) == expected
    assert shape(value) == expected  # again: from the cache of translated values


def _uncached_shape(value: str) -> str:
    if len(value) > SHORT:
        return LONG
    return _DIGITS.sub("9", _WORDS.sub("a", value.strip().translate(_SHAPE_TABLE)))


def test_the_shape_cache_gives_what_the_substitutions_give():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    # letters, digits, separators and spaces, in runs: the shapes' cases (and values that
    # translate alike, "ab 12" and "xy 34", share a cache entry)
    pieces = st.sampled_from(["a", "Zx", "é", "1", "42", ",", ".", "-", " ", "\t", "£", "://", "x" * 39])

    @settings(max_examples=500, deadline=None)
    @given(st.lists(pieces, max_size=10).map("".join))
    def check(value: str) -> None:
        assert shape(value) == _uncached_shape(value)
        tracker = RunConsistency(min_samples=1)
        tracker.check("T", {"f": value})
        if value and value.strip() and not (value.isdigit() and value.isascii()):
            assert list(tracker._fields["T"]["f"].shapes or {}) in ([_uncached_shape(value)], [])

    check()


def test_the_shape_cache_is_bounded():
    for n in range(_MAX_CACHED_SHAPES + 10):
        shape(format(n, "013b").replace("0", "x").replace("1", "-"))  # each translates apart
    assert 0 < len(_SHAPES) <= _MAX_CACHED_SHAPES


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3.0), (2.5, 2.5), (True, None), (float("nan"), None),
    ("£51.77", 51.77), ("1,234", 1234.0), ("12 kg", 12.0), ("-3.5", -3.5), ("USD 10", 10.0),
    ("Price on request", None), ("12-14", None), ("", None), ("SKU-00042", None),
])
def test_as_number(value, expected):
    assert as_number(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("a", "string"), (1, "number"), (1.5, "number"), (False, "boolean"), ([1], "array"), ({}, "object")])
def test_json_type(value, expected):
    assert json_type(value) == expected


def learn(tracker, values, field="price", item_type="Product"):
    failures = []
    for v in values:
        failures += tracker.check(item_type, {field: v})
    return failures


# (id, history, value, failing check or None)
CASES = [
    ("steady price", [f"£{10 + i % 9}.{i % 100:02d}" for i in range(30)], "£14.50", None),
    ("outlier price string", [f"£{10 + i % 9}.{i % 100:02d}" for i in range(30)], "£4,999.00", "outlier"),
    ("low outlier", [100 + i % 5 for i in range(30)], 1, "outlier"),
    ("within spread", [100 + i % 5 for i in range(30)], 106, None),
    ("constant field: nothing to judge", [5] * 30, 6, None),
    ("format changed", [f"£{i}.99" for i in range(30)], "Price on request", "format_changed"),
    ("type changed", [float(i) for i in range(30)], "12", "type_changed"),
    ("free text is never judged by shape",
     ["Mr. Smith", "A: b", "Tom & Jerry", "Room 101", "(untitled)", "x-y"] * 5, "whatever!", None),
    ("too few samples", [f"£{i}.99" for i in range(5)], "Price on request", None),
    ("a short value among prose", [f"A long sentence of prose, number {i}, past forty characters." for i in
                                   range(30)], "Short.", None),
    ("prose where a format was", [f"£{i}.99" for i in range(30)], "x" * 60, "format_changed"),
]


@pytest.mark.parametrize(("history", "value", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_checks(history, value, expected):
    tracker = RunConsistency(min_samples=20, outlier_z=5.0)
    assert learn(tracker, history) == []
    found = [f["check"] for f in tracker.check("Product", {"price": value})]
    assert found == ([expected] if expected else [])


def test_a_new_format_stops_failing_once_it_is_common():
    tracker = RunConsistency(min_samples=20)
    learn(tracker, [f"£{i}.99" for i in range(40)])
    failures = learn(tracker, ["Price on request"] * 10)
    assert 0 < len(failures) < 10


def test_item_types_and_fields_are_tracked_apart():
    tracker = RunConsistency(min_samples=5)
    learn(tracker, [1, 2, 3, 2, 1, 2], item_type="A")
    assert tracker.check("B", {"price": 1000}) == []  # B has no history
    assert tracker.check("A", {"stock": 1000}) == []  # nor has A's stock
    assert [f["check"] for f in tracker.check("A", {"price": 1000})] == ["outlier"]


def test_memory_is_bounded_and_runs_reproducible():
    a, b = RunConsistency(min_samples=20, seed=1), RunConsistency(min_samples=20, seed=1)
    values = [float(i % 1000) for i in range(20_000)]
    learn(a, values)
    learn(b, values)
    fa = a._fields["Product"]["price"]
    assert len(fa.nums) == RESERVOIR and fa.nums == b._fields["Product"]["price"].nums
    assert a.check("Product", {"price": 10_000.0}) == b.check("Product", {"price": 10_000.0}) != []


def test_empty_values_are_completeness_not_consistency():
    tracker = RunConsistency(min_samples=1)
    learn(tracker, ["£1.00", "£2.00"])
    assert tracker.check("Product", {"price": None}) == tracker.check("Product", {"price": ""}) == []


def test_rules():
    rules = {"positive": lambda i: i["price"] > 0, "has sku": lambda i: i["sku"]}
    assert check_rules(rules, {"price": 1, "sku": "S"}) == []
    failed = check_rules(rules, {"price": 0})
    assert [(f["rule"], f["message"]) for f in failed] == [
        ("positive", "positive is false"), ("has sku", "has sku: KeyError: 'sku'")]


def test_the_reservoir_is_a_uniform_sample_of_every_value_seen():
    # Algorithm R keeps each of the n values seen with probability RESERVOIR / n: over values
    # 0..n-1 in order, each quarter of the range holds about a quarter of the reservoir (a
    # sample biased to the first or the latest values would not).
    tracker = RunConsistency(min_samples=20, seed=3)
    n = 40 * RESERVOIR
    learn(tracker, [float(i) for i in range(n)])
    kept = tracker._fields["Product"]["price"].nums
    quarters = [sum(1 for v in kept if q * n / 4 <= v < (q + 1) * n / 4) for q in range(4)]
    assert len(kept) == RESERVOIR
    assert all(abs(count - RESERVOIR / 4) < RESERVOIR / 8 for count in quarters), quarters
