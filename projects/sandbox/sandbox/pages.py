"""HTML of every ordinary page, as bytes. Pure functions of their arguments, so callers cache them."""

from __future__ import annotations

import json
from functools import lru_cache
from html import escape
from typing import TYPE_CHECKING

from .content import page_quotes, quote

if TYPE_CHECKING:
    from .config import SiteConfig
    from .content import Quote

SECTION_NAMES = {
    "quotes": "Quotes to Scrape",
    "vip": "VIP Quotes",
    "members": "Members' Quotes",
    "members-redirect": "Members' Quotes",
    "protected": "Protected Quotes",
    "js": "Quotes (JavaScript)",
    "guarded": "Quotes (guarded)",
    "botd": "Quotes (BotD)",
    "drift": "Quotes (redesigned)",
}
CSS = (
    "<style>body{font-family:Georgia,serif;max-width:48em;margin:1em auto;padding:0 1em}"
    ".quote,.q-card{border:1px solid #ccc;border-radius:4px;margin:.6em 0;padding:.5em}"
    ".tag{background:#7ca3d6;color:#fff;padding:0 .3em;margin-right:.2em}"
    ".pager{list-style:none;display:flex;justify-content:space-between;padding:0}</style>\n"
)


def layout(title: str, body: str, *, head: str = CSS) -> bytes:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n{head}</head>\n<body>\n{body}\n</body>\n</html>\n"
    ).encode()


def _header(section: str) -> str:
    return (
        f'<header><h1><a href="/">{escape(SECTION_NAMES[section])}</a></h1>'
        '<p><a href="/login">Login</a></p></header>\n'
    )


def _tags(q: Quote) -> str:
    return "".join(f'<a class="tag">{escape(t)}</a> ' for t in q.tags)


def quote_item(section: str, q: Quote) -> str:
    return (
        '<div class="quote" itemscope itemtype="http://schema.org/CreativeWork">\n'
        f'<span class="text" itemprop="text">{escape(q.text)}</span>\n'
        f'<span>by <small class="author" itemprop="author">{escape(q.author)}</small> '
        f'<a href="/{section}/detail/{q.id}">(about)</a></span>\n'
        f'<div class="tags">Tags: {_tags(q)}</div>\n</div>\n'
    )


def drift_item(q: Quote) -> str:
    tags = "".join(f'<li class="q-tag">{escape(t)}</li>' for t in q.tags)
    return (
        f'<article class="q-card" data-quote-id="{q.id}">\n<p class="q-body">{escape(q.text)}</p>\n'
        f'<footer class="q-meta"><span class="q-author">{escape(q.author)}</span> '
        f'<a class="q-link" href="/drift/detail/{q.id}">about</a></footer>\n'
        f'<ul class="q-tags">{tags}</ul>\n</article>\n'
    )


def pager(section: str, page: int, total: int) -> str:
    """The ``li.previous`` / ``li.next`` links of a paginated section."""
    items = []
    if page > 1:
        items.append(f'<li class="previous"><a href="/{section}/page/{page - 1}">&larr; Previous</a></li>')
    if page < total:
        items.append(f'<li class="next"><a href="/{section}/page/{page + 1}">Next &rarr;</a></li>')
    return f'<nav><ul class="pager">{"".join(items)}</ul></nav>\n'


@lru_cache(maxsize=1024)
def quote_list_page(section: str, page: int, total: int, drift_after: int | None = None) -> bytes:
    """Page ``page`` of ``total``; with ``drift_after`` set, pages after it use the new markup."""
    drifted = drift_after is not None and page > drift_after
    items = "".join(drift_item(q) if drifted else quote_item(section, q) for q in page_quotes(page))
    body = f"{_header(section)}<main>\n{items}{pager(section, page, total)}</main>"
    return layout(f"{SECTION_NAMES[section]} - page {page}", body)


