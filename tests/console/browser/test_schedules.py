"""Schedules on the Jobs page in a real Chromium: a bad cron refused in words, a schedule
made from the start form, listed with its next time, removed after a confirmation (backing
out keeps it). Screenshots at 1280 and 390 px in tests/artifacts/."""

from __future__ import annotations

import pytest

from scrapy_hitl.state import schedules
from scrapy_hitl.state.models import Project

pytestmark = pytest.mark.browser


def test_schedule_a_crawl_from_the_jobs_page_and_remove_it(tab, users, state, tmp_path):
    with state.db.session() as s:
        s.add(Project(name="shop", path=str(tmp_path), spiders=["shop"]))
    page = tab.page
    tab.login("reviewer@example.com", then="/jobs")
    page.wait_for_selector('#start-spider option[value="shop"]', state="attached")
    page.wait_for_selector("#schedules-empty:not([hidden])")
    page.fill("#start-args", "section=vip")

    page.fill("#start-cron", "every night")
    assert page.text_content("#start-submit") == "Schedule"
    page.click("#start-submit")
    error = page.wait_for_selector("#start-error:not([hidden])")
    assert "is not a cron expression" in error.text_content() and "0 3 * * *" in error.text_content()
    assert schedules.list_(state.db) == []

    page.fill("#start-cron", "0 3 * * *")
    page.click("#start-submit")
    row = page.wait_for_selector("#schedules-body tr")
    assert "shop / shop" in row.text_content() and "section=vip" in row.text_content()
    assert "0 3 * * *" in row.text_content() and "none yet" in row.text_content()
    [made] = schedules.list_(state.db)
    assert (made["cron"], made["args"], made["created_by"]) == ("0 3 * * *", {"section": "vip"},
                                                                "user:reviewer@example.com")
    assert page.input_value("#start-cron") == "" and page.url.endswith("/jobs")  # no job started
    tab.screenshot("jobs-schedules")

    page.click(f'#schedules-body button[data-schedule-id="{made["id"]}"]')
    page.click("#confirm-no")  # backing out keeps it
    assert len(schedules.list_(state.db)) == 1
    page.click(f'#schedules-body button[data-schedule-id="{made["id"]}"]')
    assert "Jobs it already started run on" in page.text_content("#confirm-body")
    page.click("#confirm-yes")
    page.wait_for_selector("#schedules-empty:not([hidden])")
    assert schedules.list_(state.db) == []

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    tab.screenshot("jobs-schedules-390")
    assert tab.errors == []
