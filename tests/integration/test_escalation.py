"""The escalation ladder with real crawls: static -> browser (scrapy-playwright, the system
Chromium) -> stealth -> human, learning the cheapest tier per domain and path pattern.

The demo spider crawls the sandbox's JavaScript-only section (js.sandbox.test) and its
section that refuses automated browsers (guarded.sandbox.test); Chromium reaches them
through the demo project's --host-resolver-rules.
"""

from __future__ import annotations

import psutil
import pytest

from scrapy_hitl.state import artifacts, snapshots
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.browser

PAGES = 3  # pages per section of this module's sandbox: a browser page costs far more than a static one
FAST = {"HITL_STEALTH_DELAY": "0,0", "HITL_BROWSER_MAX_PAGES": 4}


@pytest.fixture(scope="module")
def escalation_sandbox():
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=PAGES)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_sandbox(escalation_sandbox):
    """Overrides tests/integration/conftest.py's: the crawls here use the smaller sandbox."""
    escalation_sandbox.reset()
    return escalation_sandbox


def quotes_of(result, section):
    return sorted(item["text"] for item in result.items_in(section))


def test_a_js_only_page_is_fetched_static_then_in_the_browser_and_its_items_collected(crawl, fresh_sandbox):
    result = crawl(args={"sections": "quotes,js", "details": "0"}, settings=FAST).wait()

    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items_in("js")) == PAGES * 10
    assert quotes_of(result, "js") == quotes_of(result, "quotes")  # the same data, rendered by JS
    stats = result.stats
    # Page 1 went static first and climbed; once /js/page/{n} was learned, the rest started
    # in the browser. The static section never touched the browser.
    assert fresh_sandbox.hits().get("/js/page/1") == 2
    assert stats["hitl/escalations/static/browser"] >= 1
    assert stats["hitl/tier/browser/responses"] >= PAGES
    assert stats["hitl/tier/static/responses"] >= PAGES  # the quotes section, plus js page 1
    assert "hitl/escalations/browser/stealth" not in stats
    assert stats.get("hitl/interventions/created/selector_fix") is None


def test_a_page_that_refuses_automation_fails_in_the_plain_browser_and_passes_in_stealth(crawl, fresh_sandbox,
                                                                                        state):
    result = crawl(args={"sections": "quotes,guarded", "details": "0"}, settings=FAST).wait()

    assert result.returncode == 0, result.log[-3000:]
    assert quotes_of(result, "guarded") == quotes_of(result, "quotes")
    stats = result.stats
    assert stats["hitl/escalations/static/browser"] >= 1
    assert stats["hitl/escalations/browser/stealth"] >= 1
    assert stats["hitl/blocks/automation_detected"] >= 1
    assert stats["hitl/tier/stealth/responses"] >= PAGES
    # The data endpoint only answers a client with the guard's cookie and header: each
    # page's data was fetched by the stealth page's own script, with one consistent
    # fingerprint (the same desktop user agent) for the domain.
    data = [r for n in range(1, PAGES + 1) for r in fresh_sandbox.requests(f"/guarded/data/{n}")]
    assert len(data) >= PAGES and all(r["status"] == 200 for r in data)
    agents = {r["user_agent"] for r in data}
    assert len(agents) == 1 and "HeadlessChrome" not in agents.pop()
    # the first refusal in the plain browser is kept as an error snapshot, with a screenshot
    kept = {(s["source"], s["code"], s["tier"]): s for s in snapshots.list_for_run(state.db, stats["hitl/run_id"])}
    refused = kept[("escalate", "automation_detected", "browser")]
    assert set(refused["files"]) == {"html", "screenshot"}
    assert snapshots.load(state.db, refused["run_id"], refused["id"], "screenshot")[1].startswith(b"\x89PNG")


