"""Nothing ends silently (issue 13): a page that misses its data on the top tier ends in a
selector_fix intervention with the page parked, even when it is one page, and even when the
crawler is killed before it decides."""

from __future__ import annotations

import pytest
import redis

from tests.integration.conftest import wait_for

# The static tier is the top automated tier here: the climb itself is the classifier's and
# the escalation tests' business; these tests are about what happens on the top tier.
STATIC_ONLY = {"HITL_TIERS": "static,human", "HITL_PAUSE_TIMEOUT": 1}


@pytest.mark.parametrize("taint", ["", "1"], ids=["plain", "callback-taints-meta"])
def test_a_single_page_that_misses_its_data_is_parked_for_a_selector_fix(crawl, cli, fresh_sandbox, taint):
    # "callback-taints-meta": the callback leaves an object in the page's meta that JSON
    # cannot hold; the page is parked as it was when it missed, not as the callback left it.
    first = crawl(spider="missing_data", args={"taint": taint}, settings=STATIC_ONLY).wait()
    assert first.stats["finish_reason"] == "hitl_paused"  # it waited for a human, then left
    assert first.stats["hitl/drift/kept"] == 1
    (i,) = cli.json("interventions", "list")
    assert (i["type"], i["reason"], i["domain"], i["parked_count"]) == (
        "selector_fix", "selector_missing", "onepage.sandbox.test", 1)
    shown = cli.json("interventions", "show", str(i["id"]))
    assert shown["evidence"]["pages"] == [f"{fresh_sandbox.url.replace('127.0.0.1', 'onepage.sandbox.test')}"
                                          "/quotes/page/1"]
    assert shown["evidence"]["expect"] == "div.no-such-quote"

    code, out = cli("interventions", "resolve", str(i["id"]), "--note", "selector fixed")
    assert code == 0, out
    fixed = crawl(spider="missing_data", args={"expect": "div.quote"}, settings=STATIC_ONLY).wait()
    assert fixed.stats["hitl/resumed"] == 1
    assert fixed.stats["hitl/parked/duplicates_dropped"] == 1  # its own start request: parked already
    assert [item["quotes"] for item in fixed.items] == [10]
    assert fresh_sandbox.hits()["/quotes/page/1"] == 2
    assert cli.json("status")["parked_total"] == 0
    assert not cli.json("interventions", "list")


def test_a_later_page_of_the_same_template_that_matches_clears_a_miss(crawl, cli, fresh_sandbox, hitl_env):
    result = crawl(spider="missing_data", args={"follow": "1"}, settings=STATIC_ONLY).wait()
    assert result.stats["hitl/drift/kept"] == 1  # page 1 missed; page 2 of its template matched
    assert result.stats["finish_reason"] == "finished"
    assert not cli.json("interventions", "list")
    assert redis.Redis.from_url(hitl_env["HITL_REDIS_URL"]).hlen("hitl:missed:missing_data") == 0


def test_a_crawler_killed_before_it_decides_loses_no_missed_page(crawl, cli, fresh_sandbox, hitl_env):
    client = redis.Redis.from_url(hitl_env["HITL_REDIS_URL"])
    # A short heartbeat: the killed run is known dead 1.5 s after its last beat.
    run = crawl(spider="missing_data", args={"linger": "60"}, settings={**STATIC_ONLY, "HITL_RUN_HEARTBEAT": 0.5})
    wait_for(lambda: client.hlen("hitl:missed:missing_data") == 1, what="the missed page kept")
    run.kill9()  # while its callback still runs: the crawl never reached idle or close
    assert not cli.json("interventions", "list")
    wait_for(lambda: not client.keys("hitl:run:*:alive"), what="the killed run's heartbeat to lapse")

    again = crawl(spider="missing_data", args={"expect": "div.quote"}, settings=STATIC_ONLY).wait()
    assert "Parked again 1 pages that missed hitl_expect" in again.log
    assert again.stats["hitl/resumed"] == 1
    assert again.stats["hitl/parked/duplicates_dropped"] == 1
    assert [item["quotes"] for item in again.items] == [10]
    assert client.hlen("hitl:missed:missing_data") == 0
    assert cli.json("status")["parked_total"] == 0
