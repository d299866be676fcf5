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
            rt.state.events.wake(f"hitl:wake:{rt.run_id}")  # as the close does: not its 5 s block
            rt._listener.join(timeout=5)
        rt.state.close()


@pytest.mark.parametrize(("setting", "frozen"), [({}, True), ({"HITL_GC_FREEZE": False}, False)])
def test_startup_objects_are_frozen_unless_disabled(opened_runtime, setting, frozen):
    opened_runtime(**setting)
    assert (gc.get_freeze_count() > 0) is frozen


FIRST_CRAWLER = """
import gc, json, sys
from scrapy.settings import Settings
from scrapy_hitl import Addon

settings = Settings(json.loads(sys.argv[1]))
Addon().update_settings(settings)  # what Scrapy's add-on manager calls, before any component is built
print(json.dumps({"frozen": gc.get_freeze_count(), "enabled": gc.isenabled(),
                  "imported": "scrapy_hitl.runtime" in sys.modules}))
"""


@pytest.mark.parametrize(("setting", "frozen"), [({}, True), ({"HITL_GC_FREEZE": False}, False)])
def test_the_first_crawler_imports_the_components_unscanned_then_freezes(setting, frozen, tmp_path):
    """A fresh process (this one imported everything long ago): the add-on imports its
    components when it updates the settings, with the collector off, and freezes then;
    the collector is on again afterwards either way. No crawler: nothing opens the state."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", FIRST_CRAWLER, json.dumps(setting)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)}, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["imported"] and report["enabled"]
    assert (report["frozen"] > 0) is frozen
