"""Bad input answers a 4xx in the one JSON error shape, never a 500 (issue 14, "Input bounds").

Each row of BAD_REQUESTS was a 500 found by a security pass: an id past the database's
range, a JSON body nested too deep, cookie text that escaped CookieFormatError, a token
whose ``sub`` is not a user id. The id check also walks every rule of the URL map, so a
route added later is covered without a new row.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from hitl_console.bounds import MAX_ID, MAX_JSON_DEPTH
from scrapy_hitl.learning import DomainCounters
from scrapy_hitl.state import apikeys, domains
from tests.support.console import forge_token

PAST_MAX = str(MAX_ID + 1)  # 2147483648: PostgreSQL's integer overflows
PAST_INT64 = str(2**63)  # 9223372036854775808: SQLite's INTEGER overflows
DOMAIN = "shop.example.com"


def nested(depth: int) -> str:
    """A JSON object whose "x" holds arrays ``depth`` levels deep in all (the object counts)."""
    return '{"x":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def cursor(key) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cookies(*entries, **fields) -> dict:
    return {"cookies": [{"name": "sid", "value": "v", **fields}, *entries]}


@pytest.fixture
def callers(hitl, reviewer):
    _info, key, _ = apikeys.create(hitl, "agent")
    return {"reviewer": reviewer, "agent": {"Authorization": f"Bearer {key}"}}


# (caller, method, path, request kwargs, status, error code)
BAD_REQUESTS = [
    # ids past the id columns' range: SQLite raised OverflowError past 2**63 - 1, PostgreSQL
    # "integer out of range" past 2**31 - 1
    pytest.param("reviewer", "POST", f"/api/v1/items/{PAST_INT64}/approve", {}, 404, "not_found", id="id-api-2**63"),
    pytest.param("reviewer", "POST", f"/api/v1/items/{PAST_MAX}/approve", {}, 404, "not_found", id="id-api-2**31"),
    pytest.param("reviewer", "GET", f"/api/v1/consultations/{'9' * 20}", {}, 404, "not_found", id="id-api-20-digits"),
    pytest.param("reviewer", "GET", f"/interventions/{PAST_INT64}", {}, 404, "not_found", id="id-page-2**63"),
    pytest.param("reviewer", "GET", f"/items/{'1' * 5000}", {}, 404, "not_found", id="id-page-5000-digits"),
    pytest.param("reviewer", "GET", "/api/v1/items/-1", {}, 404, "not_found", id="id-negative"),
    # JSON bodies nested past the limit: RecursionError at ~1,000 levels
    pytest.param("agent", "POST", "/api/v1/consultations", {"data": nested(1000)}, 400, "bad_request",
                 id="deep-json-consultations"),
    pytest.param("reviewer", "PATCH", "/api/v1/items/1", {"data": nested(1000)}, 400, "bad_request",
                 id="deep-json-items"),
    pytest.param("reviewer", "PUT", f"/api/v1/sessions/{DOMAIN}", {"data": nested(100_000)}, 400, "bad_request",
                 id="deep-json-sessions"),
    pytest.param("reviewer", "PUT", f"/api/v1/sessions/{DOMAIN}", {"data": nested(MAX_JSON_DEPTH + 1)}, 400,
                 "bad_request", id="json-one-level-too-deep"),
    # cookie input that escaped CookieFormatError
    pytest.param("reviewer", "PUT", f"/api/v1/sessions/{DOMAIN}", {"json": cookies(url="http://[::1")}, 422,
                 "invalid_cookies", id="cookie-url-bad-ipv6"),
    pytest.param("reviewer", "PUT", f"/api/v1/sessions/{DOMAIN}", {"json": cookies(expirationDate=10**400)}, 422,
                 "invalid_cookies", id="cookie-expiry-int-past-float"),
    pytest.param("reviewer", "PUT", f"/api/v1/sessions/{DOMAIN}", {"json": {"cookies": "[" * 100_000}}, 422,
                 "invalid_cookies", id="cookie-text-deep-json"),
    pytest.param("reviewer", "PUT", f"/api/v1/sessions/{DOMAIN}",
                 {"json": {"cookies": '[{"name": "a", "value": ' + "1" * 4301 + "}]"}}, 422, "invalid_cookies",
                 id="cookie-text-4301-digit-int"),
    # an int in a body that reaches SQL: SQLite raised OverflowError
    pytest.param("reviewer", "POST", "/api/v1/items/1/restore", {"json": {"version": 2**63}}, 422, "invalid",
                 id="body-version-2**63"),
    # cursors are client input too: an int past the range, JSON nested past recursion
    pytest.param("reviewer", "GET", f"/api/v1/interventions?cursor={cursor([2**63])}", {}, 400, "bad_cursor",
                 id="cursor-int-2**63"),
    pytest.param("reviewer", "GET", f"/api/v1/items?cursor={raw_cursor('[' * 5000)}", {}, 400, "bad_cursor",
                 id="cursor-deep-json"),
    # an id in the query: PostgreSQL's INTEGER is 32 bits
    pytest.param("reviewer", "GET", f"/api/v1/consultations?api_key_id={PAST_MAX}", {}, 400, "bad_request",
                 id="query-id-2**31"),
]


@pytest.mark.parametrize(("caller", "method", "path", "kwargs", "status", "error"), BAD_REQUESTS)
def test_bad_input_is_a_4xx_in_the_one_error_shape(client, callers, caller, method, path, kwargs, status, error):
    if "data" in kwargs:
        kwargs = {**kwargs, "content_type": "application/json"}
    headers = {**callers[caller], "Accept": "application/json"}
    response = client.open(path, method=method, headers=headers, **kwargs)
    assert (response.status_code, response.json["error"]) == (status, error), response.json
    assert set(response.json) == {"error", "detail"}


@pytest.mark.parametrize("limit", ["²", "1" * 5000])
def test_a_history_limit_int_cannot_read_is_400(client, reviewer, hitl, limit):
    """"²" passed str.isdigit() and then failed int(); 5,000 digits passed it and failed int()."""
    counters = DomainCounters()
    counters.record(engine="http", ok=True, status=200)
    domains.apply_counters(hitl.db, {DOMAIN: counters}, min_attempts=1000, block_rate=0.8)
    response = client.get(f"/api/v1/domains/{DOMAIN}/history", query_string={"limit": limit}, headers=reviewer)
    assert (response.status_code, response.json["error"]) == (400, "bad_request")


def test_a_body_at_the_depth_limit_is_read(client, reviewer):
    """64 levels is allowed: the limit refuses only what is deeper."""
    body = '{"cookies": "a=1", "x": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    response = client.put(f"/api/v1/sessions/{DOMAIN}", data=body, content_type="application/json",
                          headers=reviewer)
    assert response.status_code == 201, response.json


@pytest.mark.parametrize("sub", ["abc", "", "1.5", "-1", "²", str(MAX_ID + 1), str(10**20)])
def test_a_validly_signed_token_whose_sub_is_not_a_user_id_is_401(app, client, users, sub):
    token = forge_token(app.extensions["hitl_jwt_key"], claims={"sub": sub})
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "detail": "invalid token"}


def test_a_cookie_expiring_after_the_year_9999_is_kept_as_9999(client, reviewer):
    """An expiry past what a datetime holds (1e300 failed datetime.fromtimestamp in the
    vault) is capped, as a browser caps a cookie's lifetime, rather than refused."""
    body = cookies({"name": "cf", "value": "v", "expires": 1e300}, domain=DOMAIN)
    response = client.put(f"/api/v1/sessions/{DOMAIN}", json=body, headers=reviewer)
    assert response.status_code == 201, response.json
    assert response.json["expires_at"].startswith("9999-12-31T23:59:59")


