"""The domains API on the real database and Redis: stats, pause state, history, admin edits."""

from __future__ import annotations

import pytest

from hitl_console.api import encode_cursor
from scrapy_hitl.learning import DomainCounters
from scrapy_hitl.state import domains, interventions

DOMAIN = "shop.example.com"


def flush(hitl, domain, attempts, blocked_403=0):
    c = DomainCounters()
    for i in range(attempts):
        c.record(engine="http", ok=i >= blocked_403, status=403 if i < blocked_403 else 200)
    domains.apply_counters(hitl.db, {domain: c}, min_attempts=1000, block_rate=0.8)


# --- list and detail ----------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "pages"), [(1, 4), (3, 2), (4, 1)])
def test_domains_page_by_name_without_duplicates(client, reviewer, hitl, limit, pages):
    names = ["d.example", "b.example", "a.example", "c.example"]
    for name in names:
        flush(hitl, name, 1)
    items, cursor, n = [], None, 0
    while True:
        url = f"/api/v1/domains?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=reviewer).json
        items, cursor, n = items + body["items"], body["next_cursor"], n + 1
        if cursor is None:
            break
    assert [d["domain"] for d in items] == sorted(names) and n == pages


def test_domain_detail_adds_paused_and_open_interventions(client, reviewer, hitl):
    flush(hitl, DOMAIN, 10, blocked_403=4)
    body = client.get(f"/api/v1/domains/{DOMAIN}", headers=reviewer).json
    assert (body["attempts"], body["blocked_403"], body["block_rate_403"]) == (10, 4, 0.4)
    assert (body["paused"], body["open_interventions"]) == (False, 0)
    first, _ = interventions.open_or_update(hitl, type="manual_access", reason="http_403", domain=DOMAIN)
    interventions.open_or_update(hitl, type="captcha_solve", reason="captcha", domain=DOMAIN)
    body = client.get(f"/api/v1/domains/{DOMAIN}", headers=reviewer).json
    assert (body["paused"], body["open_interventions"]) == (True, 2)
    interventions.cancel(hitl, first["id"], actor="test")
    body = client.get(f"/api/v1/domains/{DOMAIN}", headers=reviewer).json
    assert (body["paused"], body["open_interventions"]) == (True, 1)


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/v1/domains/nowhere.example", 404, "not_found"),
        ("/api/v1/domains/nowhere.example/history", 404, "not_found"),
        ("/api/v1/domains?cursor=%%%", 400, "bad_cursor"),
        ("/api/v1/domains?cursor=" + encode_cursor([1]), 400, "bad_cursor"),
        (f"/api/v1/domains/{DOMAIN}/history?limit=0", 400, "bad_request"),
        (f"/api/v1/domains/{DOMAIN}/history?limit=1001", 400, "bad_request"),
        (f"/api/v1/domains/{DOMAIN}/history?limit=-1", 400, "bad_request"),
        (f"/api/v1/domains/{DOMAIN}/history?limit=many", 400, "bad_request"),
    ],
)
def test_domain_read_errors(client, reviewer, hitl, path, status, error):
    flush(hitl, DOMAIN, 1)
    response = client.get(path, headers=reviewer)
    assert (response.status_code, response.json["error"]) == (status, error)


# --- history ------------------------------------------------------------------------------------


def test_history_is_the_newest_samples_oldest_first(client, reviewer, hitl):
    for attempts, blocked in [(10, 0), (10, 5), (4, 4), (8, 2)]:
        flush(hitl, DOMAIN, attempts, blocked)
    flush(hitl, "other.example", 3, 3)
    items = client.get(f"/api/v1/domains/{DOMAIN}/history?limit=3", headers=reviewer).json["items"]
    assert [(i["attempts"], i["blocked_403"], i["captchas"], i["block_rate"]) for i in items] == [
        (10, 5, 0, 0.5), (4, 4, 0, 1.0), (8, 2, 0, 0.25),
    ]
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    everything = client.get(f"/api/v1/domains/{DOMAIN}/history", headers=reviewer).json["items"]
    assert len(everything) == 4