@lru_cache(maxsize=1024)
def quote_detail_page(section: str, qid: int) -> bytes:
    q = quote(qid)
    page = (qid - 1) // 10 + 1
    body = (
        f'{_header(section)}<main class="quote-detail">\n<h1 class="title">Quote #{q.id} by '
        f'{escape(q.author)}</h1>\n<div class="quote-text">{escape(q.text)}</div>\n'
        f'<p>by <span class="author">{escape(q.author)}</span>, born '
        f'<span class="born">{escape(q.born)}</span></p>\n<div class="tags">Tags: {_tags(q)}</div>\n'
        f'<p><a href="/{section}/page/{page}">Back to page {page}</a></p>\n</main>'
    )
    return layout(f"{q.author}: quote #{q.id}", body)


# Builds the same markup as quote_item()/quote_detail_page() with the DOM API, so the raw HTML
# contains no "quote" class at all: only a browser sees div.quote.
JS_RENDER = """(function () {
  var data = JSON.parse(document.getElementById('page-data').textContent);
  var app = document.getElementById('app');
  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    (parent || app).appendChild(e);
    return e;
  }
  function tags(q, parent) {
    var box = el('div', 'tags', 'Tags: ', parent);
    q.tags.forEach(function (t) { el('a', 'tag', t, box); box.appendChild(document.createTextNode(' ')); });
  }
  if (data.quote) {
    var q = data.quote;
    el('h1', 'title', 'Quote #' + q.id + ' by ' + q.author);
    el('div', 'quote-text', q.text);
    var p = el('p', '', 'by ');
    el('span', 'author', q.author, p);
    p.appendChild(document.createTextNode(', born '));
    el('span', 'born', q.born, p);
    tags(q);
    return;
  }
  data.quotes.forEach(function (q) {
    var box = el('div', 'quote');
    el('span', 'text', q.text, box);
    var by = el('span', '', 'by ', box);
    el('small', 'author', q.author, by);
    el('a', '', ' (about)', by).href = '/js/detail/' + q.id;
    tags(q, box);
  });
  var pager = el('ul', 'pager');
  if (data.next) { el('a', '', 'Next \\u2192', el('li', 'next', undefined, pager)).href = data.next; }
})();"""


def _js_page(title: str, data: dict[str, object]) -> bytes:
    # "<" escaped as \\u003c keeps the JSON valid and makes "</script>" inside it impossible.
    blob = json.dumps(data).replace("<", "\\u003c")
    body = (
        '<div id="app"></div>\n<noscript>Please enable JavaScript to view this page.</noscript>\n'
        f'<script type="application/json" id="page-data">{blob}</script>\n<script>\n{JS_RENDER}\n</script>'
    )
    return layout(title, body)


@lru_cache(maxsize=1024)
def js_list_page(page: int, total: int) -> bytes:
    data = {
        "page": page,
        "quotes": [q.as_json() for q in page_quotes(page)],
        "next": f"/js/page/{page + 1}" if page < total else None,
    }
    return _js_page(f"{SECTION_NAMES['js']} - page {page}", data)


@lru_cache(maxsize=1024)
def js_detail_page(qid: int) -> bytes:
    q = quote(qid)
    return _js_page(f"{q.author}: quote #{q.id}", {"quote": q.as_json()})


STATIC_FILLER = (
    "This page is part of the sandbox benchmark set. It is deliberately small and has no "
    "images, scripts or stylesheets, so a crawl of it measures the crawler and not the server. "
    "Each page links to the next two pages, so a crawler that starts on page 1 and follows every "
    "link discovers the whole set, whatever its concurrency and its request ordering. The text "
    "below the quote is filler that brings the page to about one kilobyte, the size of a small "
    "listing page once boilerplate is removed."
)


