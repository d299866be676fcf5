"""The selector fixer's frame runs the console's picker and nothing of the scraped page:
checked in a real Chromium with a parked page full of payloads aimed at the console.

The frame must allow scripts (the picker), so this is the one place where a scraped script
could run if the page's own CSP or the server's clean-up failed. Each payload reports to the
console the way the picker does (``parent.postMessage``), or alerts: none may arrive. The
picker's own message must arrive, so the frame did run scripts."""

from __future__ import annotations

import pytest

from scrapy_hitl.fields import Declaration, FieldSpec
from scrapy_hitl.state import interventions, selectors

pytestmark = pytest.mark.browser

D = "evil.test"
REPORT = "parent.postMessage({type:'xss',via:'%s'},'*')"
PAGE = ("<html><head><base href='http://attacker.test/'>"
        f"<script>{REPORT % 'head script'};alert(1)</script></head><body onload=\"{REPORT % 'onload'}\">"
        f"<div class='row'><span class='name'>Lamp</span><img src=x onerror=\"{REPORT % 'onerror'}\">"
        f"<svg><script>{REPORT % 'svg script'}</script></svg>"
        f"<a id=js href=\"javascript:{REPORT % 'javascript url'}\">go</a>"
        f"<iframe srcdoc=\"<script>{REPORT % 'srcdoc'}</script>\"></iframe>"
        f"<object data=\"javascript:{REPORT % 'object'}\"></object>"
        f"<script nonce=guess>{REPORT % 'guessed nonce'}</script></div>"
        "<div class='row'><span class='name'>Desk</span></div></body></html>")


@pytest.fixture
def hostile(state):
    decl = Declaration({"name": FieldSpec.parse("name", "span.title::text")}, "div.item")
    selectors.publish_declaration(state.db, "shop", {"": decl.to_dict()})
    selectors.save_page(state.db, "shop", D, "/p/{n}", "missed", f"http://{D}/p/2", PAGE.encode())
    found, _ = interventions.open_or_update(state, type="selector_fix", reason="selector_missing", domain=D,
                                            spider="shop", url=f"http://{D}/p/2",
                                            evidence={"pattern": "/p/{n}", "pages": [f"http://{D}/p/2"]})
    return found["id"]


def test_scraped_scripts_never_run_in_the_fixers_frame(tab, users, hostile):
    page = tab.page
    tab.login("reviewer@example.com", then=f"/interventions/{hostile}/fixer")
    page.evaluate("window.__got = []; addEventListener('message', (e) => window.__got.push(e.data))")
    page.wait_for_selector('#fixer[data-ready="true"]')
    frame = page.frame_locator("#fx-frame")
    frame.locator("span.name").first.wait_for()  # the page rendered, inside the frame
    assert frame.locator("script").count() == 1  # only the picker, the site's removed
    page.click('.fx-field[data-key="_rows"] .fx-pick')
    frame.locator("#js").click()  # a javascript: link: the picker takes the click, the link never runs
    page.wait_for_selector('.fx-field[data-key="_rows"] .fx-picked')
    assert page.input_value('.fx-field[data-key="_rows"] .fx-input') == "div.row"
    got = page.evaluate("window.__got")
    assert [m.get("type") for m in got if isinstance(m, dict)] == ["hitl-pick"]  # the picker ran; nothing else
    assert page.title().startswith("Fix the selectors")
    assert tab.dialogs == [] and tab.errors == []
