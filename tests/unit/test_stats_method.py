"""Tests for scrapy_hitl.runtime.stats_method: hot-path counters bound once, past Scrapy's
per-call shim, with a collector's own override and duck-typed collectors still honoured."""

from __future__ import annotations

import pytest
from scrapy.statscollectors import MemoryStatsCollector, StatsCollector
from scrapy.utils.test import get_crawler

from scrapy_hitl.runtime import stats_method


class Doubling(MemoryStatsCollector):
    def inc_value(self, key, count=1, start=0, spider=None):
        super().inc_value(key, count * 2, start)


class Proxy:
    """A collector that forwards every call, as wrappers around a metrics client do."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda crawler: StatsCollector(crawler), 3),
    (lambda crawler: MemoryStatsCollector(crawler), 3),
    (lambda crawler: Doubling(crawler), 6),  # the subclass's method, not the base one
    (lambda crawler: Proxy(MemoryStatsCollector(crawler)), 3),  # no method on the class: plain getattr
])
def test_counts_like_inc_value(make, expected):
    stats = make(get_crawler())
    inc = stats_method(stats, "inc_value")
    for _ in range(3):
        inc("hitl/x")
    assert stats.get_value("hitl/x") == expected


def test_skips_the_per_call_shim():
    stats = MemoryStatsCollector(get_crawler())
    inc = stats_method(stats, "inc_value")
    assert inc.__func__ is MemoryStatsCollector.inc_value  # the plain function, bound to the collector
    assert inc.__self__ is stats


# --- stats_counter: the per-request counters ----------------------------------------------------

class Quiet(MemoryStatsCollector):
    """A collector with its own inc_value (as a metrics-shipping one has): it must be called."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.calls = []

    def inc_value(self, key, count=1, start=0, spider=None):
        self.calls.append(key)
        super().inc_value(key, count, start)


@pytest.mark.parametrize(("make", "expected", "direct"), [
    (lambda crawler: StatsCollector(crawler), 3, True),
    (lambda crawler: MemoryStatsCollector(crawler), 3, True),
    (lambda crawler: Doubling(crawler), 6, False),
    (lambda crawler: Quiet(crawler), 3, False),
    (lambda crawler: Proxy(MemoryStatsCollector(crawler)), 3, False),
])
def test_counter_counts_like_inc_value(make, expected, direct):
    from scrapy_hitl.runtime import stats_counter

    stats = make(get_crawler())
    inc = stats_counter(stats)
    for _ in range(3):
        inc("hitl/x")
    assert stats.get_value("hitl/x") == expected
    # Scrapy's own collectors: counted in their dict; any other: its own inc_value is called
    assert (getattr(inc, "__qualname__", "") == "stats_counter.<locals>.inc") is direct
    if isinstance(stats, Quiet):
        assert stats.calls == ["hitl/x"] * 3


def test_counter_follows_set_stats():
    from scrapy_hitl.runtime import stats_counter

    stats = MemoryStatsCollector(get_crawler())
    inc = stats_counter(stats)
    inc("hitl/x")
    stats.set_stats({"hitl/x": 10})
    inc("hitl/x")
    assert stats.get_stats() == {"hitl/x": 11}
