"""The demo spider's sandbox sections, without a crawl: its callbacks fed the sandbox's own pages.

The js and guarded pages are built in the browser; their rendered markup is the quotes markup
with the section's links, which is what ``pages.quote_list_page(section, ...)`` renders.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from demo.spiders.sandbox import SECTIONS, SandboxSpider
from sandbox import mixed, pages
from scrapy import Request
from scrapy.http import HtmlResponse

pytestmark = pytest.mark.filterwarnings("error")

BASE = "http://127.0.0.1:8999"
PAGES = 5
ITEMS, SHARE, SEED = 500, 0.2, 7  # sandbox defaults


def spider(**kwargs: str) -> SandboxSpider:
    return SandboxSpider(base=BASE, **kwargs)


def response(section: str, path: str, body: bytes) -> HtmlResponse:
    return HtmlResponse(url=f"http://{section}.sandbox.test:8999{path}", body=body, encoding="utf-8")


def start_requests(s: SandboxSpider) -> list[Request]:
    """Drain ``start()`` on a fresh loop in its own thread.

    The session's sync Playwright driver keeps an event loop marked running in the main
    thread, so ``asyncio.run`` here would fail whenever a browser test ran first.
    """

    async def collect() -> list[Request]:
        return [request async for request in s.start()]

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, collect()).result()


def split(results: list[Any]) -> tuple[list[Request], list[dict[str, Any]]]:
    requests = [r for r in results if isinstance(r, Request)]
    return requests, [r for r in results if not isinstance(r, Request)]


# -- arguments and start requests ------------------------------------------------------------------


def test_every_section_is_accepted_and_unknown_ones_are_refused() -> None:
    assert set(SECTIONS) >= {"quotes", "vip", "members", "protected", "drift", "js", "guarded", "mixed"}
    with pytest.raises(ValueError, match=r"Unknown sections \['shop'\]; choose from .*'mixed'"):
        spider(sections="js,shop")


def test_start_requests_one_per_section_on_its_own_domain() -> None:
    requests = start_requests(spider(sections="quotes,js,guarded,mixed"))
    assert [(r.url, r.meta.get("hitl_expect")) for r in requests] == [
        ("http://quotes.sandbox.test:8999/quotes/page/1", "div.quote"),
        ("http://js.sandbox.test:8999/js/page/1", "div.quote"),
        ("http://guarded.sandbox.test:8999/guarded/page/1", "div.quote"),
        ("http://mixed.sandbox.test:8999/mixed/page/1", "ul.items"),
    ]
    s = requests[0].callback.__self__
    assert [r.callback for r in requests] == [s.parse_listing] * 3 + [s.parse_mixed_listing]
    assert [r.cb_kwargs for r in requests] == [{"section": "quotes"}, {"section": "js"}, {"section": "guarded"}, {}]
    assert all("hitl_tier" not in r.meta for r in requests)


# -- js and guarded: quotes rendered in the browser ------------------------------------------------


@pytest.mark.parametrize("section", ["js", "guarded"])
def test_rendered_listing_follows_details_and_next_with_expectations(section: str) -> None:
    s = spider(sections=section)
    rendered = response(section, f"/{section}/page/2", pages.quote_list_page(section, 2, PAGES))
    requests, items = split(list(s.parse_listing(rendered, section=section)))
    assert items == []
    *details, next_page = requests
    origin = f"http://{section}.sandbox.test:8999"
    assert [r.url for r in details] == [f"{origin}/{section}/detail/{n}" for n in range(11, 21)]
    assert {r.meta["hitl_expect"] for r in details} == {"span.born"}
    first = details[0].cb_kwargs["item"]
    assert first["section"] == section and first["url"] == rendered.url
    assert first["text"].startswith("\u201c") and first["author"] and first["tags"]
    assert next_page.url == f"http://{section}.sandbox.test:8999/{section}/page/3"
    assert (next_page.meta["hitl_expect"], next_page.cb_kwargs) == ("div.quote", {"section": section})
    assert all("hitl_tier" not in r.meta for r in requests)


@pytest.mark.parametrize("section", ["js", "guarded"])
def test_rendered_detail_completes_the_item(section: str) -> None:
    s = spider(sections=section)
    listing = response(section, f"/{section}/page/1", pages.quote_list_page(section, 1, PAGES))
    request = split(list(s.parse_listing(listing, section=section)))[0][0]
    detail = response(section, f"/{section}/detail/1", pages.quote_detail_page(section, 1))
    [item] = list(s.parse_detail(detail, **request.cb_kwargs))
    assert set(item) == {"section", "text", "author", "tags", "url", "detail_url", "born"}
    assert item["detail_url"] == detail.url and item["born"]


def test_unrendered_js_shell_yields_nothing() -> None:
    shell = response("js", "/js/page/1", pages.js_list_page(1, PAGES))
    assert list(spider(sections="js").parse_listing(shell, section="js")) == []


def test_quotes_details_keep_no_expectation() -> None:
    listing = response("quotes", "/quotes/page/1", pages.quote_list_page("quotes", 1, PAGES))
    requests, _ = split(list(spider(sections="quotes").parse_listing(listing, section="quotes")))
    assert [r.meta for r in requests[:-1]] == [{}] * 10
    assert requests[-1].meta == {"hitl_expect": "div.quote"}


# -- mixed: static and JavaScript item pages ---------------------------------------------------------


def mixed_listing(page: int) -> HtmlResponse:
    return response("mixed", f"/mixed/page/{page}", mixed.listing_page(page, ITEMS, SHARE, SEED))


@pytest.mark.parametrize("oracle", ["0", "no", "false"])
def test_mixed_listing_without_oracle_sets_no_tier(oracle: str) -> None:
    s = spider(sections="mixed", oracle=oracle)
    requests, items = split(list(s.parse_mixed_listing(mixed_listing(1))))
    assert items == []
    *links, next_page = requests
    assert len(links) == 25
    assert [r.meta for r in links] == [{"hitl_expect": "article.item"}] * 25
    assert {r.callback for r in links} == {s.parse_mixed_item}
    assert next_page.url == "http://mixed.sandbox.test:8999/mixed/page/2"
    assert next_page.meta == {"hitl_expect": "ul.items"}
    assert next_page.callback == s.parse_mixed_listing


@pytest.mark.parametrize("oracle", ["1", "true", "yes"])
def test_mixed_listing_with_oracle_tells_each_tier(oracle: str) -> None:
    js = mixed.js_ids(ITEMS, SHARE, SEED)
    s = spider(sections="mixed", oracle=oracle)
    requests, _ = split(list(s.parse_mixed_listing(mixed_listing(1))))
    links = requests[:-1]
    expected = [
        (f"http://mixed.sandbox.test:8999{mixed.item_url(k, k in js)}", "browser" if k in js else "static")
        for k in range(1, 26)
    ]
    assert [(r.url, r.meta["hitl_tier"]) for r in links] == expected
    assert {r.meta["hitl_expect"] for r in links} == {"article.item"}
    assert {"static", "browser"} == {tier for _, tier in expected}  # page 1 holds both kinds
    assert "hitl_tier" not in requests[-1].meta


def test_mixed_last_listing_has_no_next() -> None:
    requests, _ = split(list(spider(sections="mixed").parse_mixed_listing(mixed_listing(20))))
    assert len(requests) == 25 and all("/mixed/page/" not in r.url for r in requests)


def test_mixed_static_item() -> None:
    k = min(set(range(1, ITEMS + 1)) - mixed.js_ids(ITEMS, SHARE, SEED))
    page = response("mixed", f"/mixed/item/{k}", mixed.item_page(k))
    [item] = list(spider(sections="mixed").parse_mixed_item(page))
    it = mixed.item(k)
    assert item == {"section": "mixed", "id": k, "name": it.name, "price": it.price, "url": page.url}


def test_mixed_js_item_shell_yields_nothing_and_rendered_yields_the_item() -> None:
    k = min(mixed.js_ids(ITEMS, SHARE, SEED))
    s = spider(sections="mixed")
    assert list(s.parse_mixed_item(response("mixed", f"/mixed/app/{k}", mixed.app_page(k)))) == []
    # What a browser renders from the app shell: the static template's article.item.
    rendered = response("mixed", f"/mixed/app/{k}", mixed.item_page(k))
    [item] = list(s.parse_mixed_item(rendered))
    assert (item["id"], item["name"], item["url"]) == (k, mixed.item(k).name, rendered.url)
