"""The other pages in a real browser: sessions, domains (chart, admin edit), runs (timeline,
pause), and the interventions list (filters, load more, bulk resolve), updating live."""

from __future__ import annotations

import pytest

from scrapy_hitl.learning import DomainCounters
from scrapy_hitl.state import domains, interventions, pauses, runs

pytestmark = pytest.mark.browser


def test_sessions_are_replaced_and_deleted_and_never_show_a_value(tab, users):
    page = tab.page
    tab.login("reviewer@example.com", then="/sessions")
    page.wait_for_selector("#sessions-empty:not([hidden])")

    page.fill("#session-domain", "shop.example")
    page.fill("#session-text", "garbage here")
    page.click("#session-submit")
    assert "Fix:" in page.wait_for_selector("#session-error:not([hidden])").text_content()

    page.fill("#session-text", "Cookie: sid=s3cr3t-value; theme=dark")
    page.click("#session-submit")
    row = page.wait_for_selector('#sessions-body tr[data-domain="shop.example"]')
    names = row.query_selector('[data-field="cookie-names"]').text_content()
    assert sorted(names.split(", ")) == ["sid", "theme"]
    assert "s3cr3t" not in page.text_content("#main")

    page.click('button[data-delete="shop.example"]')
    # asks first, naming what goes: backing out keeps the session
    assert "shop.example" in page.wait_for_selector("#confirm-dialog[open] #confirm-title").text_content()
    page.click("#confirm-no")
    page.wait_for_selector("#confirm-dialog", state="detached")
    assert page.query_selector('#sessions-body tr[data-domain="shop.example"]') is not None
    page.click('button[data-delete="shop.example"]')
    page.click("#confirm-yes")
    page.wait_for_selector('#sessions-body tr[data-domain="shop.example"]', state="detached")
    page.wait_for_selector("#sessions-empty:not([hidden])")
    assert tab.dialogs == [] and tab.errors == []


def test_a_domain_page_charts_its_block_rate_and_admins_edit_it(tab, users, state):
    for blocked in (1, 6):
        domains.apply_counters(state.db, {"shop.example": DomainCounters(
            attempts=10, successes=10 - blocked, blocked_403=blocked,
            engines={"http": {"attempts": 10, "successes": 10 - blocked}})},
            min_attempts=1000, block_rate=0.5)
    page = tab.page
    tab.login("admin@example.com", then="/domains")
    page.click('#domains-body tr[data-domain="shop.example"] a')
    page.wait_for_selector("#block-rate-chart")
    assert len(page.query_selector_all("#block-rate-chart circle")) == 2
    assert page.text_content("#d-block-rate") == "35.0%"
    assert page.text_content('#engines-body tr[data-engine="http"] td:nth-child(3)') == "13"

    page.select_option("#edit-access-class", "human")
    page.select_option("#edit-requires-session", "required")
    page.click("#domain-save")
    page.wait_for_selector("#edit-result:not([hidden])")
    page.wait_for_selector('#d-access-class:text-is("human")')
    assert domains.get(state.db, "shop.example")["requires_session"] == "required"
    tab.screenshot("domain")
    assert tab.errors == []


def test_runs_update_live_and_the_spider_can_be_paused(tab, users, state):
    run = runs.create_run(state.db, "feedc0ffee00", "sandbox", {"sections": "vip"}, "/tmp")
    state.events.emit("run.started", {"pid": 1, "project_dir": "/tmp"}, run_id=run["id"], spider="sandbox")
    page = tab.page
    tab.login("reviewer@example.com", then="/runs")
    page.wait_for_selector(f'#runs-body tr[data-run-id="{run["id"]}"][data-run-status="running"]')
    # What the crawler does when all its work is parked: the row, then the event.
    runs.update_run(state.db, run["id"], status="waiting_for_human")
    state.events.emit("run.waiting", {"reason": "all_work_parked"}, run_id=run["id"], spider="sandbox")
    page.wait_for_selector(f'#runs-body tr[data-run-id="{run["id"]}"][data-run-status="waiting_for_human"]')

    page.click(f'#runs-body tr[data-run-id="{run["id"]}"] a')
    page.wait_for_selector('#events li[data-event-type="run.started"]')
    page.wait_for_selector('#run-status[data-run-status="waiting_for_human"]')
    page.click("#pause-spider")
    page.wait_for_selector("#spider-paused:not([hidden])")
    assert "sandbox" in pauses.paused_spiders(state.redis)
    page.wait_for_selector('#events li[data-event-type="run.waiting"]')
    page.click("#unpause-spider")
    page.wait_for_selector("#spider-paused", state="hidden")
    assert "sandbox" not in pauses.paused_spiders(state.redis)
    # The summary's numbers follow run.progress while the run goes; the event reads as words.
    state.events.emit("run.progress", {"status": "running", "requests": 1200, "responses": 1187, "items": 40,
                                       "parked": 2, "resumed": 0}, run_id=run["id"], spider="sandbox")
    page.wait_for_selector('#summary-facts dd[data-summary="Pages fetched"]:has-text("1,187")')
    page.wait_for_selector('#progress-svg[data-points="1"]')  # the chart of pages and items, live
    page.wait_for_selector('#events li[data-event-type="run.progress"] .what:text-is('
                           '"1,200 requests sent, 1,187 pages fetched, 40 items")')

    # The crawler announces the end before it writes the row: the page trusts the event.
    # ... with the run monitors' findings: in plain words, the code in small type.
    assert page.is_hidden("#monitors")
    findings = [{"monitor": "item_count_drop", "status": "alert", "values": {},
                 "message": "3 items, under 50% of the median of the last 5 completed runs (60)."},
                {"monitor": "error_rate", "status": "skipped", "values": {}, "message": "Only 3 requests; judged from 20."}]
    state.events.emit("run.completed", {"finish_reason": "finished", "closed": True,
                                        "stats": {"item_scraped_count": 3, "hitl/monitors": findings}},
                      run_id=run["id"], spider="sandbox")
    page.wait_for_selector('#run-status[data-run-status="completed"]')
    page.wait_for_selector('#stats-body tr[data-stat="item_scraped_count"]', state="attached")  # folded: raw
    page.wait_for_selector('#summary-facts dd[data-summary="Items"]:has-text("3")')
    alert = page.wait_for_selector('#monitor-list li[data-monitor="item_count_drop"][data-status="alert"]')
    assert "Item count close to the usual" in alert.inner_text() and "under 50% of the median" in alert.inner_text()
    assert alert.query_selector("small code").inner_text() == "item_count_drop"
    page.wait_for_selector('#monitor-list li[data-monitor="error_rate"][data-status="skipped"]')
    page.wait_for_selector("#anomaly-link:not([hidden])")
    assert page.query_selector('#stats-body tr[data-stat="hitl/monitors"]') is None
    page.wait_for_selector('#events li[data-event-type="run.completed"]')
    ids = page.eval_on_selector_all("#events li", "items => items.map(i => i.dataset.eventType)")
    assert ids == ["run.started", "run.waiting", "run.progress", "run.completed"]
    assert page.is_hidden("#pause-spider")  # nothing to pause in a finished run
    tab.screenshot("run")
    assert tab.errors == []


