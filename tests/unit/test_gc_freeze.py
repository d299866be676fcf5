"""HITL_GC_FREEZE: the objects alive when the spider opens leave the collector's generations."""

from __future__ import annotations

import gc

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from scrapy_hitl.runtime import HitlRuntime


@pytest.fixture
def opened_runtime(hitl_env):
    runtimes = []

    def open_with(**settings):
        crawler = get_crawler(Spider, settings_dict={"ADDONS": {"scrapy_hitl.Addon": 500}, **settings})
        rt = HitlRuntime.of(crawler)
        runtimes.append(rt)
        rt._spider_opened(Spider("freeze"))
        return rt

    gc.unfreeze()
    yield open_with
    gc.unfreeze()
    for rt in runtimes:
        for loop in rt._loops:
            if loop.running:
                loop.stop()
        rt._stopping.set()
        if rt._listener is not None:
            rt._listener.join(timeout=5)
        rt.state.close()


@pytest.mark.parametrize(("setting", "frozen"), [({}, True), ({"HITL_GC_FREEZE": False}, False)])
def test_startup_objects_are_frozen_unless_disabled(opened_runtime, setting, frozen):
    opened_runtime(**setting)
    assert (gc.get_freeze_count() > 0) is frozen
