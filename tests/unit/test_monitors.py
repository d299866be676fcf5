"""The run monitors, by tables of runs and histories; HITL_MONITORS read and refused."""

from __future__ import annotations

import re

import pytest
from scrapy.settings import Settings

from scrapy_hitl import monitors
from scrapy_hitl.monitors import ALERT, OK, SKIPPED, MonitorConfigError, MonitorSettings, RunFacts


def run(items: int | None = None, reason: str = "finished", run_id: str = "", **stats) -> RunFacts:
    """A run's stats: ``items`` as counted by the item source middleware (None: not counted);
    per-domain counts as keyword ``d_<domain with _ for .>``."""
    data = {}
    if items is not None:
        data["hitl/items"] = items
    for key, value in stats.items():
        if key.startswith("d_"):
            data["hitl/items/domain/" + key[2:].replace("_", ".")] = value
        else:
            data[key.replace("__", "/")] = value
    return RunFacts(data, reason, run_id)


# (id, run, history newest first, status, words in the message, domains)
DOMAIN_CASES = [
    ("every domain again", run(30, d_a_com=20, d_b_com=10), [run(25, d_a_com=15, d_b_com=10)], OK, "Every domain", []),
    ("one domain silent", run(20, d_a_com=20), [run(25, d_a_com=15, d_b_com=10, run_id="r1")], ALERT,
     "No items from 1 domain", ["b.com"]),
    ("a whole run at 0", run(0), [run(25, d_a_com=15, d_b_com=10)], ALERT, "2 domains", ["a.com", "b.com"]),
    ("not counted, no items at all (Scrapy's counts)", run(None, item_scraped_count=0), [run(5, d_a_com=5)],
     ALERT, "a.com (5 before)", ["a.com"]),
    ("a domain with 0 before is no loss", run(3, d_a_com=3), [run(3, d_a_com=3, d_b_com=0)], OK, "(1)", []),
    ("only the previous run counts", run(3, d_a_com=3), [run(3, d_a_com=3), run(9, d_b_com=9)], OK, "", []),
    ("no history", run(3, d_a_com=3), [], SKIPPED, "No earlier completed run", None),
    ("previous run did not count per domain", run(3, d_a_com=3), [run(None, item_scraped_count=9)], SKIPPED,
     "recorded no items per domain", None),
    ("this run did not count per domain", run(None, item_scraped_count=4), [run(5, d_a_com=5)], SKIPPED,
     "HITL_QUALITY_ENABLED is off", None),
    ("waiting for a human", run(0, reason="hitl_paused"), [run(5, d_a_com=5)], SKIPPED, "waiting for a human",
     None),
]


@pytest.mark.parametrize(("current", "history", "status", "words", "domains"),
                         [pytest.param(*c[1:], id=c[0]) for c in DOMAIN_CASES])
def test_domain_without_items(current, history, status, words, domains):
    found = monitors.domain_without_items(current, history)
    assert found.status == status and words in found.message, found
    if domains is not None:
        assert found.values["domains"] == domains


def test_domain_without_items_names_the_biggest_losses_first():
    found = monitors.domain_without_items(run(0), [run(60, d_a_com=10, d_b_com=50, run_id="prev")])
    assert found.message == ("No items from 2 domains that yielded items in the previous completed run: "
                             "b.com (50 before), a.com (10 before).")
    assert found.values == {"previous_run": "prev", "domains": ["b.com", "a.com"],
                            "previous_items": {"b.com": 50, "a.com": 10}}


# (id, items now, items of earlier runs newest first, share, runs, status, message)
COUNT_CASES = [
    ("at the median", 60, [60, 58, 61, 59, 62], 0.5, 5, OK, "60 items; the median of the last 5 completed runs is "
                                                             "60 (floor 30)."),
    ("at the floor exactly", 30, [60, 58, 61, 59, 62], 0.5, 5, OK, None),
    ("under the floor", 29, [60, 58, 61, 59, 62], 0.5, 5, ALERT,
     "29 items, under 50% of the median of the last 5 completed runs (60)."),
    ("zero", 0, [60], 0.5, 5, ALERT, "0 items, under 50% of the median of the last 1 completed run (60)."),
    ("one outlier run does not move the median", 40, [60, 1000, 58, 3, 61], 0.5, 5, OK, None),
    ("only the last `runs` count", 40, [100, 100, 10, 10, 10], 0.5, 2, ALERT, None),
    ("an even count: the mean of the middle two", 19, [30, 50], 0.5, 5, ALERT,
     "19 items, under 50% of the median of the last 2 completed runs (40)."),
    ("share 0.9 is stricter", 50, [60, 60], 0.9, 5, ALERT, None),
    ("earlier runs had none", 0, [0, 0], 0.5, 5, OK, None),
    ("no history", 5, [], 0.5, 5, SKIPPED, "No earlier completed run to compare with."),
]


