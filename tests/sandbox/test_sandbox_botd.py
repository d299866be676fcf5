"""The botd section: a real bot-detection library (@fingerprintjs/botd, served locally) that
refuses a plain headless Chromium in the page body, leaving the title alone, and lets the
stealth tier's browser (the add-on's fingerprint plus playwright-stealth) see the quotes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from parsel import Selector

from tests.sandbox.test_sandbox_guarded import get, guard_token

if TYPE_CHECKING:
    from sandbox import SandboxServer

pytestmark = pytest.mark.filterwarnings("error")

TIMEOUT_MS = 30_000  # a hang guard, not a timing assertion


def test_botd_page_holds_no_data_and_loads_the_library_locally(sandbox: SandboxServer) -> None:
    status, content_type, html = get(sandbox.url + "/botd/page/2")
    assert status == 200 and content_type.startswith("text/html")
    sel = Selector(text=html)
    assert sel.css("title::text").get() == "Quotes (BotD) - page 2"
    assert not sel.css("div.quote") and "“" not in html
    assert json.loads(sel.css("script#guard-config::text").get())["data"] == "/botd/data/2"
    script = sel.css("script[type=module]::text").get()
    assert "from '/assets/botd/botd.esm.js'" in script and "monitoring: false" in script
    status, content_type, bundle = get(sandbox.url + "/assets/botd/botd.esm.js")
    assert status == 200 and content_type.startswith("text/javascript")
    assert "Fingerprint BotD v2.0.0" in bundle and "export {" in bundle  # the npm package's ES module


def test_botd_data_endpoint_is_gated_like_the_guarded_one(sandbox: SandboxServer) -> None:
    assert get(sandbox.url + "/botd/data/1")[0] == 403
    headers = {"Cookie": f"guard_ok={guard_token(sandbox, '/botd/page/1')}", "X-Guard": "1"}
    status, _, body = get(sandbox.url + "/botd/data/1", headers=headers)
    assert status == 200
    data = json.loads(body)
    assert [q["id"] for q in data["quotes"]] == list(range(1, 11)) and data["next"] == "/botd/page/2"
    assert json.loads(get(sandbox.url + "/botd/data/detail/7", headers=headers)[2])["quote"]["id"] == 7
    assert get(sandbox.url + "/botd/data/99", headers=headers)[0] == 404


def open_botd(browser, url: str, *, stealth_domain: str | None = None):
    """Load ``url`` in a fresh context, the stealth tier's when ``stealth_domain`` is given;
    return (title, rendered HTML, root attributes) once BotD's verdict is in."""
    from scrapy_hitl.browser.fingerprint import fingerprint_for

    fingerprint = fingerprint_for(stealth_domain) if stealth_domain else None
    context = browser.new_context(**fingerprint.context_kwargs()) if fingerprint else browser.new_context()
    try:
        page = context.new_page()
        if fingerprint:
            from playwright_stealth import Stealth

            Stealth(**fingerprint.stealth_options()).apply_stealth_sync(page)
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("html[data-botd]", state="attached")
        if page.get_attribute("html", "data-botd") == "human":
            page.wait_for_load_state("networkidle")
        assert errors == []
        attrs = {name: page.get_attribute("html", name) for name in ("data-botd", "data-botd-detectors")}
        return page.title(), page.content(), attrs
    finally:
        context.close()


@pytest.fixture(scope="module")
def headless(playwright):
    browser = playwright.chromium.launch(executable_path=playwright.executable, headless=True)
    yield browser
    browser.close()


@pytest.mark.browser
def test_plain_headless_chromium_is_refused_in_the_body_with_the_title_kept(sandbox: SandboxServer, headless) -> None:
    title, html, attrs = open_botd(headless, sandbox.url + "/botd/page/1")
    assert attrs["data-botd"] == "bot"
    # What gives headless Chromium away to BotD 2.0.0 (the user agent and appVersion say
    # "HeadlessChrome", navigator.webdriver is true).
    assert {"detectUserAgent", "detectWebDriver"} <= set(attrs["data-botd-detectors"].split(","))
    assert title == "Quotes (BotD) - page 1"
    sel = Selector(text=html)
    assert sel.css("div#refusal h2::text").get() == "Automation detected"
    assert not sel.css("div.quote")
    assert sandbox.hits(prefix="/botd/data")["__total__"] == 0
    assert sandbox.hits(prefix="/assets/botd/")["__total__"] == 1


@pytest.mark.browser
def test_the_stealth_tiers_browser_passes_botd(sandbox: SandboxServer, headless) -> None:
    title, html, attrs = open_botd(headless, sandbox.url + "/botd/page/2", stealth_domain="botd.sandbox.test")
    assert attrs == {"data-botd": "human", "data-botd-detectors": ""}
    assert title == "Quotes (BotD) - page 2"
    sel = Selector(text=html)
    assert not sel.css("#refusal")
    assert len(sel.css("div.quote")) == 10
    assert sel.css("li.next a::attr(href)").get() == "/botd/page/3"
    [record] = sandbox.requests("/botd/data/2")
    assert record["status"] == 200 and "HeadlessChrome" not in record["user_agent"]


# -- the mixed shop's BotD-guarded items (the escalation benchmark's refusals section) --------------


def test_guarded_items_come_after_the_javascript_ones_in_the_same_shuffle() -> None:
    from sandbox import mixed

    js = mixed.js_ids(500, 0.2, 7)
    guarded = mixed.guarded_ids(500, 0.2, 0.1, 7)
    assert len(js) == 100 and len(guarded) == 50 and not js & guarded
    assert mixed.guarded_ids(500, 0.2, 0.0, 7) == frozenset()
    tiers = [mixed.tier_of(k, 500, 0.2, 0.1, 7) for k in range(1, 501)]
    assert (tiers.count("static"), tiers.count("browser"), tiers.count("stealth")) == (350, 100, 50)


def test_guarded_share_must_fit_beside_the_javascript_share() -> None:
    from sandbox.config import SiteConfig

    with pytest.raises(ValueError, match="mixed_guarded_share must be between 0 and 1 - mixed_js_share"):
        SiteConfig(mixed_js_share=0.8, mixed_guarded_share=0.3)


@pytest.mark.browser
def test_a_guarded_shop_item_refuses_headless_chromium_and_shows_the_item_to_stealth(headless) -> None:
    from sandbox import SandboxServer, mixed

    with SandboxServer(mixed_items=50, mixed_guarded_share=0.2) as shop:
        listing = Selector(text=get(shop.url + "/mixed/page/1")[2])
        guarded = listing.css("a.item[data-tier=stealth]::attr(href)").getall()
        assert guarded and all(href.startswith("/mixed/guarded/") for href in guarded)
        k = int(guarded[0].rsplit("/", 1)[1])
        assert get(shop.url + f"/mixed/item/{k}")[0] == get(shop.url + f"/mixed/app/{k}")[0] == 404
        assert 'class="item"' not in get(shop.url + guarded[0])[2]

        _, refused, attrs = open_botd(headless, shop.url + guarded[0])
        assert attrs["data-botd"] == "bot"
        assert Selector(text=refused).css("#refusal h2::text").get() == "Automation detected"
        _, html, attrs = open_botd(headless, shop.url + guarded[0], stealth_domain="mixed.sandbox.test")
        assert attrs["data-botd"] == "human"
        assert Selector(text=html).css("article.item h1.name::text").get() == mixed.item(k).name

