"""The mixed shop: 80% static item pages, an exact 20% that need JavaScript, picked by a seed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
from parsel import Selector
from sandbox import SandboxServer
from sandbox import mixed

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.filterwarnings("error")

ITEMS, SHARE, SEED = 500, 0.2, 7  # sandbox defaults
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TIMEOUT_MS = 30_000  # a hang guard, not a timing assertion


def get(url: str) -> tuple[int, str]:
    """(status, body) without raising on 4xx."""
    request = urllib.request.Request(url, headers={"User-Agent": "sandbox-tests/1.0"})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def listed_tiers(server: SandboxServer) -> dict[int, tuple[str, str]]:
    """Follow ``li.next`` from page 1: {item id: (href, data-tier)}; every item must be listed once."""
    tiers: dict[int, tuple[str, str]] = {}
    path: str | None = "/mixed/page/1"
    while path:
        status, html = get(server.url + path)
        assert status == 200
        sel = Selector(text=html)
        for link in sel.css("ul.items a.item"):
            k = int(link.css("::text").get().removeprefix("Item "))
            assert k not in tiers, f"item {k} listed twice"
            tiers[k] = (link.attrib["href"], link.attrib["data-tier"])
        path = sel.css("li.next a::attr(href)").get()
    return tiers


def js_set(tiers: dict[int, tuple[str, str]]) -> set[int]:
    return {k for k, (_, tier) in tiers.items() if tier == "browser"}


@pytest.fixture(scope="module")
def small_shop() -> Iterator[SandboxServer]:
    """A shop that does not end on a full listing page: 60 items, 3 pages, 15 of them JS-only."""
    with SandboxServer(mixed_items=60, mixed_js_share=0.25, mixed_seed=3) as server:
        yield server
    assert server.stderr() == ""


# -- which items are JS-only -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "share", "seed", "expected"),
    [(500, 0.2, 7, 100), (500, 0.2, 8, 100), (60, 0.25, 3, 15), (7, 0.5, 1, 4), (3, 0.5, 1, 2),
     (10, 0.0, 7, 0), (10, 1.0, 7, 10), (1, 0.2, 7, 0), (1000, 0.123, 99, 123)],
)  # fmt: skip
def test_js_share_is_exact(items: int, share: float, seed: int, expected: int) -> None:
    ids = mixed.js_ids(items, share, seed)
    assert len(ids) == expected == round(items * share)
    assert ids <= set(range(1, items + 1))


def test_default_server_serves_exactly_the_seeded_js_items(sandbox: SandboxServer) -> None:
    tiers = listed_tiers(sandbox)
    assert sorted(tiers) == list(range(1, ITEMS + 1))
    assert js_set(tiers) == mixed.js_ids(ITEMS, SHARE, SEED)
    assert len(js_set(tiers)) == 100


def test_same_seed_same_items_on_another_server(sandbox: SandboxServer) -> None:
    with SandboxServer() as other:
        assert listed_tiers(other) == listed_tiers(sandbox)
        assert get(other.url + "/mixed/page/3")[1] == get(sandbox.url + "/mixed/page/3")[1]


def test_another_seed_picks_other_items(sandbox: SandboxServer) -> None:
    with SandboxServer(mixed_seed=8) as other:
        reseeded = js_set(listed_tiers(other))
    assert len(reseeded) == 100
    assert reseeded != js_set(listed_tiers(sandbox))


# -- listings and item pages -----------------------------------------------------------------------


def test_listings_cover_every_item_once_with_its_tier(small_shop: SandboxServer) -> None:
    tiers = listed_tiers(small_shop)
    assert sorted(tiers) == list(range(1, 61))
    for k, (href, tier) in tiers.items():
        expected = (f"/mixed/app/{k}", "browser") if k in mixed.js_ids(60, 0.25, 3) else (f"/mixed/item/{k}", "static")
        assert (href, tier) == expected
    assert js_set(tiers) == mixed.js_ids(60, 0.25, 3) and len(js_set(tiers)) == 15
    # 25 per page; the last page holds the remaining 10 and has no li.next.
    counts = [len(Selector(text=get(f"{small_shop.url}/mixed/page/{p}")[1]).css("a.item")) for p in (1, 2, 3)]
    assert counts == [25, 25, 10]
    small_shop.reset()
    for href, _ in tiers.values():
        assert get(small_shop.url + href)[0] == 200
    hits = small_shop.hits(prefix="/mixed/")
    assert hits.pop("__total__") == 60 and set(hits.values()) == {1}
    assert set(hits) == {href for href, _ in tiers.values()}


def test_listing_pager(sandbox: SandboxServer) -> None:
    first = Selector(text=get(sandbox.url + "/mixed/page/1")[1])
    assert first.css("li.next a::attr(href)").get() == "/mixed/page/2" and not first.css("li.previous")
    last = Selector(text=get(sandbox.url + "/mixed/page/20")[1])
    assert not last.css("li.next") and last.css("li.previous a::attr(href)").get() == "/mixed/page/19"


def static_id() -> int:
    return min(set(range(1, ITEMS + 1)) - mixed.js_ids(ITEMS, SHARE, SEED))


def js_id() -> int:
    return min(mixed.js_ids(ITEMS, SHARE, SEED))


def test_static_item_markup(sandbox: SandboxServer) -> None:
    k = static_id()
    status, html = get(f"{sandbox.url}/mixed/item/{k}")
    assert status == 200
    [article] = Selector(text=html).css("article.item")
    assert article.attrib["data-id"] == str(k)
    assert article.css("h1.name::text").get() == mixed.item(k).name
    assert mixed.item(k).name.endswith(f" #{k}")
    assert article.css("span.price::text").re_first(r"^£\d+\.\d\d$")
    assert article.css("p.desc::text").get()
    assert html.encode() == mixed.item_page(k)  # another process renders the same bytes


def test_app_shell_holds_the_item_as_json_only(sandbox: SandboxServer) -> None:
    k = js_id()
    status, html = get(f"{sandbox.url}/mixed/app/{k}")
    assert status == 200
    assert 'class="item"' not in html
    sel = Selector(text=html)
    assert not sel.css("article, .item, h1.name")
    assert sel.css("div#app").get() == '<div id="app"></div>'
    assert sel.css("noscript::text").get() == "Please enable JavaScript to view this page."
    data = json.loads(sel.css("script#page-data::text").get())["item"]
    # The same fields the static template would show for this item.
    static = Selector(text=mixed.item_page(k).decode()).css("article.item")
    assert data == {
        "id": int(static.attrib["data-id"]), "name": static.css("h1.name::text").get(),
        "price": static.css("span.price::text").get(), "desc": static.css("p.desc::text").get(),
    }  # fmt: skip


@pytest.mark.parametrize(
    "path",
    ["/mixed/item/{js}", "/mixed/app/{static}", "/mixed/item/0", f"/mixed/item/{ITEMS + 1}",
     f"/mixed/app/{ITEMS + 1}", "/mixed/page/0", "/mixed/page/21", "/mixed/page/x", "/mixed/detail/1",
     "/mixed/item/1/extra", "/mixed"],
)  # fmt: skip
def test_wrong_template_and_out_of_range_are_404(sandbox: SandboxServer, path: str) -> None:
    status, html = get(sandbox.url + path.format(js=js_id(), static=static_id()))
    assert status == 404
    assert Selector(text=html).css("title::text").get() == "404 Not Found"


# -- a real browser --------------------------------------------------------------------------------


@pytest.mark.browser
def test_js_item_renders_in_chromium(sandbox: SandboxServer, playwright) -> None:
    k = js_id()
    browser = playwright.chromium.launch(executable_path=playwright.executable, headless=True)
    try:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{sandbox.url}/mixed/app/{k}")
        page.wait_for_selector("article.item")
        article = Selector(text=page.content()).css("article.item")
    finally:
        browser.close()
    assert errors == []
    assert article.attrib["data-id"] == str(k)
    assert article.css("h1.name::text").get() == mixed.item(k).name
    assert article.css("span.price::text").get() == mixed.item(k).price