@pytest.mark.parametrize(("items", "earlier", "share", "runs", "status", "message"),
                         [pytest.param(*c[1:], id=c[0]) for c in COUNT_CASES])
def test_item_count_drop(items, earlier, share, runs, status, message):
    found = monitors.item_count_drop(run(items), [run(n) for n in earlier], share=share, runs=runs)
    assert found.status == status, found
    if message is not None:
        assert found.message == message


def test_item_count_falls_back_to_scrapys_counts_and_skips_a_paused_run():
    history = [run(None, item_scraped_count=40, item_dropped_count=20)]  # a run before hitl/items was counted
    assert monitors.item_count_drop(run(31), history, share=0.5, runs=5).status == OK
    assert monitors.item_count_drop(run(29), history, share=0.5, runs=5).status == ALERT
    assert monitors.item_count_drop(run(0, reason="hitl_paused"), history, share=0.5, runs=5).status == SKIPPED


# (id, stats, max_rate, min_requests, status, message)
ERROR_CASES = [
    ("clean", {"downloader/request_count": 100, "downloader/response_status_count/200": 100}, 0.2, 20, OK,
     "0 of 100 requests (0%) failed (a network error or a 5xx response); up to 20% allowed."),
    ("network errors and 5xx add up", {"downloader/request_count": 100, "downloader/exception_count": 12,
                                       "downloader/response_status_count/503": 6,
                                       "downloader/response_status_count/500": 3}, 0.2, 20, ALERT,
     "21 of 100 requests (21%) failed (a network error or a 5xx response), above the 20% allowed."),
    ("404s are not errors", {"downloader/request_count": 100, "downloader/response_status_count/404": 90}, 0.2, 20,
     OK, None),
    ("at the limit is allowed", {"downloader/request_count": 10, "downloader/exception_count": 2}, 0.2, 10, OK, None),
    ("too few requests to judge", {"downloader/request_count": 19, "downloader/exception_count": 19}, 0.2, 20,
     SKIPPED, "Only 19 requests; judged from 20."),
    ("no requests at all", {}, 0.2, 0, SKIPPED, "Only 0 requests; judged from 1."),
]


@pytest.mark.parametrize(("stats", "max_rate", "min_requests", "status", "message"),
                         [pytest.param(*c[1:], id=c[0]) for c in ERROR_CASES])
def test_error_rate(stats, max_rate, min_requests, status, message):
    found = monitors.error_rate(RunFacts(stats, "finished"), [], max_rate=max_rate, min_requests=min_requests)
    assert found.status == status, found
    if message is not None:
        assert found.message == message


# (id, stats, status, blocked count)
BLOCK_CASES = [
    ("pages that climbed a tier are no blocks", {"downloader/response_count": 200, "hitl/blocks/selector_missing": 100,
                                                 "hitl/escalations/static/browser": 100}, OK, 0),
    ("403s that paused", {"downloader/response_count": 50, "hitl/blocks/forbidden": 15}, ALERT, 15),
    ("not_paused is a sub-count, not more blocks", {"downloader/response_count": 50, "hitl/blocks/forbidden": 5,
                                                    "hitl/blocks/not_paused": 5}, OK, 5),
    ("rate limits count", {"downloader/response_count": 40, "hitl/blocks/rate_limited": 9}, ALERT, 9),
    ("too few responses", {"downloader/response_count": 5, "hitl/blocks/forbidden": 5}, SKIPPED, 5),
]


@pytest.mark.parametrize(("stats", "status", "blocked"), [pytest.param(*c[1:], id=c[0]) for c in BLOCK_CASES])
def test_block_rate(stats, status, blocked):
    found = monitors.block_rate(RunFacts(stats, "finished"), [], max_rate=0.2, min_requests=20)
    assert (found.status, found.values["count"]) == (status, blocked), found


@pytest.mark.parametrize(("reason", "allowed", "status"), [
    ("finished", ("finished", "hitl_paused"), OK),
    ("hitl_paused", ("finished", "hitl_paused"), OK),
    ("shutdown", ("finished", "hitl_paused"), ALERT),
    ("closespider_timeout", ("finished", "hitl_paused"), ALERT),
    ("closespider_timeout", ("finished", "closespider_*"), OK),
    ("", ("finished",), ALERT),
])
def test_finish_reason(reason, allowed, status):
    found = monitors.finish_reason(RunFacts({}, reason), [], allowed=allowed)
    assert found.status == status
    if status == ALERT:
        assert "it may have stopped early" in found.message


# --- the settings ---------------------------------------------------------------------------------
def test_defaults_run_every_monitor():
    cfg = MonitorSettings.from_settings(Settings())
    assert list(cfg.monitors) == list(monitors.MONITORS)
    assert cfg.monitors["item_count_drop"] == {"share": 0.5, "runs": 5}
    assert cfg.monitors["finish_reason"] == {"allowed": ("finished", "hitl_paused")}
    assert cfg.history_runs == 5


