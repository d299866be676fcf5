"""A resolve whose crawl had exited, in the browser: the intervention page says what happens
next, a queued job or the command that resumes a hand-started crawl (docs/jobs.md)."""

from __future__ import annotations

import pytest

from scrapy_hitl.state import interventions, runs
from scrapy_hitl.state.parking import ParkEntry

pytestmark = pytest.mark.browser

DOMAIN = "vip.example.com"


def test_a_resolve_shows_the_command_that_resumes_a_hand_started_crawl(tab, users, state, tmp_path):
    project_dir = tmp_path / "shop project"
    run_id = runs.new_run_id()
    runs.create_run(state.db, run_id, "shop", {"section": "vip"}, str(project_dir))
    runs.update_run(state.db, run_id, status="waiting_for_human", finish_reason="hitl_paused")  # it exited
    data, _ = interventions.open_or_update(state, type="manual_access", domain=DOMAIN, reason="http_403",
                                           spider="shop", run_id=run_id)
    state.parking.park("shop", [ParkEntry.build(domain=DOMAIN, fingerprint="f1", request={"url": f"https://{DOMAIN}/1"},
                                                reason="http_403", run_id=run_id)])

    page = tab.page
    tab.login("reviewer@example.com", then=f"/interventions/{data['id']}")
    page.wait_for_selector('#i-status[data-status="open"]')
    page.click("#resolve-done")
    page.wait_for_selector('#i-status[data-status="resolved"]')
    box = page.wait_for_selector("#outcome-reruns:not([hidden])")
    assert "its project is not registered" in box.text_content()
    assert page.text_content("#outcome-reruns pre") == f"cd '{project_dir}' && scrapy crawl shop -a section=vip"
    assert page.get_attribute(f'#outcome-reruns a[href="/runs/{run_id}"]', "href")
    tab.screenshot("intervention-rerun-command")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    tab.screenshot("intervention-rerun-command-390")
    assert tab.errors == []
