"""The guarded section: data only for a browser that passes a client-side automation check.

``/guarded/page/<n>`` and ``/guarded/detail/<id>`` hold no data, only a script. It looks for
automation markers (``navigator.webdriver``, "HeadlessChrome" in the user agent, no plugins, no
``window.chrome``). With any of them it renders an "Access denied" block (``div#bot-detected``)
and fetches nothing. Without them it sets the ``guard_ok`` cookie (an HMAC-signed token the page
carries) and fetches ``/guarded/data/<n>`` (or ``/guarded/data/detail/<id>``) with the header
``X-Guard: 1``; the data endpoint answers 403 JSON unless both are present. The script then
builds the quotes markup (``div.quote``, ``li.next``) with the DOM API.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import TYPE_CHECKING

from . import pages
from .content import page_quotes, quote

if TYPE_CHECKING:
    from twisted.web.server import Request

GUARD_COOKIE = b"guard_ok"
GUARD_HEADER = b"x-guard"
DATA_PREFIX = b"/guarded/data/"

GUARD_JS = """(function () {
  var cfg = JSON.parse(document.getElementById('guard-config').textContent);
  var app = document.getElementById('app');
  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    (parent || app).appendChild(e);
    return e;
  }
  var markers = [];
  if (navigator.webdriver === true) { markers.push('navigator.webdriver'); }
  if (/HeadlessChrome/.test(navigator.userAgent)) { markers.push('HeadlessChrome user agent'); }
  if (!navigator.plugins || navigator.plugins.length === 0) { markers.push('no plugins'); }
  if (!window.chrome) { markers.push('no window.chrome'); }
  if (markers.length) {
    document.title = 'Access denied';
    var box = el('div', 'blocked');
    box.id = 'bot-detected';
    box.setAttribute('data-markers', markers.join(','));
    el('h1', '', 'Access denied', box);
    el('p', 'block-reason', 'Access denied: automated browser detected', box);
    el('p', 'block-markers', 'Detected: ' + markers.join(', '), box);
    document.documentElement.setAttribute('data-guard', 'blocked');
    return;
  }
  document.cookie = 'guard_ok=' + cfg.token + '; path=/; SameSite=Lax';
  function tags(q, parent) {
    var box = el('div', 'tags', 'Tags: ', parent);
    q.tags.forEach(function (t) { el('a', 'tag', t, box); box.appendChild(document.createTextNode(' ')); });
  }
  function render(data) {
    if (data.quote) {
      var q = data.quote;
      el('h1', 'title', 'Quote #' + q.id + ' by ' + q.author);
      el('div', 'quote-text', q.text);
      var p = el('p', '', 'by ');
      el('span', 'author', q.author, p);
      p.appendChild(document.createTextNode(', born '));
      el('span', 'born', q.born, p);
      tags(q);
    } else {
      data.quotes.forEach(function (q) {
        var box = el('div', 'quote');
        el('span', 'text', q.text, box);
        var by = el('span', '', 'by ', box);
        el('small', 'author', q.author, by);
        el('a', '', ' (about)', by).href = '/guarded/detail/' + q.id;
        tags(q, box);
      });
      var pager = el('ul', 'pager', undefined, el('nav'));
      if (data.previous) {
        el('a', '', '\\u2190 Previous', el('li', 'previous', undefined, pager)).href = data.previous;
      }
      if (data.next) { el('a', '', 'Next \\u2192', el('li', 'next', undefined, pager)).href = data.next; }
    }
    document.documentElement.setAttribute('data-guard', 'ok');
  }
  fetch(cfg.data, {headers: {'X-Guard': '1'}, credentials: 'same-origin'})
    .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.json(); })
    .then(render)
    .catch(function (e) {
      el('p', 'error', 'Could not load the quotes: ' + e.message).id = 'guard-error';
      document.documentElement.setAttribute('data-guard', 'error');
    });
})();"""


class Guard:
    """Renders guarded pages with a signed ``guard_ok`` token, and gates the data endpoint."""

    def __init__(self, *, secret: str) -> None:
        self._key = secret.encode()

    def _mac(self, nonce: str) -> str:
        return hmac.new(self._key, f"guard|{nonce}".encode(), hashlib.sha256).hexdigest()[:40]

    def issue_token(self) -> str:
        nonce = secrets.token_hex(12)
        return f"{nonce}.{self._mac(nonce)}"

    def is_valid(self, token: bytes | None) -> bool:
        """True for a ``guard_ok`` value this server issued."""
        if not token:
            return False
        nonce, _, mac = token.decode("ascii", "replace").partition(".")
        return bool(nonce) and hmac.compare_digest(mac, self._mac(nonce))

    def page(self, title: str, data_url: str) -> bytes:
        """The HTML of a guarded page: no data, only the check-and-fetch script."""
        config = json.dumps({"token": self.issue_token(), "data": data_url}).replace("<", "\\u003c")
        body = (
            '<div id="app"></div>\n<noscript>Please enable JavaScript to view this page.</noscript>\n'
            f'<script type="application/json" id="guard-config">{config}</script>\n<script>\n{GUARD_JS}\n</script>'
        )
        return pages.layout(title, body)

    def denial(self, request: Request) -> dict[str, str] | None:
        """None when the data request carries a valid cookie and ``X-Guard: 1``, else the 403 body."""
        if not self.is_valid(request.received_cookies.get(GUARD_COOKIE)):
            return {"error": "forbidden", "reason": "missing or invalid guard_ok cookie"}
        if request.getHeader(GUARD_HEADER) != b"1":
            return {"error": "forbidden", "reason": "missing X-Guard header"}
        return None


def list_data(page: int, total: int, section: str = "guarded") -> dict[str, object]:
    return {
        "page": page,
        "quotes": [q.as_json() for q in page_quotes(page)],
        "previous": f"/{section}/page/{page - 1}" if page > 1 else None,
        "next": f"/{section}/page/{page + 1}" if page < total else None,
    }


def detail_data(qid: int) -> dict[str, object]:
    return {"quote": quote(qid).as_json()}
