"""robots.txt with real crawls: obeyed on every tier, refusals counted and listed, and the
robots.txt fetch never judged as a block (scrapy_hitl/middlewares/robots.py)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

PAGES = 3
FAST = {"HITL_STEALTH_DELAY": "0,0", "HITL_BROWSER_MAX_PAGES": 4, "ROBOTSTXT_OBEY": True}


@pytest.fixture(scope="module")
def robots_sandbox():
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=PAGES, robots_disallow="/quotes/page/3,/js/page/3")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_sandbox(robots_sandbox):
    """Overrides tests/integration/conftest.py's: this module's sandbox has a robots.txt."""
    robots_sandbox.reset()
    return robots_sandbox


def test_robots_txt_is_obeyed_on_the_static_and_browser_tiers_and_refusals_are_listed(crawl, fresh_sandbox, state):
    from scrapy_hitl.state import interventions

    result = crawl(args={"sections": "quotes,js", "details": "0"}, settings=FAST).wait()

    assert result.returncode == 0, result.log[-3000:]
    hits = fresh_sandbox.hits()
    assert "/quotes/page/3" not in hits and "/js/page/3" not in hits  # neither tier fetched them
    assert hits.get("/quotes/page/2") and hits.get("/js/page/2")
    stats = result.stats
    assert stats["hitl/tier/browser/responses"] >= 1  # the js pages went through the browser
    assert stats["hitl/robots/refused"] == 2
    assert sorted(urlsplit(u).path for u in stats["hitl/robots/refused_urls"].splitlines()) == ["/js/page/3", "/quotes/page/3"]
    assert stats["robotstxt/forbidden"] == 2
    assert len(result.items_in("quotes")) == len(result.items_in("js")) == 2 * 10
    assert not any(k.startswith("hitl/parked") and v for k, v in stats.items() if isinstance(v, int))
    assert interventions.list_interventions(state, status="all") == []


@pytest.fixture
def challenging_sandbox():
    """Every page without clearance gets the captcha challenge, robots.txt included."""
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=PAGES, force_captcha=True)
    server.start()
    yield server
    server.stop()


def test_a_challenged_robots_txt_is_not_a_block_and_is_never_parked(crawl, challenging_sandbox, state):
    """A protected site answers robots.txt with the same challenge as its pages: the pages
    open the intervention and are parked, robots.txt is only read (Scrapy then allows all)."""
    from scrapy_hitl.state import interventions

    result = crawl(args={"sections": "quotes", "details": "0"}, settings={**FAST, "HITL_PAUSE_TIMEOUT": 1, "HITL_LIVE_ENABLED": False},
                   site=challenging_sandbox).wait()

    assert result.returncode == 0, result.log[-3000:]
    stats = result.stats
    assert stats["robotstxt/request_count"] == 1 and stats["robotstxt/response_count"] == 1
    assert challenging_sandbox.hits().get("/robots.txt") == 1  # read once, not parked and retried
    [opened] = interventions.list_interventions(state, status="open")
    assert opened["type"] == "captcha_solve"
    parked = [p["request"]["url"] for (spider, domain) in state.parking.pairs()
              for p in state.parking.peek(spider, domain, 100)]
    assert parked and not any(url.endswith("/robots.txt") for url in parked)
    assert "NO_CALLBACK" not in result.log


@pytest.fixture
def vip_robots_sandbox():
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=6, robots_disallow="/vip/page/4")
    server.start()
    yield server
    server.stop()


def test_a_request_robots_txt_refuses_is_not_parked_while_its_domain_is_held(crawl, vip_robots_sandbox, state):
    """vip answers 403: the domain is held, and the pages scheduled after are parked for a
    human, except the one robots.txt refuses, which is dropped and counted as usual."""
    result = crawl(spider="vip_fanout", args={"pages": "6", "delay": "0.3"},
                   settings={"ROBOTSTXT_OBEY": True, "CONCURRENT_REQUESTS": 1, "HITL_PAUSE_TIMEOUT": 1},
                   site=vip_robots_sandbox).wait()

    assert result.returncode == 0, result.log[-3000:]
    stats = result.stats
    assert stats["hitl/robots/refused"] == 1 and urlsplit(stats["hitl/robots/refused_urls"]).path == "/vip/page/4"
    parked = sorted(urlsplit(p["request"]["url"]).path for (spider, domain) in state.parking.pairs()
                    for p in state.parking.peek(spider, domain, 100))
    assert parked == [f"/vip/page/{n}" for n in (1, 2, 3, 5, 6)]
    assert "/vip/page/4" not in vip_robots_sandbox.hits()
