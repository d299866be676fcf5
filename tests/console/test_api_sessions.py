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


# --- pools: add, probe, log in through a live page ------------------------------------------------


def test_post_adds_a_named_session_and_refuses_a_taken_name(client, reviewer, hitl):
    url = f"/api/v1/sessions/{DOMAIN}"
    first = client.post(url, headers=reviewer, json={"cookies": COOKIE_LIST, "name": "alice"})
    assert first.status_code == 201 and first.json["name"] == "alice"
    again = client.post(url, headers=reviewer, json={"cookies": COOKIE_LIST, "name": "alice"})
    assert again.status_code == 409 and again.json["error"] == "session_exists"
    assert "--replace" in again.json["detail"]["name"]
    replaced = client.post(url, headers=reviewer, json={"cookies": COOKIE_LIST, "name": "alice", "replace": True})
    assert replaced.status_code == 200
    client.post(url, headers=reviewer, json={"cookies": COOKIE_LIST, "name": "bob"})
    body = client.get(url, headers=reviewer).json
    assert [s["name"] for s in body["sessions"]] == ["alice", "bob"]
    assert {"uses", "errors", "error_score", "age_seconds"} <= set(body["sessions"][0])
    bad = client.post(url, headers=reviewer, json={"cookies": COOKIE_LIST, "name": "no spaces please"})
    assert bad.status_code == 422 and "name" in bad.json["detail"]
    gone = client.delete(f"{url}/alice", headers=reviewer)
    assert gone.status_code == 204
    assert [s["name"] for s in client.get(url, headers=reviewer).json["sessions"]] == ["bob"]


def test_a_storage_state_keeps_its_localstorage_and_a_bad_origin_is_refused(client, reviewer, hitl):
    origin = {"origin": f"https://{DOMAIN}", "localStorage": [{"name": "token", "value": SECRETS[2]}]}
    ok = client.put(f"/api/v1/sessions/{DOMAIN}", headers=reviewer,
                    json={"cookies": json.dumps({"cookies": COOKIE_LIST, "origins": [origin]})})
    assert ok.status_code == 201, ok.json
    assert ok.json["origins"] == [{"origin": f"https://{DOMAIN}", "keys": ["token"]}]
    assert hitl.vault.get(DOMAIN).origins == (origin,)
    bad = client.put(f"/api/v1/sessions/{DOMAIN}", headers=reviewer,
                     json={"cookies": COOKIE_LIST, "origins": [origin, {"origin": "not a url", "localStorage": []}]})
    assert bad.status_code == 422 and bad.json["error"] == "invalid_cookies"
    assert "origins entry 2" in bad.json["detail"]["problem"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://shop.example.com/account", "selector": "div[unclosed"}, "selector"),
        ({"url": "https://elsewhere.test/account"}, "url"),
        ({"url": "https://shop.example.com/account", "status": 999}, "status"),
    ],
)
def test_a_probe_that_cannot_work_is_refused_when_set(client, reviewer, hitl, body, field):
    response = client.put(f"/api/v1/sessions/{DOMAIN}/probe", headers=reviewer, json=body)
    assert (response.status_code, response.json["error"]) == (422, "invalid_probe"), response.json
    assert field in response.json["detail"]


def test_a_probe_is_set_and_shown_with_the_domain(client, reviewer, hitl):
    store(hitl, DOMAIN)
    response = client.put(f"/api/v1/sessions/{DOMAIN}/probe", headers=reviewer,
                          json={"url": f"https://{DOMAIN}/account", "selector": "a.logout"})
    assert response.status_code == 200
    health = client.get(f"/api/v1/sessions/{DOMAIN}", headers=reviewer).json["domain_health"]
    assert health["probe"] == {"url": f"https://{DOMAIN}/account", "selector": "a.logout", "status": None,
                               "browser": False}
    # checked in a browser (a login kept only in localStorage: docs/sessions.md)
    response = client.put(f"/api/v1/sessions/{DOMAIN}/probe", headers=reviewer,
                          json={"url": f"https://{DOMAIN}/account", "selector": "a.logout", "browser": True})
    assert response.status_code == 200 and response.json["probe"]["browser"] is True
    bad = client.put(f"/api/v1/sessions/{DOMAIN}/probe", headers=reviewer,
                     json={"url": f"https://{DOMAIN}/account", "browser": "yes"})
    assert (bad.status_code, bad.json["error"]) == (422, "invalid") and "browser" in bad.json["detail"]


