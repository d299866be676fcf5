"""The settle wait's request plumbing (the wait itself runs in real Chromium in
tests/integration/test_escalation.py)."""

from __future__ import annotations

import pytest
from scrapy_playwright.page import PageMethod

from scrapy_hitl.browser.settle import add_settle, browser_selector, settle


@pytest.mark.parametrize(
    ("expect", "selector"),
    [
        ("div.quote", "div.quote"),
        ("span.price::text", "span.price"),
        ("a.next::attr(href)", "a.next"),
        ("div.quote, article.q-card", "div.quote, article.q-card"),
        ("h1::text, h2::attr(title)", "h1, h2"),
    ],
)
def test_parsel_pseudo_elements_are_dropped_for_the_browser(expect, selector) -> None:
    assert browser_selector(expect) == selector


def settles(meta) -> list[PageMethod]:
    methods = meta.get("playwright_page_methods") or []
    methods = methods.values() if isinstance(methods, dict) else methods
    return [m for m in methods if m.method is settle]


@pytest.mark.parametrize(
    ("expect", "timeout", "added"),
    [
        ("div.quote", 5.0, True),
        ("span.born::text", 2.5, True),
        (None, 5.0, False),  # no expectation: judged at "load", as scrapy-playwright does
        ("", 5.0, False),
        ("::text", 5.0, False),  # nothing left to wait for
        ("div.quote", 0, False),  # HITL_BROWSER_SETTLE_TIMEOUT = 0 turns the wait off
    ],
)
def test_the_wait_is_added_only_for_an_expectation(expect, timeout, added) -> None:
    meta: dict = {}
    add_settle(meta, expect, timeout)
    found = settles(meta)
    assert len(found) == int(added)
    if added:
        assert found[0].args == (browser_selector(expect), timeout)


def test_the_spiders_page_methods_run_first_and_the_wait_is_added_once() -> None:
    scroll = PageMethod("evaluate", "window.scrollBy(0, 500)")
    meta = {"playwright_page_methods": [scroll]}
    add_settle(meta, "div.quote", 5.0)
    add_settle(meta, "div.quote", 5.0)  # a re-issued request keeps its meta
    methods = meta["playwright_page_methods"]
    assert methods[0] is scroll and len(methods) == 2 and methods[1].method is settle


def test_page_methods_given_as_a_dict_keep_their_keys() -> None:
    scroll = PageMethod("evaluate", "1")
    meta = {"playwright_page_methods": {"scroll": scroll}}
    add_settle(meta, "div.quote", 5.0)
    add_settle(meta, "div.quote", 5.0)
    assert list(meta["playwright_page_methods"]) == ["scroll", "hitl_settle"]
