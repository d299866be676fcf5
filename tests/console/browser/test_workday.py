"""A reviewer's working day in a real Chromium: the inbox (order, words, keyboard), a cancel
that asks first, every page at phone (390 px) and tablet (768 px) width, and the dashboard's
counters moving while a real crawl runs. Screenshots go to tests/artifacts/ (``*-390.png``,
``*-768.png``)."""

from __future__ import annotations

import pytest

from scrapy_hitl.state import consultations, interventions, items, ownership, runs
from scrapy_hitl.state.parking import ParkEntry
from tests.console.browser.conftest import ARTIFACTS, Tab
from tests.support.crawl import Crawl

pytestmark = pytest.mark.browser

LONG_MS = 120_000  # hang guard for a crawl's own steps


def park(state, domain: str, n: int) -> None:
    state.parking.park("shop", [ParkEntry.build(domain=domain, fingerprint=f"{domain}-{i}".encode().hex(),
                                                request={"url": f"http://{domain}/{i}"}, reason="domain_paused")
                                for i in range(n)])


@pytest.fixture
def world(state):
    """One of each thing an inbox holds, plus a run, for the pages to show."""
    run = runs.create_run(state.db, "run-workday-1", "shop", {"section": "all"}, "/tmp")
    found, _ = interventions.open_or_update(state, type="manual_access", reason="http_403",
                                            domain="shop.example.com", spider="shop", run_id=run["id"],
                                            url="http://shop.example.com/cart", response_status=403)
    park(state, "shop.example.com", 3)
    items.record(state.db, [{"run_id": run["id"], "spider": "shop", "item_type": "Product",
                             "url": f"http://shop.example.com/p/{i}", "status": "pending_review", "score": 0.3,
                             "data": {"name": f"Product {i}"}} for i in range(2)])
    asked = consultations.create(state, title="Is 0.00 a real price?", priority=80, actor="agent:1",
                                 options=["yes", "no"])
    return {"run": run["id"], "intervention": found["id"], "consultation": asked["id"],
            "item": items.list_items(state.db, run_id=run["id"])[0]["id"]}


def test_the_inbox_puts_the_urgent_first_in_words_and_opens_with_the_keyboard(tab, users, world, state):
    ownership.take(state, "consultation", world["consultation"], owner="console:admin@example.com")
    page = tab.page
    tab.login("reviewer@example.com")
    page.wait_for_selector("#inbox li")
    kinds = page.eval_on_selector_all("#inbox li", "rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["consultation", "intervention", "review"]  # priority 80 first, then oldest first
    row = page.query_selector(f'#inbox li[data-intervention-id="{world["intervention"]}"]')
    title = row.query_selector(".title").inner_text()
    assert title == "403 Forbidden on shop.example.com — 3 requests waiting — needs a logged-in session"
    assert row.query_selector(".kind").inner_text().lower() == "needs access"
    # the codes are there, in small type only
    assert [c.inner_text() for c in row.query_selector_all("small.code code")] == ["manual_access", "http_403"]
    assert "manual_access" not in title and "http_403" not in title
    assert "2 items from shop held for review" in page.inner_text('#inbox li[data-kind="review"] .title')
    assert page.inner_text('#inbox li[data-kind="consultation"] .what').lower().endswith("urgent")
    assert page.inner_text('#inbox li[data-kind="consultation"] [data-field="owner"]') == "admin@example.com is on it"
    assert row.query_selector('[data-field="owner"]') is None  # nobody took it yet
    tab.screenshot("inbox")

    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.get_attribute("#inbox li.selected", "data-kind") == "intervention"
    page.keyboard.press("k")
    assert page.get_attribute("#inbox li.selected", "data-kind") == "consultation"
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{tab.base_url}/interventions/{world['intervention']}")
    # the page says what to do next
    howto = page.wait_for_selector('#howto[data-howto="manual_access"]')
    assert "Export the cookies" in howto.inner_text()
    page.wait_for_selector('#i-type small.code code:text-is("manual_access")')
    assert page.inner_text("#i-type").startswith("Needs access")
    assert tab.errors == []


def test_cancel_asks_first_and_backing_out_keeps_the_intervention_open(tab, users, world, state):
    page = tab.page
    iid = world["intervention"]
    tab.login("reviewer@example.com", then=f"/interventions/{iid}")
    page.wait_for_selector('#i-status[data-status="open"]')
    page.click("#cancel")
    dialog = page.wait_for_selector("#confirm-dialog[open]")
    assert page.inner_text("#confirm-title") == "Fail 3 parked requests of shop.example.com?"
    assert page.is_disabled("#confirm-yes")  # no reason yet
    tab.screenshot("intervention-cancel-confirm")
    page.click("#confirm-no")
    dialog.wait_for_element_state("hidden")
    assert interventions.get(state, iid)["status"] == "open"
    assert state.parking.domain_count("shop.example.com") == 3
    assert page.get_attribute("#i-status", "data-status") == "open"

    page.keyboard.press("Escape")  # nothing open: nothing happens
    page.click("#cancel")
    page.wait_for_selector("#confirm-dialog[open]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#confirm-dialog", state="detached")
    assert interventions.get(state, iid)["status"] == "open"

    page.click("#cancel")
    page.fill("#confirm-reason", "the shop closed its catalogue")
    page.click("#confirm-yes")
    page.wait_for_selector('#i-status[data-status="cancelled"]')
    found = interventions.get(state, iid)
    assert found["note"] == "the shop closed its catalogue"
    assert state.parking.domain_count("shop.example.com") == 0
    assert tab.dialogs == [] and tab.errors == []


NAMES = {"/": "inbox", "/items": "review"}  # screenshot names of the nav targets, else the path's


@pytest.mark.parametrize("width", [390, 768])
def test_every_page_works_on_a_phone_and_a_tablet(browser, console_server, users, world, width):
    context = browser.new_context(viewport={"width": width, "height": 844}, is_mobile=width < 500,
                                  has_touch=width < 500)
    try:
        tab = Tab(context.new_page(), console_server.url)
        page = tab.page
        tab.login("admin@example.com")
        page.wait_for_selector("#inbox li")

        def shoot(name: str) -> None:
            # nothing wider than the screen: wide tables scroll inside their card
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} is {overflow} px wider than a {width} px screen"
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)

        assert page.is_hidden("#nav") and page.is_visible("#nav-toggle")
        page.click("#nav-toggle")
        shoot("menu-open")
        targets = page.eval_on_selector_all("#nav a", "links => links.map(a => [a.textContent, a.pathname])")
        assert len(targets) >= 8, targets  # whatever the navigation holds today, each is clicked
        for label, path in targets:
            name = NAMES.get(path, path.strip("/").replace("/", "-"))
            if not page.is_visible("#nav"):
                page.click("#nav-toggle")
            page.click(f'#nav a:text-is("{label}")')
            page.wait_for_url(f"{console_server.url}{path}")
            page.wait_for_load_state("networkidle")
            assert page.is_hidden("#nav")  # a new page starts with the menu closed
            shoot(name)
        for name, path in (("intervention", f"/interventions/{world['intervention']}"),
                           ("run", f"/runs/{world['run']}"), ("item", f"/items/{world['item']}"),
                           ("consultation", f"/consultations/{world['consultation']}"),
                           ("domain", "/domains/shop.example.com"), ("not-found", "/no/such/page")):
            page.goto(f"{console_server.url}{path}")
            page.wait_for_load_state("networkidle")
            shoot(name)
        # A domain nothing was counted for yet says so in words, not as an error.
        page.goto(f"{console_server.url}/domains/shop.example.com")
        page.wait_for_selector("#d-empty:not([hidden])")
        assert page.is_hidden("#d-error")
        # The intervention's resolve actions are reachable on a phone.
        page.goto(f"{console_server.url}/interventions/{world['intervention']}")
        page.wait_for_selector("#actions:not([hidden])")
        page.click("#resolve-done")  # scrolls to it and acts: nothing is covered
        page.wait_for_selector('#i-status[data-status="resolved"]')
        assert tab.errors == []
    finally:
        context.close()


