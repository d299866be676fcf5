"""The mixed section: a shop whose item pages come from templates: static HTML, a JS app, or
(with ``--mixed-guarded-share``) a page behind the BotD bot detector.

Like a real shop, most item pages are plain HTML (``/mixed/item/<k>``) and a fixed share are
rendered in the browser from a different template (``/mixed/app/<k>``). Which items are JS-only is
chosen with a seeded shuffle, so the share is exact and the same set comes back in every run and
process. Listing pages (``/mixed/page/<p>``) are static and tell each link's tier in
``data-tier``, for the benchmark's "oracle" crawl. Every page is a pure function of its arguments
and cached.

Guarded items (``/mixed/guarded/<k>``, ``data-tier="stealth"``) load BotD (see :mod:`.botd`) and
build ``article.item`` from the page's JSON only when BotD says human; for a bot (a plain headless
Chromium) they write "Automation detected" into the body and keep the title. They are taken from
the same shuffle right after the JavaScript ids, so the JavaScript set does not change.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from html import escape

from .botd import BUNDLE_PATH
from .pages import layout, pager

PER_LISTING = 25
ADJECTIVES = (
    "Sturdy", "Copper", "Compact", "Vintage", "Folding", "Bamboo", "Cast-iron", "Wool",
    "Ceramic", "Linen", "Walnut", "Enamel", "Brass", "Cotton", "Glass", "Oak",
)  # fmt: skip
NOUNS = (
    "Kettle", "Lamp", "Chair", "Teapot", "Notebook", "Blanket", "Skillet", "Vase", "Clock",
    "Backpack", "Mug", "Stool", "Candle", "Shelf", "Scarf", "Tray", "Bowl",
)  # fmt: skip

# Builds the same markup as item_page() with the DOM API: the raw HTML has no "item" class.
APP_JS = """(function () {
  var item = JSON.parse(document.getElementById('page-data').textContent).item;
  var app = document.getElementById('app');
  var article = document.createElement('article');
  article.className = 'item';
  article.setAttribute('data-id', String(item.id));
  [['h1', 'name', item.name], ['span', 'price', item.price], ['p', 'desc', item.desc]].forEach(function (f) {
    var e = document.createElement(f[0]);
    e.className = f[1];
    e.textContent = f[2];
    article.appendChild(e);
  });
  app.appendChild(article);
})();"""


# The same article as APP_JS, built only for a browser BotD lets through.
GUARDED_JS = """import { load } from '%(bundle)s';

