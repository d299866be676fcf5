"""The quality gate's review in a real Chromium: the queue's counts update live, a reviewer
edits an item beside its page (whose scripts never run), the version history shows the diff
and restore works, and the keyboard approves and rejects through the queue. The run page
shows the score histogram and export links."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from scrapy_hitl.state import items

pytestmark = pytest.mark.browser

HOSTILE_PAGE = (b"<html><body><h1>Blue kettle</h1><p class=price></p>"
                b"<script>window.parent.__pwned=1</script><img src=x onerror=\"window.parent.__pwned=2\"></body></html>")
MISSING_PRICE = {"check": "missing", "field": "price", "message": "required field missing or empty"}


def held(run_id: str, sku: str, score: float, **data) -> dict:
    return {"run_id": run_id, "spider": "shop", "item_type": "Product", "url": f"http://shop.test/{sku}",
            "status": "pending_review", "score": score, "breakdown": {"completeness": score},
            "failing": [MISSING_PRICE], "evidence_key": "page", "data": {"sku": sku, **data}}


def record(state, rows):
    items.record(state.db, rows, {"page": {"kind": "body", "content_type": "text/html; charset=utf-8",
                                           "url": "http://shop.test/p", "data": HOSTILE_PAGE,
                                           "size": len(HOSTILE_PAGE)}})
    state.events.emit("item.review_required", {"pending_review": len(rows), "optional_review": 0},
                      run_id=rows[0]["run_id"], spider="shop")


def test_a_reviewer_edits_an_item_beside_its_page_and_restores_a_version(tab, users, state, run_id):
    record(state, [held(run_id, "K1", 0.3, name="Blue kettle", price=None),
                   held(run_id, "K2", 0.35, name="Red kettle")])
    ids = {i["data"]["sku"]: i["id"] for i in items.list_items(state.db, run_id=run_id)}
    page = tab.page
    tab.login("reviewer@example.com", then="/items")
    group = page.locator(f'#groups-body tr[data-run-id="{run_id}"]')
    expect(group.locator('td[data-field="pending_review"]')).to_have_text("2")

    record(state, [held(run_id, "K3", 0.2, name="Green kettle")])  # arrives while the page is open
    expect(group.locator('td[data-field="pending_review"]')).to_have_text("3")
    expect(page.locator("#queue-body tr")).to_have_count(3)
    order = page.eval_on_selector_all("#queue-body tr", "rows => rows.map(r => r.querySelector('a').textContent)")
    assert order == [f"#{ids['K1'] + 2}", f"#{ids['K1']}", f"#{ids['K2']}"]  # lowest score first

    page.locator(f'#queue-body tr[data-item-id="{ids["K1"]}"] a').first.click()
    expect(page.locator("#item")).to_have_attribute("data-status", "pending_review")
    price_row = page.locator('#fields-body tr[data-field="price"]')
    expect(price_row).to_have_class(re.compile(r"\bfailing\b"))
    expect(price_row.locator(".check")).to_contain_text("missing")
    expect(page.locator("#field-name")).to_have_value("Blue kettle")
    expect(page.locator("#field-price")).to_have_value("null")  # not a string: edited as JSON
    frame = page.frame_locator("#evidence-frame")
    expect(frame.locator("h1")).to_have_text("Blue kettle")
    assert page.evaluate("window.__pwned") is None  # the page's scripts never ran

    # A bad JSON value is refused at its field, nothing is sent.
    page.fill("#field-price", "12,5")
    page.keyboard.press("Control+s")
    expect(page.locator("#action-error")).to_contain_text("price: not valid JSON")
    expect(page.locator("#field-price")).to_have_attribute("aria-invalid", "true")

    page.fill("#field-price", "12.5")
    page.fill("#field-name", "Blue kettle, 1.7 l")
    page.fill("#review-note", "price from the shop's app")
    page.keyboard.press("Control+s")
    expect(page.locator("#item")).to_have_attribute("data-version", "2")
    expect(page.locator("#action-result")).to_have_text("Saved as version 2.")
    v2 = page.locator('#versions li[data-version="2"]')
    expect(v2).to_contain_text("console:reviewer@example.com")
    expect(v2).to_contain_text("price from the shop's app")
    expect(v2.locator('table.diff tr[data-field="name"][data-op="changed"]')).to_contain_text("Blue kettle, 1.7 l")
    price_diff = v2.locator('table.diff tr[data-field="price"][data-op="changed"]')
    expect(price_diff.locator(".old")).to_have_text("null")
    expect(price_diff.locator(".new")).to_have_text("12.5")
    expect(page.locator('#history li[data-action="edited"]')).to_have_count(1)
    tab.screenshot("item-review-edited")

    page.click('#versions button.restore[data-version="1"]')
    expect(page.locator("#item")).to_have_attribute("data-version", "3")
    expect(page.locator("#field-name")).to_have_value("Blue kettle")
    expect(page.locator("#field-price")).to_have_value("null")
    v3 = page.locator('#versions li[data-version="3"]')
    expect(v3).to_contain_text("restored version 1")
    expect(v3.locator('table.diff tr[data-field="price"] .new')).to_have_text("null")
    assert items.get(state.db, ids["K1"])["data"] == {"sku": "K1", "name": "Blue kettle", "price": None}
    assert [v["version"] for v in items.versions(state.db, ids["K1"])] == [1, 2, 3]
    tab.screenshot("item-review-restored")
    assert tab.errors == [] and tab.dialogs == []


def test_the_keyboard_approves_and_rejects_through_the_queue(tab, users, state, run_id):
    record(state, [held(run_id, "A", 0.1, name="a"), held(run_id, "B", 0.2, name="b"),
                   held(run_id, "C", 0.3, name="c")])
    ids = {i["data"]["sku"]: i["id"] for i in items.list_items(state.db, run_id=run_id)}
    page = tab.page
    tab.login("reviewer@example.com", then=f"/items/{ids['A']}?status=pending_review&run_id={run_id}")
    expect(page.locator("#item")).to_have_attribute("data-status", "pending_review")

    page.click("#field-price")  # a missing required field has a row to fill in
    page.keyboard.type("£4.20")  # not JSON: taken as text
    page.keyboard.press("Escape")  # leave the field: keys are shortcuts again
    page.keyboard.press("a")  # approve, with the edit, then on to the next held item
    page.wait_for_url(re.compile(rf"/items/{ids['B']}\?"))
    expect(page.locator("#item")).to_have_attribute("data-status", "pending_review")
    page.keyboard.press("r")
    page.wait_for_url(re.compile(rf"/items/{ids['C']}\?"))
    page.keyboard.press("n")  # only C is left: "next" says so
    expect(page.locator("#action-result")).to_have_text("That was the last item in this queue.")

    # Opened from the "any status" queue, "next" walks every status (A -> B, decided or not).
    page.goto(f"{tab.base_url}/items/{ids['A']}?status=&run_id={run_id}&spider=")
    expect(page.locator("#item")).to_have_attribute("data-status", "approved")
    page.keyboard.press("n")
    page.wait_for_url(re.compile(rf"/items/{ids['B']}\?status=&"))

    approved, rejected = items.get(state.db, ids["A"]), items.get(state.db, ids["B"])
    assert (approved["status"], approved["version"], approved["data"]["price"]) == ("approved", 2, "£4.20")
    assert rejected["status"] == "rejected"
    assert [e["sku"] for e in items.iter_export(state.db, run_id)] == ["A"]

    page.goto(f"{tab.base_url}/runs/{run_id}")
    expect(page.locator('#quality-counts dd[data-status="approved"]')).to_have_text("1")
    expect(page.locator('#histogram rect[data-bucket="1"]')).to_have_attribute("data-count", "1")
    expect(page.locator('#exports a[data-format="xlsx"]')).to_have_attribute(
        "href", f"/api/v1/runs/{run_id}/items.xlsx")
    with page.expect_download() as download:
        page.click('#exports a[data-format="jsonl"]')
    assert download.value.suggested_filename == f"{run_id}.jsonl"
    assert '"sku":"A"' in download.value.path().read_text()
    tab.screenshot("run-quality")
    assert tab.errors == [] and tab.dialogs == []
