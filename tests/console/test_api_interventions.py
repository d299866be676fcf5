"""The interventions API, on the real state layer: SQLite, Redis, the vault and the parking lot."""

from __future__ import annotations

import io

import pytest

from hitl_console.app import create_app
from scrapy_hitl.state import interventions
from scrapy_hitl.state.parking import ParkEntry
from scrapy_hitl.state.runs import create_run

DOMAIN = "shop.example.com"
SECRETS = ("SECRET-SID-VALUE", "SECRET-CF-VALUE")
COOKIES_TXT = (
    "# Netscape HTTP Cookie File\n"
    f".{DOMAIN}\tTRUE\t/\tFALSE\t0\tsid\t{SECRETS[0]}\n"
    f"{DOMAIN}\tFALSE\t/\tTRUE\t4102444800\tcf_clearance\t{SECRETS[1]}\n"
)
COOKIE_LIST = [
    {"name": "sid", "value": SECRETS[0], "domain": f".{DOMAIN}", "path": "/"},
    {"name": "cf_clearance", "value": SECRETS[1], "domain": DOMAIN, "httpOnly": True},
]


def open_(hitl, type="manual_access", domain=DOMAIN, **kwargs):
    kwargs.setdefault("reason", "forbidden")
    kwargs.setdefault("spider", "shop")
    data, _created = interventions.open_or_update(hitl, type=type, domain=domain, **kwargs)
    return data["id"]


def park(hitl, spider, n, domain=DOMAIN):
    entries = [
        ParkEntry.build(domain=domain, fingerprint=f"{spider}-{domain}-{i}",
                        request={"url": f"https://{domain}/{spider}/{i}"}, reason="forbidden")
        for i in range(n)
    ]
    return hitl.parking.park(spider, entries)


def assert_no_cookie_values(response):
    text = response.get_data(as_text=True)
    assert not any(secret in text for secret in SECRETS)


# --- list ---------------------------------------------------------------------------------------


@pytest.fixture
def many(hitl):
    """Seven interventions over three domains and two runs; the first two closed."""
    create_run(hitl.db, "run-a", "shop", {}, "/tmp")
    create_run(hitl.db, "run-b", "shop", {}, "/tmp")
    ids = [
        open_(hitl, type=type_, domain=f"d{i % 3}.example", run_id="run-a" if i % 2 else "run-b")
        for i, type_ in enumerate(["manual_access", "login_refresh", "captcha_solve",
                                   "selector_fix", "manual_access", "login_refresh", "captcha_solve"])
    ]
    interventions.resolve(hitl, ids[0], note="", actor="test")
    interventions.cancel(hitl, ids[1], actor="test")
    return ids


def collect(client, headers, query="", limit=2):
    items, cursor, pages = [], None, 0
    while True:
        url = f"/api/v1/interventions?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        items += response.json["items"]
        cursor, pages = response.json["next_cursor"], pages + 1
        if cursor is None:
            return items, pages


def test_list_pages_newest_first_without_duplicates(client, reviewer, many):
    items, pages = collect(client, reviewer, limit=3)
    ids = [i["id"] for i in items]
    assert ids == sorted(many, reverse=True)  # every one, once, newest first
    assert pages == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("&status=open", lambda ids: ids[2:]),
        ("&status=resolved", lambda ids: ids[:1]),
        ("&status=cancelled", lambda ids: ids[1:2]),
        ("&type=manual_access", lambda ids: [ids[0], ids[4]]),
        ("&domain=d1.example", lambda ids: [ids[1], ids[4]]),
        ("&run_id=run-a", lambda ids: [ids[1], ids[3], ids[5]]),
        ("&status=open&domain=d0.example", lambda ids: [ids[3], ids[6]]),
        ("&domain=nowhere.example", lambda ids: []),
    ],
)
def test_list_filters_across_pages(client, reviewer, many, query, expected):
    items, _pages = collect(client, reviewer, query, limit=1)
    assert [i["id"] for i in items] == sorted(expected(many), reverse=True)


