"""The crawler side of the live view with real crawls: a captcha page held open in the
crawler's Chromium, its frames in Redis, the timeout, and the cap on held pages.

The reviewer's side (the console, a browser solving the challenge through the live view)
is tests/console/browser/test_live_view.py.
"""

from __future__ import annotations

import pytest

from scrapy_hitl.live import relay
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.browser

DOMAIN = "protected.sandbox.test"
LIVE = {"HITL_TIERS": "static,browser,human", "HITL_BROWSER_MAX_PAGES": 4}


def _live_intervention(cli):
    opened = cli.json("interventions", "list")
    return opened[0] if opened and opened[0]["evidence"].get("live") else None


def test_an_unsolved_live_page_expires_closes_and_fails_its_request_with_captcha_expired(crawl, cli, state):
    run = crawl(args={"sections": "protected", "details": "0"}, settings={**LIVE, "HITL_LIVE_TIMEOUT": 4})
    intervention = wait_for(lambda: _live_intervention(cli), timeout=90, what="a live intervention")
    assert (intervention["type"], intervention["domain"]) == ("captcha_solve", DOMAIN)
    # The held page streams: its first frame is in Redis, and the request's copy is parked.
    wait_for(lambda: relay.latest(state.redis, intervention["id"])[1], timeout=30, what="a frame")
    assert relay.info(state.redis, intervention["id"])["state"] == "live"
    assert state.parking.domain_count(DOMAIN) == 1

    result = run.wait(timeout=120)
    assert result.returncode == 0, result.log[-3000:]
    stats = result.stats
    assert stats["hitl/live/pages"] == 1
    assert stats["hitl/live/expired"] == 1
    assert stats["hitl/failed/captcha_expired"] == 1
    assert stats.get("retry/count", 0) == 0  # not retried
    assert stats["hitl/live/pages_closed"] == 1  # the page was released
    shown = cli.json("interventions", "show", str(intervention["id"]))
    assert shown["status"] == "expired"
    assert shown["resolution"] == {"action": "expire", "reason": "captcha_expired", "failed": 1}
    page = relay.info(state.redis, intervention["id"])
    assert page["state"] == "closed" and page["reason"] == "expired"
    assert state.parking.domain_count(DOMAIN) == 0  # the copy is gone: failed, not resumed
    assert result.items_in("protected") == []


@pytest.fixture(scope="module")
def captcha_everywhere():
    """The sandbox in test mode: HITL_FORCE_CAPTCHA challenges every page without clearance."""
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=2, env={"HITL_FORCE_CAPTCHA": "1"})
    server.start()
    yield server
    server.stop()


def test_beyond_the_live_page_cap_a_captcha_is_a_normal_pause_with_a_screenshot(crawl, cli, captcha_everywhere):
    captcha_everywhere.reset()
    run = crawl(args={"sections": "quotes,js", "details": "0"}, site=captcha_everywhere,
                settings={**LIVE, "HITL_LIVE_MAX_PAGES": 1})
    both = wait_for(lambda: (lambda rows: rows if len(rows) == 2 else None)(cli.json("interventions", "list")),
                    timeout=90, what="two interventions")
    assert {i["type"] for i in both} == {"captcha_solve"}
    shown = [wait_for(lambda i=i: (lambda d: d if (d["evidence"].get("artifacts") or {}).get("screenshot") else None)(
        cli.json("interventions", "show", str(i["id"]))), timeout=30, what="a screenshot") for i in both]
    live = [i for i in shown if i["evidence"].get("live")]
    assert len(live) == 1  # the cap: one held page; the other domain paused as usual, with its screenshot
    for i in shown:
        code, out = cli("interventions", "cancel", str(i["id"]))
        assert code == 0, out
    result = run.wait()
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["hitl/live/pages"] == result.stats["hitl/live/pages_closed"] == 1


def test_cancelling_the_intervention_closes_the_live_page(crawl, cli, state):
    run = crawl(args={"sections": "protected", "details": "0"}, settings=LIVE)
    intervention = wait_for(lambda: _live_intervention(cli), timeout=90, what="a live intervention")
    wait_for(lambda: relay.latest(state.redis, intervention["id"])[1], timeout=30, what="a frame")
    code, out = cli("interventions", "cancel", str(intervention["id"]))
    assert code == 0, out
    result = run.wait(timeout=120)
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["hitl/live/pages_closed"] == 1
    page = relay.info(state.redis, intervention["id"])
    assert (page["state"], page["reason"]) == ("closed", "cancelled")
    assert state.parking.domain_count(DOMAIN) == 0  # the copy failed with the others
    assert result.items_in("protected") == []


def test_a_spider_closing_while_it_holds_a_page_closes_it_and_keeps_the_request_parked(crawl, cli, state):
    import signal

    run = crawl(args={"sections": "protected", "details": "0"}, settings=LIVE)
    intervention = wait_for(lambda: _live_intervention(cli), timeout=90, what="a live intervention")
    wait_for(lambda: relay.latest(state.redis, intervention["id"])[1], timeout=30, what="a frame")
    run.proc.send_signal(signal.SIGINT)  # Ctrl-C: Scrapy's graceful shutdown
    result = run.wait(timeout=120)
    assert result.stats["finish_reason"] == "shutdown", result.log[-3000:]
    assert result.stats["hitl/live/pages_closed"] == 1
    page = relay.info(state.redis, intervention["id"])
    assert (page["state"], page["reason"]) == ("closed", "spider_closed")
    assert cli.json("interventions", "show", str(intervention["id"]))["status"] == "open"
    parked = state.parking.peek("sandbox", DOMAIN)
    assert [p["reason"] for p in parked] == ["captcha_live"]  # the held request waits for the next run