@lru_cache(maxsize=None)  # bounded by --static-pages; about --static-page-kb KB each
def static_page(page: int, total: int, kb: int = 1) -> bytes:
    q = quote(page)
    links = "".join(
        f'<li class="{cls}"><a href="/static/page/{n}">{label}</a></li>'
        for cls, n, label in (("next", page + 1, "Next"), ("skip", page + 2, "Skip ahead"))
        if n <= total
    )
    body = (
        f"<h1>Static page {page} of {total}</h1>\n"
        f'<div class="quote" data-id="{page}">\n<span class="text">{escape(q.text)}</span>\n'
        f'<small class="author">{escape(q.author)}</small>\n<div class="tags">{_tags(q)}</div>\n</div>\n'
        f'<ul class="pager">{links}</ul>\n<p class="filler">{STATIC_FILLER}</p>'
    )
    # Bigger pages (--static-page-kb) repeat the filler, as real pages carry far more
    # markup than content: it is what the parser and the block classifier must wade through.
    filler = f'\n<p class="filler">{STATIC_FILLER}</p>'
    body += filler * max(0, (kb * 1024 - len(body) - 400) // len(filler))
    return layout(f"Static page {page}", body, head='<meta name="description" content="sandbox benchmark page">\n')


def index_page(config: SiteConfig) -> bytes:
    links = (
        ("/quotes/page/1", "Quotes", "open, paginated quotes"),
        ("/vip/page/1", "VIP", "403 unless cookie vip_pass is set"),
        ("/members/page/1", "Members", "401 unless logged in"),
        ("/members-redirect/page/1", "Members (redirect)", "302 to /login unless logged in"),
        ("/login", "Login", "user demo, password demo"),
        ("/account/page/1", "Account", "a single-page app whose login (demo/demo) lives in localStorage"),
        ("/protected/page/1", "Protected", "Cloudflare-like challenge"),
        ("/js/page/1", "JavaScript", "rendered in the browser only"),
        ("/guarded/page/1", "Guarded", "data only for a browser without automation markers"),
        ("/botd/page/1", "BotD", "data only for a browser that the BotD bot detector lets through"),
        ("/drift/page/1", "Drift", f"markup changes after page {config.drift_after}"),
        ("/mixed/page/1", "Mixed shop",
         f"{config.mixed_items} items, {config.mixed_js_share:.0%} of them rendered by JavaScript"),
        ("/catalog/page/1", "Catalog", "products with missing, odd and outlier prices"),
        ("/static/page/1", "Static bench", f"{config.static_pages} tiny pages"),
        ("/health", "Health", "returns ok"),
        ("/__sandbox/hits", "Hit counts", "JSON"),
    )
    items = "".join(
        f'<li><a href="{href}">{name}</a> &mdash; {escape(note)}</li>\n' for href, name, note in links
    )
    return layout("scrapy-hitl sandbox", f"<h1>scrapy-hitl sandbox</h1>\n<ul>\n{items}</ul>")


FORBIDDEN = (
    b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
    b"<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
NOT_FOUND = layout("404 Not Found", "<h1>Not Found</h1>\n<p>The requested URL was not found.</p>")


def message_page(title: str, message: str) -> bytes:
    return layout(title, f"<h1>{escape(title)}</h1>\n<p>{escape(message)}</p>")


def login_required_page(next_url: str, *, expired: bool) -> bytes:
    message = "Your session has expired. Please log in again." if expired else "Please log in."
    body = (
        f'<h1>Login required</h1>\n<p class="error">{message}</p>\n'
        f'<p><a href="/login?next={escape(next_url)}">Log in</a></p>'
    )
    return layout("Login required", body)


def login_page(next_url: str, error: str | None = None) -> bytes:
    err = f'<p class="error">{escape(error)}</p>\n' if error else ""
    body = (
        f"<h1>Log in</h1>\n{err}"
        '<form action="/login" method="post">\n'
        f'<input type="hidden" name="next" value="{escape(next_url)}">\n'
        '<label>Username <input type="text" name="user" autocomplete="username"></label>\n'
        '<label>Password <input type="password" name="password" autocomplete="current-password"></label>\n'
        '<button type="submit">Log in</button>\n</form>'
    )
    return layout("Login", body)