def test_entries_merge_over_the_defaults_and_none_turns_one_off():
    cfg = MonitorSettings.from_settings(Settings({"HITL_MONITORS": {
        "error_rate": {"max_rate": 0.5}, "block_rate": None, "item_count_drop": {"runs": 10}}}))
    assert cfg.monitors["error_rate"] == {"max_rate": 0.5, "min_requests": 20}
    assert "block_rate" not in cfg.monitors
    assert cfg.history_runs == 10


def test_from_the_command_line_and_off_altogether():
    cfg = MonitorSettings.from_settings(Settings({"HITL_MONITORS": '{"finish_reason": {"allowed": "finished,shutdown"}}'}))
    assert cfg.monitors["finish_reason"] == {"allowed": ("finished", "shutdown")}
    assert MonitorSettings.from_settings(Settings({"HITL_MONITORS_ENABLED": False})).monitors == {}


@pytest.mark.parametrize(("value", "message"), [
    ({"items_dropped": {}}, "HITL_MONITORS has an unknown monitor 'items_dropped'; the monitors are "
                            "domain_without_items, item_count_drop, error_rate, block_rate, finish_reason"),
    ({"error_rate": {"max": 0.1}}, re.escape("HITL_MONITORS['error_rate'] has unknown options ['max']; its options "
                                             "are: max_rate, min_requests")),
    ({"error_rate": {"max_rate": 1.5}}, r"HITL_MONITORS\['error_rate'\]\['max_rate'\] must be a rate in \[0, 1\]"),
    ({"error_rate": {"max_rate": "lots"}}, r"\['max_rate'\] must be a number; got 'lots'"),
    ({"item_count_drop": {"share": 0}}, r"\['share'\] must be a share in \(0, 1\]"),
    ({"item_count_drop": {"runs": 0}}, r"\['runs'\] must be a whole number of at least 1; got 0"),
    ({"item_count_drop": {"runs": 2.5}}, r"\['runs'\] must be a whole number"),
    ({"block_rate": {"min_requests": -1}}, r"\['min_requests'\] must be a whole number of at least 0"),
    ({"finish_reason": {"allowed": []}}, r"\['allowed'\] must be a non-empty list of finish reasons"),
    ({"domain_without_items": {"min": 1}}, r"has unknown options \['min'\]; its options are: none"),
    ({"error_rate": 0.1}, r"HITL_MONITORS\['error_rate'\] must be a dict of options"),
    (["error_rate"], "HITL_MONITORS must be a dict: monitor name -> options"),
    ("{not json", "HITL_MONITORS is not valid JSON"),
])
def test_bad_entries_are_refused_naming_the_setting_and_the_valid_values(value, message):
    with pytest.raises(MonitorConfigError, match=message):
        MonitorSettings.from_settings(Settings({"HITL_MONITORS": value}))


# --- one intervention per run ---------------------------------------------------------------------
def test_no_alert_no_intervention():
    findings = [monitors.Finding("finish_reason", OK, "Finished with 'finished'.")]
    assert monitors.anomaly(findings, run(5), [], spider="s", fallback_domain="x") is None


@pytest.mark.parametrize(("current", "history", "domain"), [
    (run(0), [run(60, d_a_com=10, d_b_com=50)], "b.com"),  # the silent domain that gave most
    (run(4, d_a_com=1, d_c_com=3), [run(60, d_a_com=30, d_c_com=30)], "c.com"),  # this run's busiest
    (run(0), [run(60)], "example.com"),  # nothing per domain: the fallback
])
def test_the_anomaly_names_the_domain_concerned(current, history, domain):
    cfg = MonitorSettings.from_settings(Settings())
    findings = monitors.run_monitors(cfg, current, history)
    found = monitors.anomaly(findings, current, history, spider="shop", fallback_domain="example.com")
    assert found is not None and found["domain"] == domain
    assert found["reason"] == found["evidence"]["alerts"][0]["monitor"]
    assert [f["monitor"] for f in found["evidence"]["monitors"]] == list(monitors.MONITORS)
    assert found["evidence"]["items"] == current.items


def test_item_counts_are_written_into_the_stats_at_close():
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    stats = MemoryStatsCollector(get_crawler())
    counts = monitors.ItemCounts()
    counts.write(stats)
    assert stats.get_stats() == {"hitl/items": 0}  # counted, nothing yielded
    counts.add("a.com", 3)
    counts.add("b.com", 1)
    counts.add("a.com", 2)
    counts.write(stats)
    assert stats.get_stats() == {"hitl/items": 6, "hitl/items/domain/a.com": 5, "hitl/items/domain/b.com": 1}
    assert RunFacts(stats.get_stats()).domain_items() == {"a.com": 5, "b.com": 1}
