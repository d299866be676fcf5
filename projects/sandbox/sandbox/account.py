"""The account section: a single-page app that keeps its login in localStorage, not in a cookie.

``/account/page/<n>`` and ``/account/detail/<id>`` hold no data, only a script. It reads the
token ``account_token`` from localStorage; with one, it fetches ``/account/data/<n>`` (or
``/account/data/detail/<id>``) with ``Authorization: Bearer <token>`` and builds the quotes
markup (``div.quote``, ``li.next``). Without one (or when the API answers 401) it shows a
"Sign in" block (``div#signin``) linking to ``/account/login``.

``/account/login`` is a form whose script posts to ``/account/api/login`` (user and password
as for ``/login``), stores the token it gets in localStorage and goes to ``next``. The token is
HMAC-signed, so the data API checks it without server state. No cookie is ever set: a crawler
with cookies alone sees the shell and the sign-in block, never the data; only a browser context
started from the saved localStorage (a Playwright storage_state) gets through.

A login posted with ``limit=<N>`` gets a token ``acct-limit<N>-...`` that the data API
suspends after N requests (403), like a site suspending an account that crawls too much; the
page then shows an "Account suspended" block (``div#suspended``) and keeps the token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from html import escape

from . import pages
from .content import page_quotes, quote

PREFIX = b"/account/"
DATA_PREFIX = b"/account/data/"
STORAGE_KEY = "account_token"

APP_JS = """(function () {
  var cfg = JSON.parse(document.getElementById('account-config').textContent);
  var app = document.getElementById('app');
  function el(tag, cls, text, parent) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    (parent || app).appendChild(e);
    return e;
  }
  function signin() {
    var box = el('div', 'signin');
    box.id = 'signin';
    el('h1', '', 'Sign in required', box);
    var a = el('a', '', 'Sign in', el('p', '', undefined, box));
    a.href = '/account/login?next=' + encodeURIComponent(location.pathname);
    document.documentElement.setAttribute('data-account', 'signed-out');
  }
  var token = window.localStorage.getItem(cfg.key);
  if (!token) { signin(); return; }
  fetch(cfg.data, {headers: {'Authorization': 'Bearer ' + token}}).then(function (r) {
    if (r.status === 401) { window.localStorage.removeItem(cfg.key); signin(); return null; }
    if (r.status === 403) {
      var box = el('div', 'suspended');
      box.id = 'suspended';
      el('h1', '', 'Account suspended', box);
      el('p', '', 'Too many requests from this account.', box);
      document.documentElement.setAttribute('data-account', 'suspended');
      return null;
    }
    return r.json();
  }).then(function (data) {
    if (!data) { return; }
    if (data.quote) {
      var q = data.quote;
      el('h1', 'title', 'Quote #' + q.id + ' by ' + q.author);
      el('div', 'quote-text', q.text);
      var p = el('p', '', 'by ');
      el('span', 'author', q.author, p);
      p.appendChild(document.createTextNode(', born '));
      el('span', 'born', q.born, p);
      return;
    }
    data.quotes.forEach(function (q) {
      var box = el('div', 'quote');
      el('span', 'text', q.text, box);
      var by = el('span', '', 'by ', box);
      el('small', 'author', q.author, by);
      el('a', '', ' (about)', by).href = '/account/detail/' + q.id;
    });
    var pager = el('ul', 'pager');
    if (data.next) { el('a', '', 'Next \\u2192', el('li', 'next', undefined, pager)).href = data.next; }
    document.documentElement.setAttribute('data-account', 'signed-in');
  });
})();"""

LOGIN_JS = """(function () {
  var form = document.getElementById('account-login');
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    fetch('/account/api/login', {method: 'POST', body: new URLSearchParams(new FormData(form))})
      .then(function (r) { return r.json().then(function (body) { return [r.status, body]; }); })
      .then(function (res) {
        if (res[0] !== 200) { document.getElementById('login-error').textContent = res[1].error; return; }
        window.localStorage.setItem('%(key)s', res[1].token);
        window.location.href = form.getAttribute('data-next');
      });
  });
})();"""


class Accounts:
    """Issues and checks the section's bearer tokens (HMAC-signed, no server state)."""

    def __init__(self, secret: str) -> None:
        self.key = hashlib.sha256(b"account-token:" + secret.encode()).digest()

    def issue(self, limit: int | None = None) -> str:
        """A new token; with ``limit``, one the data API suspends after that many requests."""
        nonce = secrets.token_hex(8)
        if limit:
            nonce = f"limit{limit}-{nonce}"
        return f"acct-{nonce}.{self._sign(nonce)}"

    @staticmethod
    def limit(token: str) -> int | None:
        """The N of an ``acct-limit<N>-...`` token (None for any other)."""
        if not token.startswith("acct-limit"):
            return None
        raw = token[len("acct-limit"):].split("-", 1)[0]
        return int(raw) if raw.isdigit() else None

    def valid(self, token: str) -> bool:
        if not token.startswith("acct-") or "." not in token:
            return False
        nonce, sig = token[5:].split(".", 1)
        return hmac.compare_digest(sig, self._sign(nonce))

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()[:32]


def shell_page(title: str, data_url: str) -> bytes:
    config = json.dumps({"key": STORAGE_KEY, "data": data_url}).replace("<", "\\u003c")
    body = (
        '<header><h1><a href="/">My account</a></h1></header>\n<div id="app"></div>\n'
        f'<script type="application/json" id="account-config">{config}</script>\n'
        f"<script>\n{APP_JS}\n</script>"
    )
    return pages.layout(title, body)


def login_page(next_url: str) -> bytes:
    body = (
        "<h1>Sign in to your account</h1>\n"
        f'<form id="account-login" data-next="{escape(next_url)}">\n'
        '<label>Username <input type="text" name="user" id="user" autocomplete="username"></label>\n'
        '<label>Password <input type="password" name="password" id="password" '
        'autocomplete="current-password"></label>\n'
        '<button type="submit" id="signin-button">Sign in</button>\n</form>\n'
        '<p id="login-error" class="error"></p>\n'
        f"<script>\n{LOGIN_JS % {'key': STORAGE_KEY}}\n</script>"
    )
    return pages.layout("Sign in", body)


def list_data(n: int, total: int) -> dict[str, object]:
    return {"page": n, "quotes": [q.as_json() for q in page_quotes(n)],
            "next": f"/account/page/{n + 1}" if n < total else None}


def detail_data(qid: int) -> dict[str, object]:
    return {"quote": quote(qid).as_json()}
