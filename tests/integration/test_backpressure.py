"""Parking at crawl speed: memory stays bounded and nothing is lost; components work
without the extension."""

from __future__ import annotations

from scrapy_hitl.state import interventions


def test_flood_to_a_paused_domain_applies_backpressure_and_parks_everything(crawl, state, fresh_sandbox):
    interventions.open_or_update(state, type="manual_access", reason="http_403", domain="flood.sandbox.test")
    # A slow writer and a small buffer: the engine must stop taking requests until the
    # buffer drains, instead of piling them up in memory.
    result = crawl(spider="flood", args={"count": "2000"},
                   settings={"HITL_PARK_BUFFER_MAX": 50, "HITL_PARK_FLUSH_INTERVAL": 0.5,
                             "HITL_PAUSE_TIMEOUT": 1}).wait()
    assert result.stats["finish_reason"] == "hitl_paused"
    assert result.stats["hitl/parked"] == 2000
    assert result.stats["hitl/parked/backpressure"] >= 1
    assert state.parking.count("flood", "flood.sandbox.test") == 2000
    assert fresh_sandbox.hits().get("__total__", 0) == 0
    # original order kept
    first = state.parking.peek("flood", "flood.sandbox.test", 3)
    assert [p["request"]["url"].rsplit("/", 1)[1] for p in first] == ["1", "2", "3"]


def test_without_the_extension_blocks_still_park_and_the_crawl_exits(crawl, state, fresh_sandbox):
    result = crawl(args={"sections": "quotes,vip"}, settings={"HITL_EXTENSION_ENABLED": False}).wait(timeout=60)
    assert result.returncode == 0
    assert result.stats["finish_reason"] == "finished"  # nobody waits for humans
    assert result.stats["hitl/parked"] == 1
    assert len(result.items_in("quotes")) == 60
    assert state.parking.count("sandbox", "vip.sandbox.test") == 1
    (i,) = interventions.list_interventions(state, status="open")
    assert i["domain"] == "vip.sandbox.test"
