"""The evidence a browser tier kept, on the intervention page in a real Chromium: the
screenshot shows (and opens full size), the frame shows the rendered page, and the
rendered page's scripts never run, not in the frame and not opened directly."""

from __future__ import annotations

import pytest

from scrapy_hitl.state import artifacts, interventions
from tests.console.test_artifacts import png

pytestmark = pytest.mark.browser

RENDERED = b'<!doctype html><meta charset="utf-8"><h1 id="rendered">Rendered by the browser</h1>'
HOSTILE = (b'<!doctype html><h1>Rendered by the browser</h1>'
           b'<script>window.top.__pwned=1;document.cookie="pwned=1; path=/";'
           b'window.top.document.title="pwned";alert("s")</script>'
           b'<img src=x onerror="window.top.__pwned=2;document.cookie=\'pwned=2; path=/\'">')


def captured(state, html: bytes) -> int:
    found, _ = interventions.open_or_update(
        state, type="manual_access", reason="http_403", domain="shop.test", url="https://shop.test/p/1",
        response_status=403, evidence={"status": 403, "body_excerpt": "<h1>Excerpt</h1>", "tier": "browser"},
    )
    artifacts.attach(state.db, found["id"], {"screenshot": ("image/png", png(320, 200)),
                                             "html": ("text/html; charset=utf-8", html)})
    return found["id"]


def test_the_screenshot_and_the_rendered_page_are_shown(tab, users, state):
    intervention_id = captured(state, RENDERED)
    page = tab.page
    tab.login("reviewer@example.com", then=f"/interventions/{intervention_id}")

    image = page.wait_for_selector("#screenshot-img")
    assert image.get_attribute("alt")
    page.wait_for_function("() => { const img = document.getElementById('screenshot-img');"
                           " return img.complete && img.naturalWidth > 0; }")
    assert page.evaluate("document.getElementById('screenshot-img').naturalWidth") == 320
    assert page.text_content("#i-tier") == "browser"
    kinds = page.eval_on_selector_all("#artifact-links a", "links => links.map(a => a.dataset.artifact)")
    assert kinds == ["screenshot", "html"]
    assert page.get_attribute('#artifact-links a[data-artifact="html"]', "href") == (
        f"/api/v1/interventions/{intervention_id}/artifacts/html")

    frame = page.wait_for_selector("#evidence-frame").content_frame()
    frame.wait_for_selector("#rendered")
    assert frame.text_content("#rendered") == "Rendered by the browser"  # the artifact, not the excerpt

    with page.context.expect_page() as opened:  # a click opens it full size in a new tab
        page.click("#screenshot-img")
    full = opened.value
    full.wait_for_load_state()
    assert full.url == f"{tab.base_url}/interventions/{intervention_id}/screenshot"
    tab.screenshot("intervention-evidence")
    assert tab.errors == [] and tab.dialogs == []


def test_the_rendered_pages_scripts_never_run(tab, users, state):
    intervention_id = captured(state, HOSTILE)
    page = tab.page
    tab.login("reviewer@example.com", then=f"/interventions/{intervention_id}")
    frame_element = page.wait_for_selector("#evidence-frame")
    assert frame_element.get_attribute("sandbox") == ""
    frame = frame_element.content_frame()
    frame.wait_for_load_state("load")
    frame.wait_for_selector("h1")  # it did render, inside the sandbox
    page.wait_for_selector("#screenshot-img")

    assert page.evaluate("window.__pwned") is None
    assert page.title() != "pwned"
    assert not any(c["name"] == "pwned" for c in page.context.cookies())

    # Opened directly, the document is sandboxed by its own CSP.
    response = page.goto(f"{tab.base_url}/interventions/{intervention_id}/evidence")
    assert response.headers["content-security-policy"].startswith("sandbox;")
    page.wait_for_selector("h1")
    assert page.evaluate("window.__pwned") is None and page.title() != "pwned"
    assert not any(c["name"] == "pwned" for c in page.context.cookies())
    assert tab.dialogs == []


def test_a_runs_failures_list_and_show_their_pages_sandboxed(tab, users, state):
    """The run page lists the error snapshots; "Show the page" frames the kept HTML in the
    sandbox, where its scripts never run; the screenshot opens as an image. On a phone too."""
    from scrapy_hitl.state import runs, snapshots

    runs.create_run(state.db, "r-snap", "shop", {}, "/tmp")
    snapshot_id = snapshots.store(
        state.db, run_id="r-snap", spider="shop", domain="shop.test", source="escalate",
        code="automation_detected", tier="browser", status=200,
        url="https://shop.test/a/very/long/path/" + "segment/" * 20, html=("text/html", HOSTILE),
        screenshot=png(320, 200))
    page = tab.page
    page.set_viewport_size({"width": 390, "height": 844})
    tab.login("reviewer@example.com", then="/runs/r-snap")

    row = page.wait_for_selector(f'#snapshot-list li[data-snapshot-id="{snapshot_id}"]')
    assert "stronger tier" in row.text_content() and "automation_detected" in row.text_content()
    assert row.query_selector("a[href$='/screenshot']").get_attribute("href") == (
        f"/runs/r-snap/snapshots/{snapshot_id}/screenshot")
    row.query_selector("button[data-show]").click()
    frame_element = page.wait_for_selector("#snapshot-frame:not([hidden])")
    assert frame_element.get_attribute("sandbox") == ""
    frame = frame_element.content_frame()
    frame.wait_for_selector("h1")  # it rendered, inside the sandbox
    assert page.evaluate("window.__pwned") is None and page.title() != "pwned"
    assert not any(c["name"] == "pwned" for c in page.context.cookies())
    fits = "() => { const p = document.getElementById('snapshots'); return [p.scrollWidth, p.clientWidth]; }"
    scroll_width, width = page.evaluate(fits)
    assert scroll_width <= width <= 390  # the failures panel fits a phone, long URLs and all
    tab.screenshot("run-snapshots-390")
    assert tab.errors == [] and tab.dialogs == []