def test_a_page_whose_data_arrives_after_load_is_judged_once_it_shows_the_data(crawl, tmp_path):
    """The guarded pages fetch their quotes from an API 1.5 s slower than the page: the
    browser waits for hitl_expect (browser/settle.py) instead of reading the empty template
    at "load", which would miss the selector and lose the section."""
    from sandbox.control import SandboxServer

    with SandboxServer(pages=2, data_latency_ms=1500) as slow_api:
        result = crawl(args={"sections": "guarded", "details": "0"}, settings=FAST, site=slow_api).wait()

    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items_in("guarded")) == 2 * 10
    assert result.stats["hitl/tier/stealth/responses"] == 2  # each page once, with its data


def test_a_learned_domain_skips_the_static_fetch_on_the_next_run(crawl, fresh_sandbox):
    first = crawl(args={"sections": "js", "details": "0"}, settings=FAST).wait()
    assert first.returncode == 0, first.log[-3000:]
    assert first.stats["hitl/escalations/static/browser"] >= 1

    fresh_sandbox.reset()
    second = crawl(args={"sections": "js", "details": "0"},
                   settings={**FAST, "HITL_TIER_RECHECK_SHARE": 0}).wait()

    assert second.returncode == 0, second.log[-3000:]
    assert len(second.items_in("js")) == PAGES * 10
    stats = second.stats
    assert "hitl/escalations/static/browser" not in stats
    assert "hitl/tier/static/requests" not in stats
    assert stats["hitl/tier/browser/requests"] == PAGES
    assert sum(fresh_sandbox.hits(prefix="/js/page/").get(f"/js/page/{n}", 0) for n in range(1, PAGES + 1)) == PAGES


def test_contexts_are_recycled_every_n_pages_and_the_crawl_goes_on(crawl):
    result = crawl(args={"sections": "js", "details": "0"},
                   settings={**FAST, "HITL_BROWSER_CONTEXT_PAGES": 2}).wait(timeout=240)

    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items_in("js")) == PAGES * 10
    pages = result.stats["hitl/browser/pages"]
    assert pages >= PAGES
    # a new context every 2 pages: the first serves pages 1-2, each later one the next 2
    assert result.stats["hitl/browser/contexts_recycled"] == (pages - 1) // 2
    assert result.stats["playwright/context_count"] == (pages - 1) // 2 + 1


def test_a_pause_on_the_browser_tier_keeps_a_screenshot_and_the_rendered_html(crawl, cli, state):
    run = crawl(args={"sections": "protected", "details": "0"},
                settings={**FAST, "HITL_TIERS": "static,browser,human"})
    opened = wait_for(lambda: cli.json("interventions", "list"), timeout=60, what="an intervention")
    assert [(i["type"], i["domain"]) for i in opened] == [("captcha_solve", "protected.sandbox.test")]
    intervention = wait_for(
        lambda: (lambda i: i if (i["evidence"].get("artifacts") or {}).get("screenshot") else None)(
            cli.json("interventions", "show", str(opened[0]["id"]))),
        timeout=30, what="the screenshot")
    assert intervention["evidence"]["tier"] == "browser"
    content_type, png = artifacts.load(state.db, intervention["id"], "screenshot")
    assert content_type == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    _, html = artifacts.load(state.db, intervention["id"], "html")
    assert b"Just a moment" in html and b"cf-code" in html  # the challenge as the browser rendered it

    code, out = cli("interventions", "cancel", str(intervention["id"]))
    assert code == 0, out
    result = run.wait()
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["hitl/escalations/static/browser"] == 1
    # error snapshots: the static challenge page, then the browser's pause with the capture above
    kept = {(s["source"], s["tier"]): s["files"] for s in snapshots.list_for_run(state.db, result.stats["hitl/run_id"])}
    assert set(kept) == {("escalate", "static"), ("pause", "browser")}
    assert set(kept["escalate", "static"]) == {"html"}
    assert set(kept["pause", "browser"]) == {"html", "screenshot"}