# --- admin edit ---------------------------------------------------------------------------------


def test_admin_sets_the_access_class_and_session_requirement(client, admin, reviewer, hitl):
    flush(hitl, DOMAIN, 1)
    response = client.patch(f"/api/v1/domains/{DOMAIN}", headers=admin,
                            json={"access_class": "infra", "requires_session": "not_required"})
    assert response.status_code == 200
    assert (response.json["access_class"], response.json["requires_session"]) == ("infra", "not_required")
    stored = domains.get(hitl.db, DOMAIN)
    assert (stored["access_class"], stored["requires_session"]) == ("infra", "not_required")
    one = client.patch(f"/api/v1/domains/{DOMAIN}", headers=admin, json={"requires_session": "required"})
    assert (one.json["access_class"], one.json["requires_session"]) == ("infra", "required")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"access_class": "vip"}, ["access_class"]),
        ({"requires_session": "yes"}, ["requires_session"]),
        ({"requires_session": True}, ["requires_session"]),
        ({"access_class": None}, ["access_class"]),
        ({"access_class": "human", "attempts": 0}, ["attempts"]),
        ({"access_class": "mystery", "requires_session": "maybe"}, ["access_class", "requires_session"]),
        ({}, ["body"]),
    ],
)
def test_patch_validation_is_422_naming_the_fields(client, admin, hitl, body, fields):
    flush(hitl, DOMAIN, 1)
    response = client.patch(f"/api/v1/domains/{DOMAIN}", headers=admin, json=body)
    assert response.status_code == 422 and response.json["error"] == "invalid"
    assert sorted(response.json["detail"]) == fields
    stored = domains.get(hitl.db, DOMAIN)
    assert (stored["access_class"], stored["requires_session"]) == ("public", "unknown")


def test_patch_needs_a_json_object_and_a_known_domain(client, admin, hitl):
    flush(hitl, DOMAIN, 1)
    bad = client.patch(f"/api/v1/domains/{DOMAIN}", headers=admin, data="[", content_type="application/json")
    assert bad.status_code == 400
    missing = client.patch("/api/v1/domains/nowhere.example", headers=admin, json={"access_class": "human"})
    assert missing.status_code == 404
    assert domains.get(hitl.db, "nowhere.example") is None


def test_reviewer_patch_is_403(client, reviewer, hitl):
    flush(hitl, DOMAIN, 1)
    response = client.patch(f"/api/v1/domains/{DOMAIN}", headers=reviewer, json={"access_class": "human"})
    assert response.status_code == 403 and response.json["error"] == "forbidden"
    assert domains.get(hitl.db, DOMAIN)["access_class"] == "public"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/domains"), ("get", f"/api/v1/domains/{DOMAIN}"),
     ("get", f"/api/v1/domains/{DOMAIN}/history"), ("patch", f"/api/v1/domains/{DOMAIN}")],
)
def test_login_is_required(client, users, hitl, method, path):
    flush(hitl, DOMAIN, 1)
    response = getattr(client, method)(path, json={"access_class": "human"})
    assert response.status_code == 401 and response.json["error"] == "unauthorized"


@pytest.mark.parametrize("spelling", ["SHOP.Example.com", "shop.example.com:443", ".shop.example.com"])
def test_the_domain_in_the_path_is_normalised_like_the_crawler_records_it(client, reviewer, admin, hitl, spelling):
    flush(hitl, "shop.example.com", 2)
    assert client.get(f"/api/v1/domains/{spelling}", headers=reviewer).json["domain"] == "shop.example.com"
    assert client.get(f"/api/v1/domains/{spelling}/history", headers=reviewer).status_code == 200
    patched = client.patch(f"/api/v1/domains/{spelling}", json={"access_class": "infra"}, headers=admin)
    assert patched.json["domain"] == "shop.example.com"
