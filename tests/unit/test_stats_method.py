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