def test_a_static_pause_keeps_the_response_body(crawl, cli, state):
    run = crawl(args={"sections": "vip", "details": "0"})
    opened = wait_for(lambda: cli.json("interventions", "list"), what="an intervention")
    intervention = wait_for(
        lambda: (lambda i: i if (i["evidence"].get("artifacts") or {}).get("body") else None)(
            cli.json("interventions", "show", str(opened[0]["id"]))), what="the body")
    assert intervention["evidence"]["tier"] == "static"
    _, body = artifacts.load(state.db, intervention["id"], "body")
    assert b"403 Forbidden" in body
    cli("interventions", "cancel", str(intervention["id"]))
    assert run.wait().returncode == 0


def test_a_crashed_browser_is_restarted_and_the_crawl_finishes(crawl, fresh_sandbox):
    run = crawl(args={"sections": "js", "details": "1"}, settings={**FAST, "HITL_BROWSER_MAX_PAGES": 2})
    # Kill it mid-crawl: once detail pages are being rendered.
    wait_for(lambda: fresh_sandbox.hits(prefix="/js/detail/")["__total__"] >= 5, timeout=60, what="detail pages")
    parent = psutil.Process(run.proc.pid)

    def browser_main():
        for child in parent.children(recursive=True):
            try:
                cmdline = child.cmdline()
            except psutil.Error:
                continue
            # The browser itself: Playwright talks to it over a pipe (not its crashpad
            # handler, zygotes or renderers, which carry --type=...).
            if "--remote-debugging-pipe" in cmdline and not any(a.startswith("--type=") for a in cmdline):
                return child
        return None

    wait_for(browser_main, timeout=30, what="the browser process").kill()
    result = run.wait(timeout=240)

    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items_in("js")) == PAGES * 10
    assert all(item["born"] for item in result.items_in("js"))
    assert result.stats["playwright/browser_count"] >= 2  # relaunched after the crash


REFUSAL_SPIDERS = {"SPIDER_MODULES": ["demo.spiders", "tests.support.spiders", "tests.support.refusal_spiders"]}


def test_a_section_refused_by_a_real_bot_detector_climbs_to_stealth_and_the_next_run_starts_there(
        crawl, fresh_sandbox):
    """BotD (the npm library, served by the sandbox) refuses the browser tier's headless
    Chromium in the page body and keeps the site's title; the spider declares only
    hitl_expect. The refusal climbs to stealth, which BotD lets through."""
    from sandbox.content import page_quotes

    settings = {**FAST, **REFUSAL_SPIDERS}
    first = crawl(spider="botd_quotes", settings=settings).wait()

    assert first.returncode == 0, first.log[-3000:]
    expected = sorted(q.text for n in range(1, PAGES + 1) for q in page_quotes(n))
    assert sorted(item["text"] for item in first.items) == expected
    stats = first.stats
    assert stats["hitl/escalations/static/browser"] == 1  # page 1; the later pages start where it ended
    assert stats["hitl/escalations/browser/stealth"] == 1
    assert stats["hitl/blocks/automation_refused"] == 1  # the rendered refusal, judged as one
    assert stats["hitl/tier/stealth/responses"] == PAGES
    assert not any(key.startswith("hitl/interventions/created") for key in stats)
    data = [r for n in range(1, PAGES + 1) for r in fresh_sandbox.requests(f"/botd/data/{n}")]
    assert len(data) == PAGES and all(r["status"] == 200 for r in data)

    fresh_sandbox.reset()
    second = crawl(spider="botd_quotes", settings={**settings, "HITL_TIER_RECHECK_SHARE": 0}).wait()

    assert second.returncode == 0, second.log[-3000:]
    assert sorted(item["text"] for item in second.items) == expected
    stats = second.stats
    assert not any(key.startswith("hitl/escalations/") for key in stats)
    assert "hitl/tier/static/requests" not in stats and "hitl/tier/browser/requests" not in stats
    assert stats["hitl/tier/stealth/requests"] == PAGES
    assert sum(fresh_sandbox.hits(prefix="/botd/page/").get(f"/botd/page/{n}", 0) for n in range(1, PAGES + 1)) == PAGES
