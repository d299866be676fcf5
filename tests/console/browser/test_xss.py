"""Scraped HTML never runs in the console: checked in a real Chromium.

The evidence page carries ``<script>`` and ``onerror=`` payloads aimed at the console
(``window.parent``); headers and fields carry markup. None of it may execute or parse.
"""

from __future__ import annotations

import pytest

from scrapy_hitl.state import interventions

pytestmark = pytest.mark.browser

BODY = ('<h1>Access denied</h1><script>window.parent.__pwned=1;document.title="pwned";alert("s")</script>'
        '<img src=x onerror="window.parent.__pwned=2;alert(2)">')
HEADER = "<img src=x onerror=alert(1)>"
REASON = "forbidden <b id=bold>now</b>"


@pytest.fixture
def hostile(state):
    found, _ = interventions.open_or_update(
        state, type="manual_access", reason=REASON, domain="evil.test",
        url="javascript:alert(4)", response_status=403,
        response_headers={"x-evil": HEADER},
        evidence={"body_excerpt": BODY, "screenshot": '"><img src=x onerror=alert(3)>'},
    )
    return found["id"]


def test_scraped_html_never_executes_in_the_console(tab, users, hostile):
    page = tab.page
    tab.login("reviewer@example.com", then=f"/interventions/{hostile}")
    header = page.wait_for_selector('#headers-body tr[data-header="x-evil"] td:nth-child(2)')
    assert header.text_content() == HEADER  # shown as text
    assert page.text_content("#i-reason") == REASON and page.query_selector("#bold") is None
    # A javascript: URL is shown, never linked; a screenshot that is not a PNG is not shown.
    assert page.text_content("#i-url") == "javascript:alert(4)"
    assert page.query_selector("#i-url a") is None
    assert page.is_hidden("#screenshot") and page.query_selector("#screenshot img") is None

    frame_element = page.wait_for_selector("#evidence-frame")
    assert frame_element.get_attribute("sandbox") == ""  # no allow-scripts, no allow-same-origin
    frame = frame_element.content_frame()
    frame.wait_for_load_state("load")
    frame.wait_for_selector("h1")  # the scraped page did render, inside the sandbox
    assert frame.text_content("h1") == "Access denied"

    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned"
    assert tab.dialogs == []
    assert tab.errors == []


def test_the_evidence_url_opened_directly_runs_nothing_either(tab, users, hostile):
    tab.login("reviewer@example.com", then=f"/interventions/{hostile}")
    response = tab.page.goto(f"{tab.base_url}/interventions/{hostile}/evidence")
    assert response.headers["content-security-policy"].startswith("sandbox;")
    tab.page.wait_for_selector("h1")
    assert tab.page.title() != "pwned"
    assert tab.dialogs == []