def test_the_dashboard_counters_move_while_a_crawl_runs(tab, users, hitl_env, tmp_path, state):
    from sandbox.control import SandboxServer

    page = tab.page
    tab.login("reviewer@example.com")
    page.wait_for_selector("#runs-empty:not([hidden])")
    fetches: list[str] = []  # the live numbers come from the events: no request per update
    page.on("request", lambda r: fetches.append(r.url) if "/api/v1/runs" in r.url else None)
    # A slow site (0.3 s a page, one request at a time): the crawl lasts several progress reports.
    with SandboxServer(pages=3, latency_ms=300) as site:
        crawl = Crawl(tmp_path, hitl_env, spider="sandbox", args={"base": site.url, "sections": "quotes"},
                      settings={"HITL_PROGRESS_INTERVAL": 0.2, "CONCURRENT_REQUESTS": 1})
        try:
            cell = '#runs-body tr[data-spider="sandbox"][data-run-status="running"] td[data-field="responses"]'
            first = page.wait_for_function(
                f"() => {{ const c = document.querySelector('{cell}'); return c && /^[1-9]/.test(c.textContent) "
                "&& c.textContent; }", timeout=LONG_MS).json_value()
            page.wait_for_function(
                f"(seen) => {{ const c = document.querySelector('{cell}'); "
                "return c && /^[0-9]/.test(c.textContent) && c.textContent !== seen; }", arg=first, timeout=LONG_MS)
            result = crawl.wait(timeout=120)
        finally:
            if crawl.proc.poll() is None:
                crawl.proc.kill()
    assert result.returncode == 0, result.log[-2000:]
    row = f'#runs-body tr[data-run-id="{result.stats["hitl/run_id"]}"]'
    page.wait_for_selector(f'{row}[data-run-status="completed"]')
    assert page.inner_text(f'{row} td[data-field="items"]') == str(len(result.items))
    assert len(fetches) == 1, fetches  # once, to show the new run; every update after came with its event
    # and a page opened mid-run starts from the counts the crawler saved with its last report
    saved = runs.progress_of(state.redis, [result.stats["hitl/run_id"]])[result.stats["hitl/run_id"]]
    assert saved["responses"] >= 1 and set(saved) == {"requests", "responses", "items", "parked", "resumed"}
    assert tab.errors == []
