"""Solving a captcha live, in a real browser, in the crawler's own page.

A real crawl of the sandbox with HITL_FORCE_CAPTCHA (every page is challenged) holds one
challenged page open in its Chromium; the others are parked. A reviewer opens the
intervention in the console, sees frames of that page, presses Continue too early (and is
told the challenge is still there), then ticks the checkbox, types the code (with a
typo taken back by Backspace) and presses Enter through the live view, and presses Continue. The crawl completes with the item of that
very page, and the domain's other parked requests resume with the page's cookies.
Screenshots of the live view are kept in tests/artifacts/.
"""

from __future__ import annotations

import re
import time

import pytest

from scrapy_hitl.state import artifacts, interventions
from tests.support.crawl import Crawl

pytestmark = pytest.mark.browser

DOMAIN = "quotes.sandbox.test"
PAGES = 3
LONG_MS = 180_000  # hang guard for the crawl's own steps


@pytest.fixture(scope="module")
def captcha_site():
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=PAGES, env={"HITL_FORCE_CAPTCHA": "1"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_crawl(hitl_env, captcha_site, tmp_path):
    captcha_site.reset()
    crawl = Crawl(tmp_path, hitl_env, spider="live_captcha", args={"base": captcha_site.url, "pages": str(PAGES)},
                  settings={"SPIDER_MODULES": ["demo.spiders", "tests.support.spiders"],
                            "HITL_TIERS": "static,browser,human", "HITL_PAUSE_TIMEOUT": 600, "LOG_LEVEL": "INFO",
                            "HITL_STATS_FLUSH_INTERVAL": 0.5, "HITL_PARK_FLUSH_INTERVAL": 0.02})
    yield crawl
    if crawl.proc.poll() is None:
        crawl.proc.kill()
        crawl.proc.wait(timeout=30)


def _wait(predicate, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout  # a hang guard, not a timing assertion
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _seq(page) -> int:
    return int(page.get_attribute("#live-screen", "data-seq"))


def _quiet(page, seconds: float = 1.0) -> int:
    """The frame shown once none has come for ``seconds`` (frames come on every paint)."""
    seq, since = _seq(page), time.monotonic()
    deadline = since + 120  # a hang guard
    while time.monotonic() - since < seconds and time.monotonic() < deadline:
        time.sleep(0.1)
        if _seq(page) != seq:
            seq, since = _seq(page), time.monotonic()
    return seq


def _live_intervention(state):
    rows = interventions.list_interventions(state, status="open")
    return next((r for r in rows if r["evidence"].get("live")), None)


def _boxes(browser, html: str, width: int, height: int) -> dict[str, dict[str, float]]:
    """Where the challenge's checkbox and code field are in a page of that viewport: the
    reviewer sees them in the frames; the test finds them by laying out the same HTML."""
    context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_content(html)
        return {name: page.locator(selector).bounding_box()
                for name, selector in (("checkbox", "input[name=human]"), ("code", "#cf-code-input"))}
    finally:
        context.close()


def test_a_reviewer_solves_the_captcha_in_the_crawlers_own_page_and_the_crawl_continues_from_it(
        tab, users, state, browser, live_crawl, captcha_site):
    page = tab.page
    tab.login("reviewer@example.com")
    intervention = _wait(lambda: _live_intervention(state), "a live intervention")
    assert (intervention["type"], intervention["domain"]) == ("captcha_solve", DOMAIN)
    iid = intervention["id"]

    page.goto(f"{tab.base_url}/interventions/{iid}")
    page.wait_for_selector('#live-view[data-state="live"]', timeout=LONG_MS)
    page.wait_for_selector('#live-screen:not([data-seq="0"])')  # frames of the crawler's page
    first_seq = _seq(page)
    tab.screenshot("live-view-challenge")

    # Too early: the crawler checks the page, finds the challenge, and the view stays.
    page.click("#live-continue")
    error = page.wait_for_selector("#live-error:not([hidden])")
    assert "still there" in error.text_content()
    assert page.get_attribute("#live-view", "data-state") == "live"

    # The code is on the held page itself (its rendered HTML is the intervention's evidence).
    _, html = artifacts.load(state.db, iid, "html")
    code = re.search(rb'id="cf-code">([A-Z0-9]+)<', html).group(1).decode()
    width = float(page.get_attribute("#live-screen", "data-w"))
    height = float(page.get_attribute("#live-screen", "data-h"))
    boxes = _boxes(browser, html.decode(), int(width), int(height))
    page.locator("#live-frame").scroll_into_view_if_needed()
    shown = page.locator("#live-frame").bounding_box()
    assert shown["width"] < width  # the frame is shown scaled: clicks are scaled back

    def click(box):
        page.mouse.click(shown["x"] + (box["x"] + box["width"] / 2) * shown["width"] / width,
                         shown["y"] + (box["y"] + box["height"] / 2) * shown["height"] / height)

    click(boxes["checkbox"])
    click(boxes["code"])
    page.keyboard.type("XY")  # a typo, taken back with a special key
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.type(code)
    _wait(lambda: _seq(page) > first_seq, "a new frame")
    # The typing's last frames are in. Less than a caret blink (about 0.5 s): the focused
    # field's caret repaints the page for as long as it blinks.
    typed_seq = _quiet(page, 0.3)
    tab.screenshot("live-view-typed")
    page.keyboard.press("Enter")

    path = urlsplit_path(intervention["url"])
    _wait(lambda: any(r["status"] == 200 for r in captcha_site.requests(path)), "the solved page to load")
    # The solved page's paint may reach the console before the site's record is read, so
    # no "next" frame is owed: wait for the frames to stop, then check the view moved on.
    assert _quiet(page) > typed_seq, "no frame since the code was submitted"
    tab.screenshot("live-view-solved")

    page.click("#live-continue")
    page.wait_for_selector('#live-view[data-continued="true"]', timeout=LONG_MS)
    page.wait_for_selector('#live-view[data-state="closed"]', timeout=LONG_MS)
    page.wait_for_selector('#i-status[data-status="resolved"]', timeout=LONG_MS)
    tab.screenshot("live-view-continued")

    result = live_crawl.wait(timeout=180)
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["finish_reason"] == "finished"
    items = result.items_in("quotes")
    assert len(items) == PAGES and all(i["quotes"] == 10 for i in items)
    live_items = [i for i in items if i["live"]]
    assert [i["url"] for i in live_items] == [intervention["url"]]  # the item of that very page
    # That page was never fetched again: its one good load is the held page's own.
    assert sum(r["status"] == 200 for r in captcha_site.requests(path)) == 1
    # The other pages were parked, then resumed with the page's cookies.
    assert result.stats["hitl/resumed"] == PAGES - 1
    for other in {i["url"] for i in items} - {intervention["url"]}:
        loads = [r for r in captcha_site.requests(urlsplit_path(other)) if r["status"] == 200]
        assert loads and all("cf_clearance" in r["cookies"] for r in loads)
    session = state.vault.get(DOMAIN)
    assert session is not None and any(c.name == "cf_clearance" for c in session.cookies)
    assert result.stats["hitl/live/continued"] == 1
    assert result.stats["hitl/live/pages_closed"] == 1  # the page was released
    shown_intervention = interventions.get(state, iid)
    assert shown_intervention["resolution"]["action"] == "cookies"
    assert tab.errors == [] and tab.dialogs == []


def urlsplit_path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path
