"""Consultations and API keys in a real Chromium: the queue updates live (with a toast for a
high-priority question), reviewers answer with option buttons, a form built from the
response schema (the API's 422 shown next to it), JSON or free text; an agent's context never
runs as HTML; a new API key is shown once."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hitl_console.pages import HIGH_PRIORITY
from scrapy_hitl.state import apikeys, consultations, webhook_events
from scrapy_hitl.state.models import utcnow

pytestmark = pytest.mark.browser

SCHEMA = {
    "type": "object",
    "properties": {
        "price": {"type": "number", "minimum": 0, "description": "What the item really costs"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "in_stock": {"type": "boolean", "title": "In stock"},
        "note": {"type": "string"},
    },
    "required": ["price", "currency"],
    "additionalProperties": False,
}
IMG = "<img src=x onerror=\"window.__pwned=1;alert('img')\">"
SCRIPT = "<script>window.__pwned=2;alert('script')</script>"


class Agent:
    """An API key, asking over HTTP as an agent would."""

    def __init__(self, server, state, name: str = "pricing agent") -> None:
        info, key, _secret = apikeys.create(state, name)
        self.id, self.server = info["id"], server
        self.headers = {"Authorization": f"Bearer {key}"}

    def ask(self, **body) -> dict:
        body.setdefault("title", "Is 12.99 EUR right for this item?")
        status, _headers, data = self.server.request("POST", "/api/v1/consultations", body, self.headers)
        assert status == 201, data
        return data


@pytest.fixture
def agent(console_server, state):
    return Agent(console_server, state)


def reviewer_headers(server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.login('reviewer@example.com')['access_token']}"}


def row(page, consultation_id: int):
    return page.locator(f'#queue-body tr[data-consultation-id="{consultation_id}"]')


def test_the_queue_updates_live_and_toasts_a_high_priority_question(tab, users, agent, console_server):
    page = tab.page
    old = agent.ask(title="An old, ordinary question")
    tab.login("reviewer@example.com", then="/consultations")
    expect(row(page, old["id"])).to_have_attribute("data-state", "pending")

    urgent = agent.ask(title="Urgent: which record is the right person?", priority=HIGH_PRIORITY + 20)
    expect(row(page, urgent["id"])).to_be_visible()
    toast = page.locator('.toast[data-toast-type="consultation.high_priority"]')
    expect(toast).to_have_count(1)
    expect(toast).to_contain_text("Urgent: which record is the right person?")
    expect(toast.locator("a")).to_have_attribute("href", f"/consultations/{urgent['id']}")
    expect(row(page, urgent["id"]).locator(".badge-high")).to_be_visible()

    # A lower priority comes in between the two, and brings no toast.
    middle = agent.ask(title="Somewhat important", priority=5)
    expect(row(page, middle["id"])).to_be_visible()
    expect(page.locator("#queue-body tr")).to_have_count(3)
    order = page.eval_on_selector_all("#queue-body tr", "rows => rows.map(r => Number(r.dataset.consultationId))")
    assert order == [urgent["id"], middle["id"], old["id"]]  # priority, then age
    expect(toast).to_have_count(1)

    # Answered elsewhere: it leaves the pending queue, without a reload.
    status, _, _ = console_server.request("POST", f"/api/v1/consultations/{urgent['id']}/respond",
                                          {"answer": "yes"}, reviewer_headers(console_server))
    assert status == 200
    expect(row(page, urgent["id"])).to_have_count(0)
    # Every state: the answered one is back, marked responded.
    page.select_option("#filter-state", "")
    page.click('#filters button[type="submit"]')
    expect(row(page, urgent["id"])).to_have_attribute("data-state", "responded")
    assert page.url.endswith("/consultations?state=")
    tab.screenshot("consultations")
    assert tab.errors == [] and tab.dialogs == []


def test_a_reviewer_answers_with_an_option_button(tab, users, agent, console_server):
    asked = agent.ask(options=["yes", {"value": "no", "label": "No, the price is wrong"}],
                      callback_url="https://agent.example/hooks")
    page = tab.page
    tab.login("reviewer@example.com", then="/consultations")
    row(page, asked["id"]).locator("a").first.click()
    expect(page.locator("#c-state")).to_have_attribute("data-status", "pending")
    expect(page.locator("#c-asked-by")).to_have_text(f"API key #{agent.id}")
    expect(page.locator('#history li[data-action="created"]')).to_contain_text(f"agent:{agent.id}")
    expect(page.locator("#schema-form")).to_be_hidden()
    expect(page.locator("#free-form")).to_be_hidden()

    page.click('#options button[data-option="no"]')  # asks first: one click does not answer
    expect(page.locator("#confirm-title")).to_have_text('Answer "No, the price is wrong"?')
    page.click("#confirm-no")
    expect(page.locator("#confirm-dialog")).to_have_count(0)
    expect(page.locator("#c-state")).to_have_attribute("data-status", "pending")
    page.click('#options button[data-option="no"]')
    page.click("#confirm-yes")
    expect(page.locator("#c-state")).to_have_attribute("data-status", "responded")
    expect(page.locator("#respond-panel")).to_be_hidden()
    expect(page.locator("#c-response")).to_contain_text("No, the price is wrong")
    expect(page.locator('#history li[data-action="responded"]')).to_contain_text("user:reviewer@example.com")
    status, _, data = console_server.request("GET", f"/api/v1/consultations/{asked['id']}", headers=agent.headers)
    assert (status, data["state"], data["response"]) == (200, "responded", "no")
    assert tab.errors == []


def test_a_form_is_built_from_the_schema_and_shows_the_apis_422(tab, users, agent, console_server):
    asked = agent.ask(title="What does it cost?", response_schema=SCHEMA)
    page = tab.page
    tab.login("reviewer@example.com", then=f"/consultations/{asked['id']}")
    form = page.locator("#schema-form")
    expect(form).to_be_visible()
    price = form.locator('[data-field="price"]')
    expect(price.locator('input[type="number"]')).to_have_attribute("aria-required", "true")
    expect(price.locator(".help")).to_have_text("What the item really costs")
    currency = form.locator('[data-field="currency"] select')
    assert currency.locator("option").all_text_contents() == ["– choose –", "EUR", "USD"]
    expect(form.locator('[data-field="in_stock"] input[type="checkbox"]')).to_be_visible()
    expect(form.locator('[data-field="note"] input[type="text"]')).to_be_visible()

    price.locator("input").fill("-3")
    currency.select_option(label="EUR")
    page.click("#schema-submit")
    expect(page.locator("#respond-error")).to_contain_text("less than the minimum of 0")
    expect(price.locator(".field-error")).to_contain_text("less than the minimum of 0")
    expect(price.locator("input")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#c-state")).to_have_attribute("data-status", "pending")
    tab.screenshot("consultation-form")

    price.locator("input").fill("12.5")
    form.locator('[data-field="in_stock"] input').check()
    page.click("#schema-submit")
    expect(page.locator("#c-state")).to_have_attribute("data-status", "responded")
    expect(page.locator("#respond-error")).to_be_hidden()
    _, _, data = console_server.request("GET", f"/api/v1/consultations/{asked['id']}", headers=agent.headers)
    assert data["response"] == {"price": 12.5, "currency": "EUR", "in_stock": True}
    expect(page.locator('#c-response li[data-key="price"]')).to_contain_text("12.5")
    assert tab.errors == []


def test_other_schemas_get_a_json_box_and_no_schema_gets_free_text(tab, users, agent, console_server):
    nested = agent.ask(response_schema={"type": "array", "items": {"type": "integer"}, "minItems": 2})
    free = agent.ask(title="What is this page?")
    page = tab.page
    tab.login("reviewer@example.com", then=f"/consultations/{nested['id']}")
    expect(page.locator("#json-form")).to_be_visible()
    expect(page.locator("#schema-text")).to_contain_text('"minItems": 2')
    page.fill("#json-answer", "[1, ")
    page.click("#json-submit")
    expect(page.locator("#respond-error")).to_contain_text("not valid JSON")
    page.fill("#json-answer", "[1]")
    page.click("#json-submit")
    expect(page.locator("#respond-error")).to_contain_text("is too short")
    page.fill("#json-answer", "[1, 2]")
    page.click("#json-submit")
    expect(page.locator("#c-state")).to_have_attribute("data-status", "responded")

    page.goto(f"{tab.base_url}/consultations/{free['id']}")
    expect(page.locator("#free-form")).to_be_visible()
    page.fill("#free-text", "A login wall: <b>ask the site owner</b>")
    page.click("#free-submit")
    expect(page.locator("#c-state")).to_have_attribute("data-status", "responded")
    _, _, data = console_server.request("GET", f"/api/v1/consultations/{free['id']}", headers=agent.headers)
    assert data["response"] == "A login wall: <b>ask the site owner</b>"
    expect(page.locator("#c-response")).to_contain_text("<b>ask the site owner</b>")
    assert tab.errors == []


def test_html_in_a_consultation_is_shown_as_text_and_never_runs(tab, users, agent):
    context = {"page": {"html": IMG, "scripts": [SCRIPT, "line one\nline two <i>x</i>"]},
               "url": "javascript:alert(3)", "price": 12.99, "ok": True, "none": None}
    asked = agent.ask(title=f"Which one? {IMG}", description=f"Look at this: {SCRIPT}", context=context,
                      metadata={"trace": IMG}, options=[IMG, "plain"])
    page = tab.page
    tab.login("reviewer@example.com", then=f"/consultations/{asked['id']}")
    expect(page.locator("#c-title")).to_have_text(f"Which one? {IMG}")
    expect(page.locator("#c-description")).to_have_text(f"Look at this: {SCRIPT}")
    tree = page.locator("#context-tree")
    expect(tree.locator('li[data-key="html"] .tv-string')).to_have_text(IMG)
    expect(tree.locator('li[data-key="scripts"] li[data-key="0"] .tv-string')).to_have_text(SCRIPT)
    expect(tree.locator('li[data-key="scripts"] li[data-key="1"] pre')).to_have_text("line one\nline two <i>x</i>")
    expect(tree.locator('li[data-key="price"] .tv-number')).to_have_text("12.99")
    expect(tree.locator('li[data-key="url"] a')).to_have_count(0)
    expect(page.locator("#metadata-tree")).to_contain_text(IMG)
    expect(page.locator("#options button").first).to_have_text(IMG)
    page.click("#context-raw-details summary")
    expect(page.locator("#context-raw")).to_contain_text('"html": "<img src=x')

    # Not parsed as HTML anywhere, not run.
    for selector in ("#consultation img", "#consultation script", "#consultation i", "#consultation b"):
        expect(page.locator(selector)).to_have_count(0)
    assert page.evaluate("window.__pwned") is None
    assert tab.dialogs == [] and tab.errors == []
    tab.screenshot("consultation-context")

    # Answering with the hostile option stores it as the plain string it is.
    page.locator("#options button").first.click()
    expect(page.locator("#confirm-title")).to_have_text(f'Answer "{IMG}"?')  # as text in the question too
    expect(page.locator("#confirm-dialog img")).to_have_count(0)
    page.click("#confirm-yes")
    expect(page.locator("#c-state")).to_have_attribute("data-status", "responded")
    expect(page.locator("#c-response")).to_contain_text(IMG)
    assert page.evaluate("window.__pwned") is None and tab.dialogs == []


def test_the_deliveries_log_shows_every_attempt_live_and_redelivers(tab, users, agent, state):
    asked = agent.ask(callback_url="https://agent.example/hooks", options=["yes", "no"])
    consultations.respond(state, asked["id"], "yes", actor="user:reviewer@example.com")
    (webhook,) = webhook_events.list_for(state.db, asked["id"])
    page = tab.page
    tab.login("reviewer@example.com", then=f"/consultations/{asked['id']}")
    expect(page.locator(f'#webhooks li[data-webhook-id="{webhook["webhook_id"]}"]')).to_have_attribute(
        "data-state", "pending")
    expect(page.locator("#deliveries-empty")).to_be_visible()

    # What the webhook worker does (no worker runs here): one refused attempt, then a 500
    # and it gives up; the consultation becomes callback_failed, and the page shows it all.
    event_id = webhook_events.due(state.db)[0]
    claim = webhook_events.claim(state.db, event_id, lease_seconds=30)
    webhook_events.finish(state.db, claim, "retry", next_attempt_at=utcnow(), error="connection refused",
                          attempt={"error": "connection refused", "duration_ms": 3})
    claim = webhook_events.claim(state.db, event_id, lease_seconds=30)
    webhook_events.finish(state.db, claim, "failed", status_code=500, attempt={
        "status_code": 500, "response_excerpt": "<b>oops</b><script>window.__pwned=1</script>", "duration_ms": 12})
    consultations.mark_callback(state, asked["id"], delivered=False)
    expect(page.locator("#c-state")).to_have_attribute("data-status", "callback_failed")
    rows = page.locator("#deliveries-body tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("connection refused")
    expect(rows.nth(1)).to_have_attribute("data-status-code", "500")
    expect(rows.nth(1).locator('[data-field="outcome"]')).to_have_text("<b>oops</b><script>window.__pwned=1</script>")
    expect(page.locator("#webhooks li").first).to_have_attribute("data-state", "failed")
    tab.screenshot("consultation-deliveries")

    page.click("#redeliver")
    expect(page.locator("#redeliver-result")).to_contain_text(webhook["webhook_id"])
    expect(page.locator("#webhooks li").first).to_have_attribute("data-state", "pending")
    expect(page.locator('#history li[data-action="redeliver"]')).to_contain_text("user:reviewer@example.com")
    assert page.evaluate("window.__pwned") is None
    assert tab.errors == [] and tab.dialogs == []


def test_a_new_api_key_is_shown_once_and_can_be_renamed_and_revoked(tab, users, console_server):
    page = tab.page
    tab.login("admin@example.com", then="/api-keys")
    expect(page.locator("#keys-empty")).to_be_visible()
    page.fill("#key-name", "pricing agent")
    page.click("#key-create")
    expect(page.locator("#new-secret")).to_be_visible()
    key = page.text_content("#new-key-value")
    secret = page.text_content("#new-secret-value")
    assert key.startswith("hitl_live_") and secret.startswith("whsec_")
    key_row = page.locator("#keys-body tr").first
    key_id = key_row.get_attribute("data-key-id")
    expect(key_row.locator('[data-field="name"]')).to_have_text("pricing agent")
    page.click("#copy-key")
    expect(page.locator("#copy-key[data-copied]")).to_have_count(1)
    tab.screenshot("api-keys")
    agent = {"Authorization": f"Bearer {key}"}
    assert console_server.request("GET", "/api/v1/consultations", headers=agent)[0] == 200

    page.reload()
    expect(page.locator(f'#keys-body tr[data-key-id="{key_id}"]')).to_be_visible()
    expect(page.locator("#new-secret")).to_be_hidden()
    html = page.content()
    assert key not in html and secret not in html and key[len("hitl_live_"):] not in html

    page.click(f'button[data-rename="{key_id}"]')
    page.fill(f'input[data-rename-input="{key_id}"]', "pricing agent v2")
    page.click(f'button[data-rename-save="{key_id}"]')
    expect(page.locator(f'#keys-body tr[data-key-id="{key_id}"] [data-field="name"]')).to_have_text("pricing agent v2")

    page.click(f'button[data-rotate="{key_id}"]')
    page.click(f'button[data-rotate="{key_id}"]')  # the second click confirms
    expect(page.locator("#new-secret")).to_be_visible()
    expect(page.locator("#new-key-cell")).to_be_hidden()
    assert page.text_content("#new-secret-value").startswith("whsec_")

    page.click(f'button[data-revoke="{key_id}"]')
    page.click(f'button[data-revoke="{key_id}"]')
    expect(page.locator(f'#keys-body tr[data-key-id="{key_id}"]')).to_have_attribute("data-revoked", "true")
    assert console_server.request("GET", "/api/v1/consultations", headers=agent)[0] == 401
    assert tab.errors == [] and tab.dialogs == []
