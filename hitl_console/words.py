"""Plain words for the console's codes: intervention types and reasons, run and item
statuses, and the "How to fix this" steps of each kind of intervention.

One source for the server (templates, the inbox API's sentences) and the browser: the pages'
scripts import the same tables from ``/words.js`` (:func:`as_js_module`). The raw code always
stays visible beside the words, in small type, so a reviewer can still search logs for it.
"""

from __future__ import annotations

import json
from typing import Any

# type -> (label, one line on what it means)
TYPES: dict[str, tuple[str, str]] = {
    "manual_access": ("Needs access", "The site refused the crawler; a person's session (cookies) lets it in."),
    "login_refresh": ("Login expired", "The saved session stopped working; log in again and give the crawler "
                                        "the new cookies."),
    "captcha_solve": ("Captcha to solve", "The site shows a challenge the browser tiers could not pass."),
    "selector_fix": ("Page layout changed", "Pages that should have data no longer match the spider's selectors."),
    "run_anomaly": ("Run looks unusual", "A finished run differs from the spider's earlier runs; check its data."),
}

# reason -> short label; an unknown reason (a signature's name) is shown with spaces
REASONS: dict[str, str] = {
    "http_403": "403 Forbidden",
    "http_401": "401 Unauthorized",
    "http_403_with_session": "403 even with the saved session",
    "login_redirect": "redirected to a login page",
    "hard_block": "hard block (IP or reputation)",
    "session_required": "the domain needs a logged-in session",
    "consecutive_failures": "many failures in a row",
    "selector_missing": "expected data missing",
    "no_items": "pages gave no items",
    "network_error": "network errors",
    "domain_without_items": "a domain gave no items",
    "item_count_drop": "far fewer items than usual",
    "error_rate": "more errors than usual",
    "block_rate": "more blocks than usual",
    "finish_reason": "the run ended abnormally",
}

# what the reviewer can do, said as a need in the inbox sentence
NEEDS: dict[str, str] = {
    "manual_access": "needs a logged-in session",
    "login_refresh": "needs fresh cookies",
    "captcha_solve": "needs a captcha solved",
    "selector_fix": "needs the selectors fixed",
    "run_anomaly": "needs a look at the data",
}

STATUSES: dict[str, str] = {
    "open": "open", "resolved": "resolved", "cancelled": "cancelled", "expired": "expired",
    "queued": "queued", "running": "running", "waiting_for_human": "waiting for a person",
    "completed": "completed", "failed": "failed",
    "pending_review": "held for review", "optional_review": "review optional", "delivered": "delivered",
    "approved": "approved", "rejected": "rejected", "skipped": "skipped",
    "pending": "waiting for an answer", "responded": "answered", "callback_sent": "answer delivered",
    "callback_failed": "answer not delivered", "timed_out": "timed out",
}

# "How to fix this": steps per type; a hard block gets its own (a captcha solve will not clear it)
HOWTO: dict[str, list[str]] = {
    "manual_access": [
        "Open the URL below in your own browser and get through (log in, accept the terms, ...).",
        "Export the cookies of that site: cookies.txt, Cookie-Editor JSON, a Playwright storage_state "
        "or a Cookie: header.",
        "Upload or paste them under Resolve: every parked request resumes with them, and the session "
        "is kept for the next runs.",
        "Or log in through the console: on the Sessions page, \"Log in through a live browser\" opens the "
        "site in the crawler's own browser, and the session it captures is the one the crawl uses.",
    ],
    "login_refresh": [
        "Log in to the site again in your browser with the crawler's account.",
        "Export the new cookies and upload or paste them under Resolve (or log in through a live browser "
        "on the Sessions page).",
        "The old session is marked invalid; the parked requests resume with the new one.",
    ],
    "captcha_solve": [
        "Open the live page below, if the crawler is still holding it, and solve the challenge there; "
        "press Continue.",
        "Or solve it in your own browser and upload the cookies it gave you under Resolve.",
    ],
    "hard_block": [
        "This is an IP or reputation block: solving a captcha will not clear it.",
        "Route the domain through a different proxy or IP (the spider's proxy settings), or wait for "
        "the block to lift.",
        "Then press Mark done: the parked requests are sent again.",
    ],
    "selector_fix": [
        "Compare the page below with what the spider expects: the layout probably changed.",
        "Fix the selectors (the selector fixer, or the spider's code), then press Mark done.",
    ],
    "run_anomaly": [
        "Open the run and look at its items and the monitors' findings below.",
        "When the data is fine (or dealt with), press \"I looked at the data\".",
    ],
}


def type_label(code: str | None) -> str:
    return TYPES.get(code or "", (_spaced(code), ""))[0]


def reason_label(code: str | None) -> str:
    return REASONS.get(code or "") or _spaced(code)


def howto(type_: str, reason: str | None = None) -> list[str]:
    """The steps for an intervention: its reason's own (a hard block) or its type's."""
    return HOWTO.get(reason or "") or HOWTO.get(type_, [])


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 cookie``, ``2 cookies``, ``1,834 requests``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def intervention_sentence(i: dict[str, Any]) -> str:
    """"403 Forbidden on shop.example.com — 1,834 requests waiting — needs a logged-in session"."""
    parts = [f"{reason_label(i.get('reason'))} on {i.get('domain') or '?'}"]
    if i.get("type") != "run_anomaly":
        parts.append(f"{plural(int(i.get('parked_count') or 0), 'request')} waiting")
    parts.append(NEEDS.get(str(i.get("type")), "needs a person"))
    return " — ".join(parts)


def _spaced(code: str | None) -> str:
    return (code or "").replace("_", " ").strip() or "–"


def as_js_module() -> str:
    """The tables as an ES module, for the pages' scripts (served at ``/words.js``)."""
    tables = {"TYPES": {k: {"label": v[0], "explain": v[1]} for k, v in TYPES.items()},
              "REASONS": REASONS, "NEEDS": NEEDS, "STATUSES": STATUSES, "HOWTO": HOWTO}
    return "".join(f"export const {name} = {json.dumps(value, ensure_ascii=False)};\n"
                   for name, value in tables.items())