def test_list_items_carry_live_parked_counts(client, reviewer, hitl):
    open_id = open_(hitl)
    park(hitl, "shop", 3)
    park(hitl, "shop-api", 2)
    items = client.get("/api/v1/interventions", headers=reviewer).json["items"]
    assert [(i["id"], i["parked_count"]) for i in items] == [(open_id, 5)]


def test_run_anomaly_is_filtered_by_type_and_holds_no_parked_request(client, reviewer, hitl):
    blocked = open_(hitl)
    anomaly = open_(hitl, type="run_anomaly", reason="item_count_drop")
    park(hitl, "shop", 3)
    items = client.get("/api/v1/interventions?type=run_anomaly", headers=reviewer).json["items"]
    assert [(i["id"], i["type"], i["parked_count"]) for i in items] == [(anomaly, "run_anomaly", 0)]
    shown = client.get(f"/api/v1/interventions/{anomaly}", headers=reviewer).json
    assert (shown["parked_count"], shown["parked_requests"]) == (0, [])
    assert client.get(f"/api/v1/interventions/{blocked}", headers=reviewer).json["parked_count"] == 3


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("status=closed", "bad_request"),
        ("type=login", "bad_request"),
        ("limit=0", "bad_request"),
        ("limit=abc", "bad_request"),
        ("cursor=not-a-cursor", "bad_cursor"),
        ("cursor=WyJ4Il0", "bad_cursor"),  # ["x"]: well-formed, but not an id
    ],
)
def test_list_rejects_bad_parameters(client, reviewer, query, error):
    response = client.get(f"/api/v1/interventions?{query}", headers=reviewer)
    assert response.status_code == 400
    assert response.json["error"] == error


def test_login_is_required(client, users, hitl):
    intervention_id = open_(hitl)
    assert client.get("/api/v1/interventions").status_code == 401
    response = client.post(f"/api/v1/interventions/{intervention_id}/resolve",
                           json={"resolution": {"action": "done"}})
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert interventions.get(hitl, intervention_id)["status"] == "open"


# --- detail -------------------------------------------------------------------------------------


def test_detail_has_history_and_parked_requests(client, reviewer, hitl):
    intervention_id = open_(hitl, url=f"https://{DOMAIN}/1")
    open_(hitl, url=f"https://{DOMAIN}/2")  # touches the same one
    park(hitl, "shop", 2)
    body = client.get(f"/api/v1/interventions/{intervention_id}", headers=reviewer).json
    assert (body["id"], body["status"], body["parked_count"]) == (intervention_id, "open", 2)
    assert [h["action"] for h in body["history"]] == ["created", "updated"]
    assert set(body["history"][0]) == {"action", "actor", "detail", "at"}
    assert [p["url"] for p in body["parked_requests"]] == [f"https://{DOMAIN}/shop/0",
                                                          f"https://{DOMAIN}/shop/1"]


def test_detail_of_a_closed_one_has_no_parked_requests(client, reviewer, hitl):
    intervention_id = open_(hitl)
    interventions.cancel(hitl, intervention_id, actor="test")
    body = client.get(f"/api/v1/interventions/{intervention_id}", headers=reviewer).json
    assert body["status"] == "cancelled" and body["parked_requests"] == []


def test_detail_of_an_unknown_id_is_404(client, reviewer):
    response = client.get("/api/v1/interventions/999", headers=reviewer)
    assert response.status_code == 404 and response.json["error"] == "not_found"


# --- resolve ------------------------------------------------------------------------------------


