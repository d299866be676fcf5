"""A dropped live connection resumes from the last event id: what happened while the console
was down shows up after the reconnect, once, without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from scrapy_hitl.state import interventions

pytestmark = pytest.mark.browser


def test_the_dashboard_catches_up_after_the_console_restarts(tab, users, console_server, state):
    page = tab.page
    tab.login("reviewer@example.com")
    first, _ = interventions.open_or_update(state, type="manual_access", reason="http_403", domain="a.example")
    page.wait_for_selector(f'#inbox li[data-intervention-id="{first["id"]}"]')
    page.evaluate("window.__sameDocument = true")

    console_server.stop()
    page.wait_for_selector('#live-status[data-state="reconnecting"]')
    missed, _ = interventions.open_or_update(state, type="captcha_solve", reason="captcha", domain="b.example")
    console_server.start()

    page.wait_for_selector(f'#inbox li[data-intervention-id="{missed["id"]}"]')
    page.wait_for_selector(f'.toast:has-text("#{missed["id"]}")')
    page.wait_for_selector('#live-status[data-state="live"]')
    assert page.evaluate("window.__sameDocument") is True
    toasts = page.eval_on_selector_all(".toast", "nodes => nodes.map(n => n.textContent)")
    assert sum(f"#{missed['id']}:" in t for t in toasts) == 1  # replayed once, not twice
    # both rows, once the refresh the replayed event asked for has answered
    expect(page.locator("#inbox li")).to_have_count(2)