const item = JSON.parse(document.getElementById('page-data').textContent).item;
const app = document.getElementById('app');
const botd = await load({ monitoring: false });
const result = botd.detect();
if (result.bot) {
  const box = document.createElement('div');
  box.id = 'refusal';
  const h = document.createElement('h2');
  h.textContent = 'Automation detected';
  box.appendChild(h);
  app.appendChild(box);
} else {
  const article = document.createElement('article');
  article.className = 'item';
  article.setAttribute('data-id', String(item.id));
  [['h1', 'name', item.name], ['span', 'price', item.price], ['p', 'desc', item.desc]].forEach((f) => {
    const e = document.createElement(f[0]);
    e.className = f[1];
    e.textContent = f[2];
    article.appendChild(e);
  });
  app.appendChild(article);
}
document.documentElement.setAttribute('data-botd', result.bot ? 'bot' : 'human');
""" % {"bundle": BUNDLE_PATH.decode()}


@dataclass(frozen=True)
class Item:
    id: int
    name: str
    price: str
    desc: str

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "price": self.price, "desc": self.desc}


@lru_cache(maxsize=4096)
def item(k: int) -> Item:
    """Item number ``k`` (>= 1): the same name, price and description in every process."""
    adjective, noun = ADJECTIVES[k % len(ADJECTIVES)], NOUNS[(k * 7) % len(NOUNS)]
    cents = 199 + (k * 7919) % 9800  # £1.99 .. £99.98
    desc = f"A {adjective.lower()} {noun.lower()} from the sandbox shop, catalogue number {k:05d}."
    return Item(k, f"{adjective} {noun} #{k}", f"\u00a3{cents // 100}.{cents % 100:02d}", desc)


@lru_cache(maxsize=64)
def js_ids(items: int, share: float, seed: int) -> frozenset[int]:
    """The JS-only item ids: ids 1..items shuffled with ``Random(seed)``, the first round(items*share)."""
    ids = list(range(1, items + 1))
    random.Random(seed).shuffle(ids)  # an int seed is stable across runs and PYTHONHASHSEED
    return frozenset(ids[: round(items * share)])


@lru_cache(maxsize=64)
def guarded_ids(items: int, share: float, guarded_share: float, seed: int) -> frozenset[int]:
    """The BotD-guarded item ids: the round(items*guarded_share) ids after the JS-only ones in
    the same shuffle."""
    if not guarded_share:
        return frozenset()
    ids = list(range(1, items + 1))
    random.Random(seed).shuffle(ids)
    start = round(items * share)
    return frozenset(ids[start : start + round(items * guarded_share)])


def tier_of(k: int, items: int, share: float, guarded_share: float, seed: int) -> str:
    """What item ``k`` needs: "static", "browser" (JS-only) or "stealth" (behind BotD)."""
    if k in js_ids(items, share, seed):
        return "browser"
    return "stealth" if k in guarded_ids(items, share, guarded_share, seed) else "static"


def page_count(items: int) -> int:
    return math.ceil(items / PER_LISTING)


TEMPLATES = {"static": "item", "browser": "app", "stealth": "guarded"}  # tier -> URL template


def item_url(k: int, js: bool, tier: str | None = None) -> str:
    return f"/mixed/{TEMPLATES[tier or ('browser' if js else 'static')]}/{k}"


@lru_cache(maxsize=1024)
def listing_page(page: int, items: int, share: float, seed: int, guarded_share: float = 0.0) -> bytes:
    """Listing ``page``: links to items 25(page-1)+1 .. 25·page with their tier, and the pager."""
    first = (page - 1) * PER_LISTING + 1
    tiers = {k: tier_of(k, items, share, guarded_share, seed) for k in range(first, min(first + PER_LISTING, items + 1))}
    links = "".join(
        f'<li><a class="item" href="{item_url(k, False, tier)}" data-tier="{tier}">Item {k}</a></li>\n'
        for k, tier in tiers.items()
    )
    body = (
        f'<header><h1><a href="/">Sandbox Shop</a></h1></header>\n<main>\n'
        f'<ul class="items">\n{links}</ul>\n{pager("mixed", page, page_count(items))}</main>'
    )
    return layout(f"Sandbox Shop - page {page}", body)


@lru_cache(maxsize=None)  # bounded by --mixed-items
def item_page(k: int) -> bytes:
    """The static template: the item's markup in the HTML."""
    it = item(k)
    body = (
        f'<header><h1><a href="/">Sandbox Shop</a></h1></header>\n<main>\n'
        f'<article class="item" data-id="{k}"><h1 class="name">{escape(it.name)}</h1>'
        f'<span class="price">{escape(it.price)}</span><p class="desc">{escape(it.desc)}</p></article>\n</main>'
    )
    return layout(f"{it.name} - Sandbox Shop", body)


@lru_cache(maxsize=None)  # bounded by --mixed-items
def app_page(k: int) -> bytes:
    """The JS template: an app shell with the item as JSON; only a browser sees ``article.item``."""
    it = item(k)
    # "<" escaped as \\u003c keeps the JSON valid and makes "</script>" inside it impossible.
    blob = json.dumps({"item": it.as_json()}).replace("<", "\\u003c")
    body = (
        '<div id="app"></div>\n<noscript>Please enable JavaScript to view this page.</noscript>\n'
        f'<script type="application/json" id="page-data">{blob}</script>\n<script>\n{APP_JS}\n</script>'
    )
    return layout(f"{it.name} - Sandbox Shop", body)


@lru_cache(maxsize=None)  # bounded by --mixed-items
def guarded_page(k: int) -> bytes:
    """The guarded template: the item as JSON and BotD; ``article.item`` only for a human."""
    it = item(k)
    blob = json.dumps({"item": it.as_json()}).replace("<", "\\u003c")
    body = (
        '<div id="app"></div>\n<noscript>Please enable JavaScript to view this page.</noscript>\n'
        f'<script type="application/json" id="page-data">{blob}</script>\n<script type="module">\n{GUARDED_JS}</script>'
    )
    return layout(f"{it.name} - Sandbox Shop", body)