def resolve(client, headers, intervention_id, **kwargs):
    return client.post(f"/api/v1/interventions/{intervention_id}/resolve", headers=headers, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"json": {"resolution": {"action": "cookies"}, "note": "logged in",
                               "captured_session": {"cookies": COOKIE_LIST, "user_agent": "UA/1"}}},
                     id="json-cookie-list"),
        pytest.param({"json": {"resolution": {"action": "cookies"}, "note": "logged in",
                               "captured_session": {"cookies": COOKIES_TXT, "user_agent": "UA/1"}}},
                     id="json-cookies-txt"),
        pytest.param({"data": {"cookies": (io.BytesIO(COOKIES_TXT.encode()), "cookies.txt"),
                               "note": "logged in", "user_agent": "UA/1"}},
                     id="multipart-file"),
        pytest.param({"data": {"cookies_text": COOKIES_TXT, "note": "logged in", "user_agent": "UA/1",
                               "action": "cookies"}},
                     id="multipart-text"),
    ],
)
def test_resolve_with_cookies_stores_the_session_and_resumes(client, reviewer, hitl, kwargs):
    create_run(hitl.db, "run-1", "shop", {}, "/tmp")
    intervention_id = open_(hitl, run_id="run-1")
    park(hitl, "shop", 3)
    response = resolve(client, reviewer, intervention_id, **kwargs)
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {"intervention", "session", "run", "run_status", "requests_resumed", "reruns"}
    assert body["reruns"] == {"jobs": [], "manual": []}  # its run is not waiting: nothing to queue again
    assert body["intervention"]["status"] == "resolved"
    assert body["intervention"]["resolved_by"] == "console:reviewer@example.com"
    assert body["intervention"]["note"] == "logged in"
    assert body["intervention"]["resolution"] == {"action": "cookies", "cookie_names": ["cf_clearance", "sid"]}
    assert body["session"]["cookie_names"] == ["cf_clearance", "sid"]
    assert (body["run"]["id"], body["run_status"]) == ("run-1", body["run"]["status"])
    assert body["requests_resumed"] == 3
    assert_no_cookie_values(response)
    session = hitl.vault.get(DOMAIN)  # really in the vault, values and all
    assert {c.name: c.value for c in session.cookies} == {"sid": SECRETS[0], "cf_clearance": SECRETS[1]}
    assert session.user_agent == "UA/1"
    history = client.get(f"/api/v1/interventions/{intervention_id}", headers=reviewer).json["history"]
    assert history[-1]["actor"] == "console:reviewer@example.com"


def test_resolve_done_with_a_note(client, reviewer, hitl):
    intervention_id = open_(hitl)
    park(hitl, "shop", 2)
    response = resolve(client, reviewer, intervention_id,
                       json={"resolution": {"action": "done"}, "note": "fixed the selector"})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["intervention"]["resolution"] == {"action": "done"}
    assert body["intervention"]["note"] == "fixed the selector"
    assert (body["session"], body["run"], body["run_status"], body["requests_resumed"]) == (None, None, None, 2)
    assert hitl.vault.get(DOMAIN) is None


def test_resolving_twice_is_409(client, reviewer, hitl):
    intervention_id = open_(hitl)
    done = {"json": {"resolution": {"action": "done"}}}
    assert resolve(client, reviewer, intervention_id, **done).status_code == 200
    again = resolve(client, reviewer, intervention_id, **done)
    assert again.status_code == 409 and again.json["error"] == "closed"


def test_resolve_unknown_id_is_404(client, reviewer):
    response = resolve(client, reviewer, 999, json={"resolution": {"action": "done"}})
    assert response.status_code == 404