LOGIN_URL = f"https://{DOMAIN}/login"


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({}, 422, "invalid", "url"),
        ({"url": "https://elsewhere.test/login"}, 422, "invalid", "url"),
        ({"url": "javascript:alert(1)"}, 422, "invalid", "url"),
        ({"url": LOGIN_URL, "tier": "static"}, 422, "invalid", "tier"),
        ({"url": LOGIN_URL, "name": "two words"}, 422, "invalid", "name"),
        ({"url": LOGIN_URL, "intervention_id": "7"}, 422, "invalid", "intervention_id"),
        ({"url": LOGIN_URL, "intervention_id": 424242}, 404, "not_found", None),
        ({"url": LOGIN_URL, "what": 1}, 422, "invalid", "what"),
        ({"url": LOGIN_URL}, 503, "no_worker", None),  # no hitl worker serves login pages
    ],
)
def test_login_page_bad_input(client, reviewer, hitl, body, status, error, field):
    response = client.post(f"/api/v1/sessions/{DOMAIN}/login", headers=reviewer, json=body)
    assert (response.status_code, response.json["error"]) == (status, error), response.json
    if field:
        assert field in response.json["detail"]
    assert hitl.redis.llen("hitl:sessions:login") == 0


def test_login_page_is_queued_for_a_worker_with_an_advisory_intervention(client, reviewer, hitl):
    from hitl_console import login_pages
    from scrapy_hitl.state import pauses

    hitl.redis.set(login_pages.ALIVE_KEY, "test-worker", ex=60)  # a worker is serving login pages
    response = client.post(f"/api/v1/sessions/{DOMAIN}/login", headers=reviewer,
                           json={"url": LOGIN_URL, "name": "alice", "tier": "stealth"})
    assert response.status_code == 202, response.json
    iid = response.json["intervention_id"]
    found = client.get(f"/api/v1/interventions/{iid}", headers=reviewer).json
    assert (found["type"], found["reason"], found["priority"]) == ("login_refresh", "login_requested", -1)
    assert DOMAIN not in pauses.paused_domains(hitl.redis)  # asking for a login pauses nothing
    queued = json.loads(hitl.redis.lpop(login_pages.QUEUE))
    assert {k: queued[k] for k in ("intervention_id", "domain", "url", "name", "tier")} == {
        "intervention_id": iid, "domain": DOMAIN, "url": LOGIN_URL, "name": "alice", "tier": "stealth"}
    closed = client.post(f"/api/v1/interventions/{iid}/cancel", headers=reviewer, json={})
    assert closed.status_code == 200, closed.json
    again = client.post(f"/api/v1/sessions/{DOMAIN}/login", headers=reviewer,
                        json={"url": LOGIN_URL, "intervention_id": iid})
    assert (again.status_code, again.json["error"]) == (409, "closed")


def test_a_block_fixed_with_a_session_teaches_the_domain_at_once_and_its_page_says_why(client, reviewer, hitl):
    from scrapy_hitl.state import interventions

    data, _ = interventions.open_or_update(hitl, type="manual_access", reason="http_403", domain=DOMAIN)
    response = client.post(f"/api/v1/interventions/{data['id']}/resolve", headers=reviewer,
                           json={"captured_session": {"cookies": COOKIE_LIST}})
    assert response.status_code == 200, response.json
    client.put(f"/api/v1/sessions/{DOMAIN}/probe", headers=reviewer, json={"url": f"https://{DOMAIN}/me"})
    domain = client.get(f"/api/v1/domains/{DOMAIN}", headers=reviewer).json
    assert domain["requires_session"] == "required"  # at once, not after HITL_LEARN_MIN_ATTEMPTS
    health = domain["session_health"]
    assert f"intervention {data['id']}" in health["required_reason"] and "http_403" in health["required_reason"]
    assert (health["sessions"], health["usable_sessions"]) == (1, 1)
    assert health["probe"] == {"url": f"https://{DOMAIN}/me", "selector": None, "status": 200, "browser": False}
