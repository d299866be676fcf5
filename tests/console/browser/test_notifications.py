"""Notifications in a real Chromium: an admin adds a channel (shown redacted) and a rule,
sends a test message and reads its attempt; a reviewer says "I'm on it" on an intervention
and the list shows who owns it; the page works at 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from scrapy_hitl.state import interventions, notify_channels, ownership
from tests.notify.conftest import free_port

pytestmark = pytest.mark.browser


def test_an_admin_adds_a_channel_and_a_rule_and_tests_it(tab, users, state):
    page = tab.page
    tab.login("admin@example.com", then="/notifications")
    url = f"mailto://bot:Sup3rS3cret@127.0.0.1:{free_port()}?from=hitl@example.org&to=ops@example.org&mode=insecure"
    page.fill("#channel-url", "foo://bar")
    page.click("#channel-add")
    expect(page.locator("#channel-error")).to_contain_text("Apprise does not know the scheme foo://")
    page.fill("#channel-name", "mail")
    page.fill("#channel-url", url)
    page.click("#channel-add")
    row = page.locator('#channels-body tr[data-channel-id="1"]')
    expect(row).to_contain_text("mailto://bot:****@127.0.0.1")
    assert "Sup3rS3cret" not in page.content()
    expect(page.locator("#rules-body tr")).to_have_count(2)  # the defaults came with the first channel

    page.select_option("#rule-event", "intervention.created")
    page.fill("#rule-name", "captchas to mail")
    page.fill("#rule-channels", "mail")
    page.fill("#rule-types", "captcha_solve")
    page.fill("#rule-escalate", "15m:mail")
    page.click("#rule-add")
    expect(page.locator("#rules-body tr")).to_have_count(3)
    expect(page.locator('#rules-body tr[data-rule-id="3"]')).to_contain_text("after 15 min: mail")
    page.click('button[data-edit="3"]')  # edit it: the form is filled, saving changes the rule
    expect(page.locator("#rule-form-title")).to_have_text("Change rule #3")
    assert page.input_value("#rule-types") == "captcha_solve"
    page.fill("#rule-domains", "*.shop.test")
    page.fill("#rule-escalate", "30m:mail")
    page.click("#rule-add")
    rule = page.locator('#rules-body tr[data-rule-id="3"]')
    expect(rule).to_contain_text("domains *.shop.test")
    expect(rule).to_contain_text("after 30 min: mail")
    expect(page.locator("#rules-body tr")).to_have_count(3)
    expect(page.locator("#rule-form-title")).to_have_text("Add a rule")

    page.click('button[data-test="1"]')  # the SMTP server is not there: the answer is shown
    expect(page.locator("#channel-result")).to_contain_text("Connection refused")
    message = page.locator('#messages-body tr[data-state="failed"]')
    expect(message).to_have_count(1)
    message.locator("button[data-attempts]").click()
    expect(message.locator("ol.attempts li")).to_contain_text("Connection refused")
    page.set_viewport_size({"width": 390, "height": 844})
    tab.screenshot("notifications-390")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, width
    assert tab.errors == []


def test_im_on_it_on_an_intervention_and_the_owner_in_the_list(tab, users, state):
    page = tab.page
    opened, _ = interventions.open_or_update(state, type="manual_access", reason="http_403", domain="shop.example.com")
    tab.login("reviewer@example.com", then=f"/interventions/{opened['id']}")
    expect(page.locator("#owner-text")).to_have_text("Nobody has taken this yet.")
    page.click("#owner-take")
    expect(page.locator("#owner-text")).to_have_text("You are on it.")
    assert interventions.get(state, opened["id"])["owner"] == "reviewer@example.com"
    page.goto(f"{tab.base_url}/interventions")
    expect(page.locator(f'tr[data-intervention-id="{opened["id"]}"] .owner-hint')).to_have_text(" · you are on it")
    page.goto(f"{tab.base_url}/interventions/{opened['id']}")
    page.click("#owner-release")
    expect(page.locator("#owner-text")).to_have_text("Nobody has taken this yet.")
    # someone else takes it (another tab, the API, the CLI): this open page shows it at once
    ownership.take(state, "intervention", opened["id"], owner="ann@example.com")
    expect(page.locator("#owner-text")).to_have_text("ann@example.com is on it.")
    expect(page.locator("#owner-take")).to_have_text("Take it over")
    assert tab.errors == []
    assert notify_channels.list_(state) == []  # nothing here needed a channel