def test_a_bad_cookies_txt_upload_is_422_naming_file_line_and_fix(client, reviewer, hitl):
    intervention_id = open_(hitl)
    bad = COOKIES_TXT + f"{DOMAIN}\tFALSE\t/\tsid2\n"
    response = resolve(client, reviewer, intervention_id,
                       data={"cookies": (io.BytesIO(bad.encode()), "my-cookies.txt")})
    assert response.status_code == 422
    detail = response.json["detail"]
    assert response.json["error"] == "invalid_cookies"
    assert (detail["source"], detail["line"], detail["format"]) == ("my-cookies.txt", 4, "netscape")
    assert "7 tab-separated fields" in detail["problem"] and "cookies.txt" in detail["fix"]
    assert detail["message"].startswith("my-cookies.txt, line 4")
    assert interventions.get(hitl, intervention_id)["status"] == "open"  # nothing applied
    assert hitl.vault.get(DOMAIN) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resolution": {"action": "cookies"}}, "captured_session"),
        ({"resolution": {"action": "done"}, "captured_session": {"cookies": COOKIE_LIST}}, "captured_session"),
        ({"resolution": {"action": "retry"}}, "resolution.action"),
        ({"resolution": "done"}, "resolution"),
        ({"note": 5}, "note"),
        ({"captured_session": {"cookies": 5}}, "captured_session.cookies"),
        ({"captured_session": {"cookies": COOKIE_LIST, "user_agent": 1}}, "captured_session.user_agent"),
        ({"captured_session": "sid=1"}, "captured_session"),
    ],
)
def test_resolve_validation_is_422_naming_the_field(client, reviewer, hitl, body, field):
    intervention_id = open_(hitl)
    response = resolve(client, reviewer, intervention_id, json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["detail"]
    assert interventions.get(hitl, intervention_id)["status"] == "open"


@pytest.mark.parametrize(
    ("cookies", "source", "line"),
    [
        ([{"name": "sid"}], "captured_session.cookies", 1),
        ([{"name": "a", "value": "1"}, "sid=2"], "captured_session.cookies", 2),
        ("[{\"name\": ", "captured_session.cookies", 1),
        ("", "captured_session.cookies", None),
    ],
)
def test_bad_json_cookies_are_422_with_source_and_line(client, reviewer, hitl, cookies, source, line):
    intervention_id = open_(hitl)
    response = resolve(client, reviewer, intervention_id, json={"captured_session": {"cookies": cookies}})
    assert response.status_code == 422
    assert (response.json["detail"]["source"], response.json["detail"]["line"]) == (source, line)


def test_cookies_for_another_site_are_422(client, reviewer, hitl):
    intervention_id = open_(hitl)
    other = [{"name": "sid", "value": "x", "domain": "other.example"}]
    response = resolve(client, reviewer, intervention_id, json={"captured_session": {"cookies": other}})
    assert response.status_code == 422 and "other.example" in response.json["detail"]["message"]


def test_not_json_is_400(client, reviewer, hitl):
    intervention_id = open_(hitl)
    response = resolve(client, reviewer, intervention_id, data="sid=1", content_type="text/plain")
    assert response.status_code == 400


def test_an_upload_over_the_limit_is_413_json(hitl_env, client, reviewer, hitl):
    intervention_id = open_(hitl)
    small = create_app({"max_upload_bytes": 2048})  # same database, same signing key
    try:
        big = (COOKIES_TXT * 100).encode()
        response = small.test_client().post(
            f"/api/v1/interventions/{intervention_id}/resolve", headers=reviewer,
            data={"cookies": (io.BytesIO(big), "cookies.txt")})
    finally:
        small.extensions["hitl"].close()
    assert response.status_code == 413
    assert response.json["error"] == "request_entity_too_large"
    assert interventions.get(hitl, intervention_id)["status"] == "open"


def test_a_cookie_authenticated_resolve_needs_the_csrf_header(client, auth, hitl):
    intervention_id = open_(hitl)
    login = auth.login("reviewer@example.com")  # the test client keeps the cookies
    body = {"json": {"resolution": {"action": "done"}}}
    denied = client.post(f"/api/v1/interventions/{intervention_id}/resolve", **body)
    assert denied.status_code == 403 and denied.json["error"] == "csrf_failed"
    assert interventions.get(hitl, intervention_id)["status"] == "open"
    ok = client.post(f"/api/v1/interventions/{intervention_id}/resolve",
                     headers={"X-CSRF-Token": login.json["csrf_token"]}, **body)
    assert ok.status_code == 200


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_fails_the_parked_requests(client, reviewer, hitl):
    intervention_id = open_(hitl)
    park(hitl, "shop", 3)
    response = client.post(f"/api/v1/interventions/{intervention_id}/cancel", headers=reviewer,
                           json={"note": "site gone"})
    assert response.status_code == 200
    body = response.json
    assert body["failed"] == 3
    assert (body["intervention"]["status"], body["intervention"]["note"]) == ("cancelled", "site gone")
    assert body["intervention"]["resolved_by"] == "console:reviewer@example.com"
    assert hitl.parking.domain_count(DOMAIN) == 0
    again = client.post(f"/api/v1/interventions/{intervention_id}/cancel", headers=reviewer)
    assert again.status_code == 409


def test_cancel_without_a_body_and_of_an_unknown_id(client, reviewer, hitl):
    intervention_id = open_(hitl)
    assert client.post(f"/api/v1/interventions/{intervention_id}/cancel", headers=reviewer).status_code == 200
    assert client.post("/api/v1/interventions/999/cancel", headers=reviewer).status_code == 404


# --- bulk-resolve -------------------------------------------------------------------------------


def test_bulk_resolve_closes_every_open_one_of_the_domain(client, reviewer, hitl):
    first = open_(hitl, type="manual_access")
    second = open_(hitl, type="captcha_solve")
    other = open_(hitl, domain="other.example")
    park(hitl, "shop", 4)
    response = client.post("/api/v1/interventions/bulk-resolve", headers=reviewer, json={
        "domain": DOMAIN, "resolution": {"action": "cookies"}, "note": "one login fixes both",
        "captured_session": {"cookies": COOKIES_TXT}})
    assert response.status_code == 200, response.json
    assert response.json == {"resolved": [first, second], "requests_resumed": 4}
    assert_no_cookie_values(response)
    assert {c.name for c in hitl.vault.get(DOMAIN).cookies} == {"sid", "cf_clearance"}
    assert interventions.get(hitl, first)["resolution"]["action"] == "cookies"
    assert interventions.get(hitl, second)["resolution"] == {"action": "done"}
    assert interventions.get(hitl, second)["note"] == "one login fixes both"
    assert interventions.get(hitl, other)["status"] == "open"
    again = client.post("/api/v1/interventions/bulk-resolve", headers=reviewer,
                        json={"domain": DOMAIN, "resolution": {"action": "done"}})
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resolution": {"action": "done"}}, 422),
        ({"domain": "", "resolution": {"action": "done"}}, 422),
        ({"domain": DOMAIN, "resolution": {"action": "cookies"}}, 422),
        ({"domain": DOMAIN, "captured_session": {"cookies": "no cookies here"}}, 422),
    ],
)
def test_bulk_resolve_validation(client, reviewer, hitl, body, status):
    intervention_id = open_(hitl)
    response = client.post("/api/v1/interventions/bulk-resolve", headers=reviewer, json=body)
    assert response.status_code == status, response.json
    assert interventions.get(hitl, intervention_id)["status"] == "open"


@pytest.mark.parametrize("body, field", [
    ({"resolution": {"action": "session_captured"}, "resolved_by": 7,
      "captured_session": {"cookies": COOKIE_LIST}}, "resolved_by"),
    ({"resolution": {"action": "session_captured"}, "resolved_by": "x" * 256,
      "captured_session": {"cookies": COOKIE_LIST}}, "resolved_by"),
    ({"captured_session": {"cookies": COOKIE_LIST, "captured_method": ["manual"]}},
     "captured_session.captured_method"),
    ({"resolution": {"action": "manual_browser_export"}}, "captured_session"),  # means cookies: needs them
])
def test_the_former_systems_body_is_checked_like_ours(client, reviewer, hitl, body, field):
    intervention_id = open_(hitl)
    response = resolve(client, reviewer, intervention_id, json=body)
    assert response.status_code == 422 and field in response.json["detail"], response.json
    assert client.get(f"/api/v1/interventions/{intervention_id}", headers=reviewer).json["status"] == "open"
