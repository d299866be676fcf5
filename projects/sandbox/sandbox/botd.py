"""The botd section: data only for a browser that a real bot-detection library lets through.

``/botd/page/<n>`` and ``/botd/detail/<id>`` hold no data, only a module script that runs
`BotD <https://github.com/fingerprintjs/BotD>`_ (``@fingerprintjs/botd`` from the npm registry,
installed by ``scripts/bootstrap.sh`` into ``projects/sandbox/assets/node_modules`` and served
by the sandbox itself at :data:`BUNDLE_PATH`, with its usage ping turned off: nothing leaves
the machine).

- **BotD says bot** (a plain headless Chromium: "HeadlessChrome" in the user agent and
  ``navigator.webdriver``): the script writes a refusal into the page body, ``div#refusal``
  with "Automation detected", and fetches nothing. Unlike the guarded section it leaves
  ``document.title`` alone, as real detectors do: the page keeps the site's own title.
- **BotD says human**: the same cookie-and-header gate as the guarded section (``guard_ok``,
  ``X-Guard: 1``) in front of ``/botd/data/<n>`` and ``/botd/data/detail/<id>``, then the quotes
  markup built with the DOM API.

Either way the script ends by setting ``<html data-botd="bot|human|error">``, with the BotD
detectors that fired in ``data-botd-detectors``.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import pages
from .guarded import Guard

BUNDLE_PATH = b"/assets/botd/botd.esm.js"
BUNDLE_FILE = Path(__file__).resolve().parents[1] / "assets" / "node_modules" / "@fingerprintjs" / "botd" / "dist" / "botd.esm.js"
DATA_PREFIX = b"/botd/data/"
MISSING_BUNDLE = (
    "// @fingerprintjs/botd is not installed: run scripts/bootstrap.sh "
    "(npm ci --prefix projects/sandbox/assets)\n"
    "throw new Error('@fingerprintjs/botd is not installed: run scripts/bootstrap.sh');\n"
)

# The quotes markup is the guarded section's (same classes), built after BotD's verdict.
BOTD_JS = """import { load } from '%(bundle)s';

const cfg = JSON.parse(document.getElementById('guard-config').textContent);
const app = document.getElementById('app');
const root = document.documentElement;
function el(tag, cls, text, parent) {
  const e = document.createElement(tag);
  if (cls) { e.className = cls; }
  if (text !== undefined) { e.textContent = text; }
  (parent || app).appendChild(e);
  return e;
}
function tags(q, parent) {
  const box = el('div', 'tags', 'Tags: ', parent);
  q.tags.forEach((t) => { el('a', 'tag', t, box); box.appendChild(document.createTextNode(' ')); });
}
function render(data) {
  if (data.quote) {
    const q = data.quote;
    el('h1', 'title', 'Quote #' + q.id + ' by ' + q.author);
    el('div', 'quote-text', q.text);
    const p = el('p', '', 'by ');
    el('span', 'author', q.author, p);
    p.appendChild(document.createTextNode(', born '));
    el('span', 'born', q.born, p);
    tags(q);
    return;
  }
  data.quotes.forEach((q) => {
    const box = el('div', 'quote');
    el('span', 'text', q.text, box);
    const by = el('span', '', 'by ', box);
    el('small', 'author', q.author, by);
    el('a', '', ' (about)', by).href = '/botd/detail/' + q.id;
    tags(q, box);
  });
  const pager = el('ul', 'pager', undefined, el('nav'));
  if (data.previous) { el('a', '', '\\u2190 Previous', el('li', 'previous', undefined, pager)).href = data.previous; }
  if (data.next) { el('a', '', 'Next \\u2192', el('li', 'next', undefined, pager)).href = data.next; }
}
function refuse(kind) {
  const box = el('div', 'refusal');
  box.id = 'refusal';
  el('h2', '', 'Automation detected', box);
  el('p', '', 'Your browser looks automated (' + kind + '). '
    + 'If you are a person, open this page in a regular browser.', box);
}
try {
  const botd = await load({ monitoring: false });
  const result = botd.detect();
  const detections = botd.getDetections();
  root.setAttribute('data-botd-detectors', Object.keys(detections).filter((k) => detections[k].bot).join(','));
  if (result.bot) {
    refuse(result.botKind);
    root.setAttribute('data-botd', 'bot');
  } else {
    document.cookie = 'guard_ok=' + cfg.token + '; path=/; SameSite=Lax';
    const r = await fetch(cfg.data, { headers: { 'X-Guard': '1' }, credentials: 'same-origin' });
    if (!r.ok) { throw new Error('HTTP ' + r.status); }
    render(await r.json());
    root.setAttribute('data-botd', 'human');
  }
} catch (e) {
  el('p', 'error', 'Could not load the quotes: ' + e.message).id = 'botd-error';
  root.setAttribute('data-botd', 'error');
}
""" % {"bundle": BUNDLE_PATH.decode()}


def bundle() -> tuple[int, bytes]:
    """(status, bytes) of BotD's browser bundle: 200 and the file, or 503 and a script that
    says how to install it."""
    try:
        return 200, BUNDLE_FILE.read_bytes()
    except FileNotFoundError:
        return 503, MISSING_BUNDLE.encode()


def page(guard: Guard, title: str, data_url: str) -> bytes:
    """The HTML of a botd page: no data, only the check-and-fetch module script."""
    config = json.dumps({"token": guard.issue_token(), "data": data_url}).replace("<", "\\u003c")
    body = (
        '<div id="app"></div>\n<noscript>Please enable JavaScript to view this page.</noscript>\n'
        f'<script type="application/json" id="guard-config">{config}</script>\n'
        f'<script type="module">\n{BOTD_JS}</script>'
    )
    return pages.layout(title, body)
