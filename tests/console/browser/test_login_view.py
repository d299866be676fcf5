"""Log in through the console, in a real browser: a reviewer opens a login live view from the
intervention of a domain that needs a session, logs in by clicking and typing in it, and
saves. The sandbox's account section keeps its login in localStorage (static cookies alone do
not pass it): the parked requests resume with the saved storage state, on the browser tier.

The login page is a ``hitl worker``'s (:class:`hitl_console.login_pages.LoginPages`, run
here in-process); the reviewer's tab talks to it only through the console and Redis.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import time
import urllib.request
from urllib.parse import urlsplit

import pytest
from scrapy.settings import Settings

from hitl_console import login_pages
from scrapy_hitl.live import relay
from scrapy_hitl.state import domains, interventions
from tests.support.crawl import Crawl

pytestmark = pytest.mark.browser

DOMAIN = "account.sandbox.test"
PAGES = 3
LONG_MS = 180_000  # hang guard for the crawl's own steps
RESOLVER = {"args": ["--host-resolver-rules=MAP *.sandbox.test 127.0.0.1"]}


@pytest.fixture
def pages(state):
    worker = login_pages.LoginPages(state, Settings({"PLAYWRIGHT_LAUNCH_OPTIONS": RESOLVER}))
    worker.start()
    _wait(lambda: login_pages.worker_alive(state), "the login pages to start")
    yield worker
    worker.stop()
    worker.join(30)


@pytest.fixture
def account_crawl(hitl_env, sandbox_site, tmp_path, state):
    sandbox_site.reset()
    domains.update(state.db, DOMAIN, requires_session="required")  # learned: no request without a session
    crawl = Crawl(tmp_path, hitl_env, spider="sandbox",
                  args={"base": sandbox_site.url, "sections": "account", "details": "0"},
                  settings={"SPIDER_MODULES": ["demo.spiders", "tests.support.spiders"], "HITL_PAUSE_TIMEOUT": 600,
                            "LOG_LEVEL": "INFO", "HITL_STATS_FLUSH_INTERVAL": 0.5, "HITL_PARK_FLUSH_INTERVAL": 0.02})
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


def _boxes(browser, html: str, width: int, height: int) -> dict[str, dict[str, float]]:
    """Where the login form's fields are in a page of that viewport: the reviewer sees them in
    the frames; the test finds them by laying out the same HTML."""
    context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_content(html)
        return {name: page.locator(f"#{name}").bounding_box() for name in ("user", "password", "signin-button")}
    finally:
        context.close()


def test_a_reviewer_logs_in_through_the_live_view_and_the_parked_requests_resume_with_its_localstorage(
        tab, users, state, browser, pages, account_crawl, sandbox_site):
    page = tab.page
    tab.login("reviewer@example.com")
    port = urlsplit(sandbox_site.url).port
    found = _wait(lambda: interventions.list_interventions(state, status="open", domain=DOMAIN), "an intervention")
    (intervention,) = found
    assert (intervention["type"], intervention["reason"]) == ("manual_access", "session_required")
    iid = intervention["id"]

    page.goto(f"{tab.base_url}/interventions/{iid}")
    page.wait_for_selector("#live-login:not([hidden])")
    login_url = f"http://{DOMAIN}:{port}/account/login?next=/account/page/1"
    page.fill("#live-login-url", login_url)
    page.fill("#live-login-name", "alice")
    page.click("#live-login-open")
    page.wait_for_selector('#live-view[data-state="live"]', timeout=LONG_MS)
    page.wait_for_selector('#live-screen:not([data-seq="0"])')  # frames of the login page
    assert page.text_content("#live-continue") == "Save session"
    tab.screenshot("login-view-open")

    html = urllib.request.urlopen(f"{sandbox_site.url}/account/login").read().decode()  # noqa: S310 (local)
    width = float(page.get_attribute("#live-screen", "data-w"))
    height = float(page.get_attribute("#live-screen", "data-h"))
    boxes = _boxes(browser, html, int(width), int(height))
    page.locator("#live-frame").scroll_into_view_if_needed()
    shown = page.locator("#live-frame").bounding_box()

    def click(box):
        page.mouse.click(shown["x"] + (box["x"] + box["width"] / 2) * shown["width"] / width,
                         shown["y"] + (box["y"] + box["height"] / 2) * shown["height"] / height)

    click(boxes["user"])
    page.keyboard.type("demo")
    click(boxes["password"])
    page.keyboard.type("demo")
    click(boxes["signin-button"])
    _wait(lambda: urlsplit((relay.info(state.redis, iid) or {}).get("url", "")).path == "/account/page/1",
          "the login page to reach the account")
    tab.screenshot("login-view-logged-in")

    page.click("#live-continue")
    page.wait_for_selector('#live-view[data-continued="true"]', timeout=LONG_MS)
    assert "Saved session alice" in page.text_content("#live-message")
    assert f"http://{DOMAIN}:{port}" in page.text_content("#live-message")  # its localStorage
    page.wait_for_selector('#live-view[data-state="closed"]', timeout=LONG_MS)
    tab.screenshot("login-view-saved")

    result = account_crawl.wait(timeout=180)
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["finish_reason"] == "finished"
    assert len(result.items_in("account")) == PAGES * 10
    assert result.stats["hitl/resumed"] >= 1
    assert result.stats["hitl/tier/browser/responses"] >= PAGES
    (session,) = state.vault.pool(DOMAIN)
    assert session.name == "alice" and session.cookies == ()  # the login is localStorage only
    assert [o["origin"] for o in session.origins] == [f"http://{DOMAIN}:{port}"]
    assert interventions.get(state, iid)["resolution"]["action"] == "cookies"
    assert tab.errors == [] and tab.dialogs == []


def test_the_intervention_says_which_sessions_were_retired_and_offers_a_login(tab, users, state):
    data, _created = interventions.open_or_update(
        state, type="login_refresh", reason="http_403_with_session", domain="shop.example", url="https://shop.example/a",
        evidence={"retired_sessions": [{"name": "alice", "reason": "http_403_with_session", "uses": 3},
                                       {"name": "bob", "reason": "max_uses", "uses": 500}]})
    tab.login("reviewer@example.com")
    tab.page.goto(f"{tab.base_url}/interventions/{data['id']}")
    tab.page.wait_for_selector("#live-login:not([hidden])")
    retired = tab.page.locator("#live-login-retired li").all_text_contents()
    assert retired == ["Session alice retired: http_403_with_session", "Session bob retired: max_uses"]
    assert tab.page.input_value("#live-login-url") == "https://shop.example/a"
    tab.page.click("#live-login-open")  # no worker and no crawl runs: the reviewer is told
    error = tab.page.wait_for_selector("#live-login-error:not([hidden])")
    assert "hitl worker" in error.text_content()
    assert tab.errors == []
