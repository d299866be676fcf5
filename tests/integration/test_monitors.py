"""Run monitors in real crawls: a run under the item floor opens run_anomaly, a normal one
opens none, and a bad HITL_MONITORS stops the crawl at start."""

from __future__ import annotations

from scrapy_hitl.state import pauses, runs

DOMAIN = "flood.sandbox.test"  # the flood spider's pages: the sandbox has 6, one item each


def seed_completed_runs(state, spider: str, counts: list[int]) -> None:
    """Earlier completed runs of ``spider``, as the extension records them."""
    for n in counts:
        run_id = runs.new_run_id()
        runs.create_run(state.db, run_id, spider, {}, "/tmp")
        runs.update_run(state.db, run_id, status="completed", finish_reason="finished",
                        stats={"hitl/items": n, f"hitl/items/domain/{DOMAIN}": n, "item_scraped_count": n})


def test_a_run_under_the_item_floor_opens_run_anomaly_and_a_normal_run_opens_none(crawl, state, cli):
    seed_completed_runs(state, "flood", [6, 6, 6, 6, 6])

    normal = crawl(spider="flood", args={"count": "6"}).wait()
    assert normal.returncode == 0, normal.log[-3000:]
    assert (normal.stats["hitl/items"], normal.stats[f"hitl/items/domain/{DOMAIN}"]) == (6, 6)
    assert cli.json("interventions", "list", "--status", "all") == []
    stored = runs.get_run(state.db, normal.stats["hitl/run_id"])
    assert stored["stats"]["hitl/monitors/alerts"] == 0
    assert {m["monitor"]: m["status"] for m in stored["monitors"]} == {
        "domain_without_items": "ok", "item_count_drop": "ok", "finish_reason": "ok",
        "error_rate": "skipped", "block_rate": "skipped"}  # 6 requests: too few to judge a rate
    assert "hitl/monitors" not in stored["stats"]  # the findings are their own field, not a stat

    short = crawl(spider="flood", args={"count": "2"}).wait()
    assert short.returncode == 0 and short.stats["finish_reason"] == "finished"
    assert "Run monitor item_count_drop: 2 items, under 50% of the median of the last 5 completed runs (6)." \
        in short.log
    (anomaly,) = cli.json("interventions", "list")
    run_id = short.stats["hitl/run_id"]
    assert (anomaly["type"], anomaly["reason"], anomaly["domain"], anomaly["run_id"], anomaly["parked_count"]) == \
        ("run_anomaly", "item_count_drop", DOMAIN, run_id, 0)
    evidence = anomaly["evidence"]
    assert [a["monitor"] for a in evidence["alerts"]] == ["item_count_drop"]
    assert evidence["alerts"][0]["values"]["items"] == 2 and evidence["alerts"][0]["values"]["median"] == 6
    assert [h["items"] for h in evidence["history"]] == [6, 6, 6, 6, 6]
    stored = runs.get_run(state.db, run_id)
    assert stored["stats"]["hitl/monitors/alerts"] == 1
    assert {m["monitor"]: m["status"] for m in stored["monitors"]}["item_count_drop"] == "alert"

    # It asks a human to look, it holds nothing: the domain is not paused, and resolving it
    # records that someone looked.
    assert DOMAIN not in pauses.paused_domains(state.redis)
    code, out = cli("interventions", "resolve", str(anomaly["id"]), "--note", "the site had a short day")
    assert code == 0, out
    assert cli.json("interventions", "show", str(anomaly["id"]))["status"] == "resolved"


def test_a_bad_monitor_setting_stops_the_crawl_at_start_naming_the_valid_values(crawl, state):
    result = crawl(spider="flood", args={"count": "1"},
                   settings={"HITL_MONITORS": {"item_count_drop": {"share": 2}}}).wait()
    assert result.returncode == 1
    assert "HITL_MONITORS['item_count_drop']['share'] must be a share in (0, 1], such as 0.5; got 2" in result.log
    assert runs.list_runs(state.db) == []  # it never started

    result = crawl(spider="flood", args={"count": "1"}, settings={"HITL_MONITORS": {"items_gone": {}}}).wait()
    assert result.returncode == 1
    assert ("HITL_MONITORS has an unknown monitor 'items_gone'; the monitors are domain_without_items, "
            "item_count_drop, error_rate, block_rate, finish_reason") in result.log
