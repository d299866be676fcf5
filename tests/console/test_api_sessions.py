"""The sessions API on the real vault: listing, replacing and deleting, never showing a value."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from flask import request_finished

from hitl_console.api import encode_cursor
from hitl_console.cli import main as cli
from scrapy_hitl.cookies import Cookie

DOMAIN = "shop.example.com"
SECRETS = ("SECRET-SID-VALUE", "SECRET-CF-VALUE", "SECRET-OLD-VALUE", "SECRET-UA-VALUE")
COOKIE_LIST = [
    {"name": "sid", "value": SECRETS[0], "domain": f".{DOMAIN}", "path": "/"},
    {"name": "cf_clearance", "value": SECRETS[1], "domain": DOMAIN, "httpOnly": True,
     "expirationDate": 4102444800},
]
COOKIES_TXT = (
    "# Netscape HTTP Cookie File\n"
    f".{DOMAIN}\tTRUE\t/\tFALSE\t0\tsid\t{SECRETS[0]}\n"
    f"{DOMAIN}\tFALSE\t/\tTRUE\t4102444800\tcf_clearance\t{SECRETS[1]}\n"
)


@pytest.fixture(autouse=True)
def no_value_is_ever_sent(app):
    """Every response body of every test here is checked for cookie values and the UA."""
    bodies = []

    def record(sender, response, **extra):
        bodies.append(response.get_data(as_text=True))

    request_finished.connect(record, app)
    yield bodies
    request_finished.disconnect(record, app)
    leaked = [b for b in bodies if any(secret in b for secret in SECRETS)]
    assert leaked == []


def store(hitl, domain, value=SECRETS[2]):
    return hitl.vault.put(domain, [Cookie("old", value, domain, "/")], captured_by="test")


def session_events(hitl):
    return [(e.type, e.domain, e.payload) for e in hitl.events.read(count=10_000)
            if e.type.startswith("session.")]


# --- read ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "pages"), [(1, 5), (2, 3), (5, 1)])
def test_sessions_page_by_domain_without_duplicates(client, reviewer, hitl, limit, pages):
    domains = ["e.example", "a.example", "d.example", "b.example", "c.example"]
    for d in domains:
        store(hitl, d)
    items, cursor, n = [], None, 0
    while True:
        url = f"/api/v1/sessions?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=reviewer).json
        items, cursor, n = items + body["items"], body["next_cursor"], n + 1
        if cursor is None:
            break
    assert [s["domain"] for s in items] == sorted(domains) and n == pages


def test_session_detail_shows_names_and_dates_only(client, reviewer, hitl):
    hitl.vault.put(DOMAIN, [Cookie.from_dict(c) for c in COOKIE_LIST], user_agent=SECRETS[3],
                   source_format="cookie-editor-json", captured_by="ann")
    body = client.get(f"/api/v1/sessions/{DOMAIN}", headers=reviewer).json
    assert body["domain"] == DOMAIN and body["health"] == "unknown"
    assert body["cookie_names"] == ["cf_clearance", "sid"]
    assert body["source_format"] == "cookie-editor-json" and body["captured_by"] == "ann"
    assert body["captured_at"] and body["expires_at"].startswith("2100-01-01")
    assert "user_agent" not in body and "secret" not in body


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/v1/sessions/nowhere.example", 404, "not_found"),
        ("/api/v1/sessions?cursor=%%%", 400, "bad_cursor"),
        ("/api/v1/sessions?cursor=" + encode_cursor([3]), 400, "bad_cursor"),
        ("/api/v1/sessions?cursor=" + encode_cursor([3, 4]), 400, "bad_cursor"),
        ("/api/v1/sessions/nowhere.example/alice", 404, "not_found"),
        ("/api/v1/sessions?limit=0", 400, "bad_request"),
    ],
)
def test_session_read_errors(client, reviewer, path, status, error):
    response = client.get(path, headers=reviewer)
    assert (response.status_code, response.json["error"]) == (status, error)


# --- replace ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda c, h: c.put(f"/api/v1/sessions/{DOMAIN}", headers=h,
                                        json={"cookies": COOKIE_LIST, "user_agent": SECRETS[3]}),
                     id="json-list"),
        pytest.param(lambda c, h: c.put(f"/api/v1/sessions/{DOMAIN}", headers=h,
                                        json={"cookies": COOKIES_TXT, "user_agent": SECRETS[3]}),
                     id="json-text"),
        pytest.param(lambda c, h: c.put(f"/api/v1/sessions/{DOMAIN}", headers=h, data={
            "cookies": (io.BytesIO(COOKIES_TXT.encode()), "cookies.txt"), "user_agent": SECRETS[3]},
            content_type="multipart/form-data"), id="multipart-file"),
        pytest.param(lambda c, h: c.put(f"/api/v1/sessions/{DOMAIN}", headers=h, data={
            "cookies_text": json.dumps(COOKIE_LIST), "user_agent": SECRETS[3]},
            content_type="multipart/form-data"), id="multipart-text"),
    ],
)
def test_put_replaces_the_session_and_tells_the_crawlers(client, reviewer, hitl, send):
    store(hitl, DOMAIN)
    response = send(client, reviewer)
    assert response.status_code == 200, response.json
    assert response.json["cookie_names"] == ["cf_clearance", "sid"]
    assert response.json["captured_by"] == "console:reviewer@example.com"
    session = hitl.vault.get(DOMAIN)
    assert {c.name: c.value for c in session.cookies} == {"sid": SECRETS[0], "cf_clearance": SECRETS[1]}
    assert session.user_agent == SECRETS[3]
    assert session_events(hitl) == [
        ("session.captured", DOMAIN,
         {"name": "default", "cookie_names": ["cf_clearance", "sid"], "origins": [],
          "expires_at": response.json["expires_at"]}),
    ]


def test_put_creates_a_missing_session_with_201(client, reviewer, hitl):
    response = client.put(f"/api/v1/sessions/{DOMAIN}", headers=reviewer, json={"cookies": COOKIE_LIST})
    assert response.status_code == 201
    assert client.get(f"/api/v1/sessions/{DOMAIN}", headers=reviewer).status_code == 200


@pytest.mark.parametrize(
    ("kwargs", "status", "error", "field"),
    [
        ({"json": {}}, 422, "invalid", "cookies"),
        ({"json": {"user_agent": "x"}}, 422, "invalid", "cookies"),
        ({"json": {"cookies": 42}}, 422, "invalid", "cookies"),
        ({"json": {"cookies": COOKIE_LIST, "user_agent": 5}}, 422, "invalid", "user_agent"),
        ({"json": {"cookies": "sid\tno tabs here\n# Netscape HTTP Cookie File"}}, 422, "invalid_cookies", "line"),
        ({"json": {"cookies": [{"name": "x", "value": "y", "domain": "other.test"}]}},
         422, "invalid_cookies", "cookies"),
        ({"data": "not json", "content_type": "application/json"}, 400, "bad_request", None),
        ({"data": {"note": "no file"}, "content_type": "multipart/form-data"}, 422, "invalid", "cookies"),
    ],
)
def test_put_validation(client, reviewer, hitl, kwargs, status, error, field):
    store(hitl, DOMAIN)
    response = client.put(f"/api/v1/sessions/{DOMAIN}", headers=reviewer, **kwargs)
    assert response.status_code == status, response.json
    assert response.json["error"] == error
    if field:
        assert field in response.json["detail"]
    assert [c.value for c in hitl.vault.get(DOMAIN).cookies] == [SECRETS[2]]  # untouched
    assert session_events(hitl) == []


# --- delete -------------------------------------------------------------------------------------


def test_delete_is_204_then_404_and_matches_the_cli(client, reviewer, hitl):
    store(hitl, DOMAIN)
    store(hitl, "blog.example.com")
    response = client.delete(f"/api/v1/sessions/{DOMAIN}", headers=reviewer)
    assert response.status_code == 204 and response.get_data() == b""
    assert client.get(f"/api/v1/sessions/{DOMAIN}", headers=reviewer).status_code == 404
    again = client.delete(f"/api/v1/sessions/{DOMAIN}", headers=reviewer)
    assert again.status_code == 404 and again.json["error"] == "not_found"
    result = CliRunner().invoke(cli, ["sessions", "delete", "blog.example.com"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert session_events(hitl) == [
        ("session.invalidated", DOMAIN, {"reason": "deleted", "name": None}),
        ("session.invalidated", "blog.example.com", {"reason": "deleted", "name": None}),
    ]


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/sessions"), ("get", f"/api/v1/sessions/{DOMAIN}"),
     ("put", f"/api/v1/sessions/{DOMAIN}"), ("delete", f"/api/v1/sessions/{DOMAIN}")],
)
def test_login_is_required(client, users, hitl, method, path):
    store(hitl, DOMAIN)
    response = getattr(client, method)(path, json={"cookies": COOKIE_LIST})
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert [c.value for c in hitl.vault.get(DOMAIN).cookies] == [SECRETS[2]]