def test_the_interventions_list_filters_pages_and_marks_a_domain_done(tab, users, state):
    opened = [interventions.open_or_update(state, type="manual_access", reason="http_403",
                                           domain=f"d{n}.example")[0]["id"] for n in range(30)]
    page = tab.page
    tab.login("reviewer@example.com", then="/interventions")
    page.wait_for_selector("#list-body tr")
    assert len(page.query_selector_all("#list-body tr")) == 25
    page.click("#load-more")
    page.wait_for_selector(f'#list-body tr[data-intervention-id="{opened[0]}"]')
    assert len(page.query_selector_all("#list-body tr")) == 30
    page.wait_for_selector("#load-more", state="hidden")

    page.fill("#filter-domain", "d3.example")
    page.click('#filters button[type="submit"]')
    page.wait_for_selector(f'#list-body tr[data-intervention-id="{opened[0]}"]', state="detached")
    assert len(page.query_selector_all("#list-body tr")) == 1
    assert page.url.endswith("/interventions?domain=d3.example")

    page.fill("#bulk-domain", "d3.example")
    page.fill("#bulk-note", "checked by hand")
    page.click("#bulk-submit")
    assert "d3.example" in page.wait_for_selector("#confirm-dialog[open] #confirm-title").text_content()
    page.click("#confirm-yes")
    assert "Resolved 1" in page.wait_for_selector("#bulk-result:not([hidden])").text_content()
    page.wait_for_selector(f'#list-body tr[data-intervention-id="{opened[3]}"][data-status="resolved"]')

    # A new one for the filtered domain appears without a reload.
    new_id = interventions.open_or_update(state, type="captcha_solve", reason="captcha",
                                          domain="d3.example")[0]["id"]
    page.wait_for_selector(f'#list-body tr[data-intervention-id="{new_id}"][data-status="open"]')
    assert tab.errors == []


def test_a_run_anomaly_says_what_alerted_and_is_marked_looked_at(tab, users, state):
    run = runs.create_run(state.db, "a70ma1y00000", "sandbox", {}, "/tmp")
    alert = {"monitor": "item_count_drop", "status": "alert", "values": {"items": 2, "median": 6},
             "message": "2 items, under 50% of the median of the last 5 completed runs (6)."}
    anomaly, _ = interventions.open_or_update(state, type="run_anomaly", reason="item_count_drop",
                                              domain="flood.example", spider="sandbox", run_id=run["id"],
                                              evidence={"run_id": run["id"], "alerts": [alert]})
    page = tab.page
    tab.login("reviewer@example.com", then=f"/interventions/{anomaly['id']}")
    shown = page.wait_for_selector('#anomaly-alerts li[data-monitor="item_count_drop"]')
    assert "under 50% of the median" in shown.inner_text()
    assert shown.query_selector("small code").inner_text() == "item_count_drop"
    assert page.get_attribute("#anomaly-run", "href") == f"/runs/{run['id']}"
    assert page.is_hidden("#resolve-cookies-form")  # nothing to log in to
    page.fill("#done-note", "a short day on the site")
    page.click("#resolve-done")
    page.wait_for_selector('#intervention[data-status="resolved"]')
    assert page.is_hidden("#outcome")  # nothing resumes
    assert interventions.get(state, anomaly["id"])["note"] == "a short day on the site"
    assert tab.errors == []
