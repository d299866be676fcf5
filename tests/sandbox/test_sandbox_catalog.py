"""The catalog section: products with a missing price, an odd price, an outlier, deterministic."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
from parsel import Selector
from sandbox import catalog, mixed

if TYPE_CHECKING:
    from sandbox import SandboxServer

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PAGES = 5  # the sandbox default


def get(url: str) -> tuple[int, str]:
    try:
        with OPENER.open(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def products(server: SandboxServer) -> dict[str, dict]:
    """Follow li.next from page 1: {sku: {name, price, stock}}."""
    found: dict[str, dict] = {}
    path: str | None = "/catalog/page/1"
    while path:
        status, body = get(server.url + path)
        assert status == 200
        sel = Selector(text=body)
        for card in sel.css("div.product"):
            found[card.attrib["data-sku"]] = {"name": card.css("h2.name::text").get(),
                                              "price": card.css("span.price::text").get(),
                                              "stock": card.css("span.stock::text").get()}
        path = sel.css("li.next a::attr(href)").get()
    return found


def test_every_product_once_with_its_defects(sandbox: SandboxServer) -> None:
    found = products(sandbox)
    assert list(found) == [f"SKU-{k:05d}" for k in range(1, PAGES * 10 + 1)]
    for k in range(1, PAGES * 10 + 1):
        p = found[f"SKU-{k:05d}"]
        assert p["name"] == mixed.item(k).name
        assert p["stock"] == ("Out of stock" if k % 9 == 0 else "In stock")
        expected = {4: None, 7: "Price on request"}.get(k % 10, "£4,999.00" if k % 50 == 39 else mixed.item(k).price)
        assert p["price"] == expected, k
    assert catalog.price(39) == "£4,999.00" and catalog.price(44) is None


@pytest.mark.parametrize("path", ["/catalog/page/0", f"/catalog/page/{PAGES + 1}", "/catalog/page/x",
                                  "/catalog/item/1"])
def test_out_of_range_is_404(sandbox: SandboxServer, path: str) -> None:
    assert get(sandbox.url + path)[0] == 404
