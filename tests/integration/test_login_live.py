"""Log in through the console: a worker's login page on the sandbox's account section, driven
through the live-view relay, saved, and the parked requests resuming with it.

The account section keeps its login in localStorage (no cookie at all), so the crawl gets its
quotes only on the browser tier, in a context started from the saved storage state. The
reviewer's side is the relay the console's websocket and Continue endpoint use: input
messages in, the page's URL and Continue ("Save session") out.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from scrapy.settings import Settings

from hitl_console import login_pages
from scrapy_hitl.live import relay
from scrapy_hitl.state import interventions
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.browser

DOMAIN = "account.sandbox.test"
PAGES = 6


@pytest.fixture
def pages(state):
    settings = Settings({"PLAYWRIGHT_LAUNCH_OPTIONS": {"args": ["--host-resolver-rules=MAP *.sandbox.test 127.0.0.1"]}})
    worker = login_pages.LoginPages(state, settings)
    worker.start()
    wait_for(lambda: login_pages.worker_alive(state), what="the login pages to start")
    yield worker
    worker.stop()
    worker.join(30)


def port(site) -> int:
    return urlsplit(site.url).port


def type_text(state, iid: int, text: str) -> None:
    relay.send_input(state.redis, iid, {"op": "text", "text": text})


def press(state, iid: int, key: str) -> None:
    for kind in ("down", "up"):
        relay.send_input(state.redis, iid, {"op": "key", "type": kind, "key": key, "code": key})


def open_login(state, iid: int, url: str, name: str = "alice") -> None:
    host = login_pages.request_login(state, intervention_id=iid, domain=DOMAIN, url=url, name=name, tier="browser",
                                     actor="console:ann@example.com")
    assert host == "worker"
    wait_for(lambda: relay.is_live(state.redis, iid), timeout=60, what="the login page to go live")
    wait_for(lambda: relay.latest(state.redis, iid)[1], timeout=60, what="a first frame")


def test_log_in_through_the_relay_save_and_the_parked_requests_resume_on_the_browser_tier(
        crawl, cli, state, pages, fresh_sandbox):
    code, out = cli("domains", "set", DOMAIN, "--requires-session", "required")
    assert code == 0, out
    # A crawl without the live view hosts no login page: the worker opens it.
    run = crawl(args={"sections": "account", "details": "0"},
                settings={"HITL_PAUSE_TIMEOUT": 300, "HITL_LIVE_ENABLED": False})
    (i,) = wait_for(lambda: cli.json("interventions", "list"), what="an intervention")
    assert (i["type"], i["reason"]) == ("manual_access", "session_required")
    run.wait_for_log("Waiting for a human")
    iid = i["id"]

    login_url = f"http://{DOMAIN}:{port(fresh_sandbox)}/account/login?next=/account/page/1"
    open_login(state, iid, login_url)
    assert relay.info(state.redis, iid)["kind"] == "login"
    # Too early: nothing to save yet, and the page stays.
    early = relay.request_continue(state.redis, iid, actor="console:ann@example.com", timeout=30)
    assert (early["ok"], early["error"]) == (False, "nothing_to_save")
    assert relay.is_live(state.redis, iid)

    press(state, iid, "Tab")  # the username field
    type_text(state, iid, "demo")
    press(state, iid, "Tab")
    type_text(state, iid, "demo")
    press(state, iid, "Enter")  # the page's script stores the token in localStorage, then moves on
    wait_for(lambda: urlsplit(relay.info(state.redis, iid)["url"]).path == "/account/page/1", timeout=60,
             what="the page to reach the account after logging in")

    answer = relay.request_continue(state.redis, iid, actor="console:ann@example.com", timeout=30)
    assert answer["ok"], answer
    assert answer["name"] == "alice" and answer["origins"] == [f"http://{DOMAIN}:{port(fresh_sandbox)}"]
    assert answer["requests_to_resume"] == 1
    wait_for(lambda: relay.info(state.redis, iid)["state"] == "closed", what="the page to close")

    (session,) = state.vault.pool(DOMAIN)
    assert session.name == "alice" and session.cookies == ()
    (origin,) = session.origins
    assert [item["name"] for item in origin["localStorage"]] == ["account_token"]
    assert session.user_agent and "Chrom" in session.user_agent
    assert interventions.get(state, iid)["status"] == "resolved"

    result = run.wait()
    assert result.stats["finish_reason"] == "finished", result.log[-3000:]
    assert len(result.items_in("account")) == PAGES * 10
    assert result.stats["hitl/tier/browser/responses"] >= PAGES  # the shell holds no quote for the static tier
    assert result.stats.get(f"hitl/sessions/{DOMAIN}/used", 0) >= PAGES
    # The data API saw only the saved token: no cookie was ever needed.
    assert all(r["cookies"] == {} for r in fresh_sandbox.requests("/account/data/1"))
    assert cli.json("domains", "list")  # and the domain's page says why it needs a session
    health = cli.json("sessions", "list", DOMAIN)
    assert [s["name"] for s in health] == ["alice"]


def test_a_login_page_that_closes_tells_the_reviewer_and_saves_nothing(state, pages, fresh_sandbox):
    data, _created = interventions.open_or_update(state, type="login_refresh", reason="login_requested",
                                                  domain=DOMAIN, priority=interventions.ADVISORY_PRIORITY)
    iid = data["id"]
    open_login(state, iid, f"http://{DOMAIN}:{port(fresh_sandbox)}/account/login")
    page = pages.pages[iid].page
    asyncio.run_coroutine_threadsafe(page.close(), pages.loop).result(30)  # as when its browser dies

    wait_for(lambda: relay.info(state.redis, iid)["state"] == "closed", what="the live view to close")
    info = relay.info(state.redis, iid)
    assert info["reason"] == "crashed"
    _last, shown = relay.latest(state.redis, iid)
    messages = [m.get("msg", "") for m in shown if m.get("kind") == "status"]
    assert any("nothing was saved" in m for m in messages), messages
    assert state.vault.pool(DOMAIN) == []
    assert interventions.get(state, iid)["status"] == "open"


def test_while_the_crawl_runs_its_own_browser_opens_the_login_page(crawl, cli, state, fresh_sandbox):
    """No worker: the crawl that opened the intervention hosts the page (its browser, its IP)."""
    code, out = cli("domains", "set", DOMAIN, "--requires-session", "required")
    assert code == 0, out
    run = crawl(args={"sections": "account", "details": "0"}, settings={"HITL_PAUSE_TIMEOUT": 300})
    (i,) = wait_for(lambda: cli.json("interventions", "list"), what="an intervention")
    run.wait_for_log("Waiting for a human")
    iid, run_id = i["id"], i["run_id"]
    wait_for(lambda: login_pages.crawler_host(state, iid) == run_id, what="the crawl to host login pages")
    assert not login_pages.worker_alive(state)

    url = f"http://{DOMAIN}:{port(fresh_sandbox)}/account/login?next=/account/page/1"
    assert login_pages.request_login(state, intervention_id=iid, domain=DOMAIN, url=url, name="bob",
                                     tier="browser", actor="console:ann@example.com") == f"run:{run_id}"
    wait_for(lambda: relay.is_live(state.redis, iid), timeout=60, what="the login page to go live")
    assert relay.info(state.redis, iid)["run_id"] == run_id  # held by the crawl itself
    wait_for(lambda: relay.latest(state.redis, iid)[1], timeout=60, what="a first frame")
    press(state, iid, "Tab")
    type_text(state, iid, "demo")
    press(state, iid, "Tab")
    type_text(state, iid, "demo")
    press(state, iid, "Enter")
    wait_for(lambda: urlsplit(relay.info(state.redis, iid)["url"]).path == "/account/page/1", timeout=60,
             what="the page to reach the account after logging in")
    answer = relay.request_continue(state.redis, iid, actor="console:ann@example.com", timeout=30)
    assert answer["ok"] and answer["name"] == "bob", answer

    result = run.wait()
    assert result.stats["finish_reason"] == "finished", result.log[-3000:]
    assert len(result.items_in("account")) == PAGES * 10
    assert result.stats["hitl/live/login_pages"] == 1
    (session,) = state.vault.pool(DOMAIN)
    assert session.name == "bob" and [item["name"] for o in session.origins for item in o["localStorage"]] == [
        "account_token"]


def test_a_jobs_rerun_hosts_the_login_pages_of_the_interventions_its_first_attempt_opened(crawl, state,
                                                                                        fresh_sandbox):
    """`hitl worker` runs a job again under the same run id: the console routes the login pages
    of the interventions its first attempt opened to it, so it hosts them from its start, though
    it opens no intervention itself (the domain is paused already: its requests just park)."""
    import os
    import uuid

    from scrapy_hitl.state import pauses, runs

    run_id = uuid.uuid4().hex
    runs.create_run(state.db, run_id, "sandbox", {}, os.getcwd())  # the first attempt
    data, _created = interventions.open_or_update(state, type="manual_access", reason="session_required",
                                                  domain=DOMAIN, spider="sandbox", run_id=run_id)
    pauses.set_domain(state.redis, DOMAIN, [data["id"]])
    run = crawl(args={"sections": "account", "details": "0"},
                settings={"HITL_PAUSE_TIMEOUT": 300, "HITL_RUN_ID": run_id})
    try:
        wait_for(lambda: login_pages.crawler_host(state, data["id"]) == run_id, timeout=60,
                 what="the re-run to host the login pages of its run's interventions")
    finally:
        run.kill9()