# --- every id route, from the URL map ----------------------------------------------------------


def id_routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every rule with an ``int`` part, whoever registered it."""
    routes = []
    for rule in app.url_map.iter_rules():
        if "<int:" in rule.rule:
            routes += [(method, rule.rule) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return routes


def fill(template: str, value: str) -> str:
    return re.sub(r"<int:[a-z_]+>", value, re.sub(r"<(?!int:)(?:[a-z]+:)?([a-z_]+)>", "x", template))


@pytest.mark.parametrize("value", [PAST_MAX, PAST_INT64, "9" * 20, "1" * 5000])
def test_every_id_route_answers_404_past_the_range(app, client, admin, value):
    routes = id_routes(app)
    assert len(routes) >= 30  # the API's and the pages' id routes (32 when written)
    answers = {}
    for method, template in routes:
        response = client.open(fill(template, value), method=method, json={},
                               headers={**admin, "Accept": "application/json"})
        answers[method, template] = (response.status_code, response.json and response.json["error"])
    assert {route: a for route, a in answers.items() if a != (404, "not_found")} == {}


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_largest_id_reaches_the_database_and_is_not_found(app, client, admin):
    """MAX_ID is still routed, and the database answers "no such row", not an overflow."""
    answers = {}
    for method, template in id_routes(app):
        if template.startswith("/ws/"):
            continue  # a websocket handshake, not a lookup
        response = client.open(fill(template, str(MAX_ID)), method=method, json={},
                               headers={**admin, "Accept": "application/json"})
        answers[method, template] = response.status_code
    assert {route: s for route, s in answers.items() if not 400 <= s < 500} == {}


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_ints_in_cursors_bodies_and_tokens_at_and_past_the_range(app, client, admin):
    """At MAX_ID each reaches the database and finds nothing; past it each is refused first."""
    key = app.extensions["hitl_jwt_key"]
    answers = {}
    for value in (MAX_ID, MAX_ID + 1):
        token = {"Authorization": f"Bearer {forge_token(key, claims={'sub': str(value)})}"}
        for name, method, path, body, headers in [
            ("cursor", "GET", f"/api/v1/interventions?cursor={cursor([value])}", None, admin),
            ("users cursor", "GET", f"/api/v1/users?cursor={cursor([value])}", None, admin),
            ("restore version", "POST", "/api/v1/items/1/restore", {"version": value}, admin),
            ("token sub", "GET", "/api/v1/auth/me", None, token),
        ]:
            response = client.open(path, method=method, json=body, headers=headers)
            answers[name, value] = (response.status_code, response.json.get("error"))
    assert answers == {
        ("cursor", MAX_ID): (200, None), ("cursor", MAX_ID + 1): (400, "bad_cursor"),
        ("users cursor", MAX_ID): (200, None), ("users cursor", MAX_ID + 1): (400, "bad_cursor"),
        ("restore version", MAX_ID): (404, "not_found"), ("restore version", MAX_ID + 1): (422, "invalid"),
        ("token sub", MAX_ID): (401, "unauthorized"), ("token sub", MAX_ID + 1): (401, "unauthorized"),
    }
