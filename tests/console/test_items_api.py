"""The items API (the quality gate's review queue, actions, versions) and the run exports,
on the real state layer: SQLite or PostgreSQL, Redis, the event stream."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pytest

from scrapy_hitl.quality.export import csv_cell, flatten
from scrapy_hitl.state import items, runs

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: every test here runs on both databases."""
    return request.param


@pytest.fixture
def run_id(hitl):
    rid = runs.new_run_id()
    runs.create_run(hitl.db, rid, "shop", {}, "/tmp")
    return rid


def row(run_id, status, score, **data):
    return {"run_id": run_id, "spider": "shop", "item_type": "Product", "url": f"http://shop.test/{data.get('sku')}",
            "status": status, "score": score, "breakdown": {"completeness": score},
            "failing": [] if status == "delivered" else [{"check": "missing", "field": "price",
                                                           "message": "required field missing or empty"}],
            "data": {"sku": "S", **data}}


@pytest.fixture
def seeded(hitl, run_id):
    """Three held items (scores 0.3, 0.1, 0.2), one optional, two delivered; ids by sku."""
    items.record(hitl.db, [
        row(run_id, "pending_review", 0.3, sku="H1", name="One"),
        row(run_id, "delivered", 1.0, sku="D1", price=9.5, specs={"kg": 1}, tags=["a", "b"]),
        row(run_id, "pending_review", 0.1, sku="H2", name="Two"),
        row(run_id, "optional_review", 0.7, sku="O1", price="£3"),
        row(run_id, "pending_review", 0.2, sku="H3", name="Three"),
        row(run_id, "delivered", 0.95, sku="D2", price=1, available=True),
    ])
    return {i["data"]["sku"]: i["id"] for i in items.list_items(hitl.db, run_id=run_id)}


def test_every_items_endpoint_needs_a_login(client, seeded, run_id):
    i = seeded["H1"]
    for method, path in [("get", "/api/v1/items"), ("get", "/api/v1/items/queue"), ("get", f"/api/v1/items/{i}"),
                         ("patch", f"/api/v1/items/{i}"), ("post", f"/api/v1/items/{i}/approve"),
                         ("post", f"/api/v1/items/{i}/reject"), ("post", f"/api/v1/items/{i}/restore"),
                         ("get", f"/api/v1/items/{i}/versions"), ("get", f"/api/v1/items/{i}/history"),
                         ("get", f"/api/v1/items/{i}/next"), ("get", f"/api/v1/runs/{run_id}/quality"),
                         ("get", f"/api/v1/runs/{run_id}/items.csv")]:
        response = getattr(client, method)(path, json={})
        assert response.status_code == 401, path
        assert response.json["error"] == "unauthorized", path


def test_list_filters_by_run_and_status_and_pages_in_either_order(client, reviewer, seeded, run_id):
    def sk(response):
        return [i["data"]["sku"] for i in response.json["items"]]

    everything = client.get(f"/api/v1/items?run_id={run_id}", headers=reviewer)
    assert sk(everything) == ["H1", "D1", "H2", "O1", "H3", "D2"] and everything.json["next_cursor"] is None

    held, cursor = [], None
    while True:  # the queue's order: lowest score first, two at a time
        response = client.get(f"/api/v1/items?run_id={run_id}&status=pending_review&order=score&limit=2"
                              + (f"&cursor={cursor}" if cursor else ""), headers=reviewer)
        assert response.status_code == 200, response.json
        held += sk(response)
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    assert held == ["H2", "H3", "H1"]
    first = client.get("/api/v1/items?status=delivered&limit=1", headers=reviewer).json
    assert sk(client.get(f"/api/v1/items?status=delivered&cursor={first['next_cursor']}", headers=reviewer)) == ["D2"]
    assert sk(client.get(f"/api/v1/items?run_id={runs.new_run_id()}", headers=reviewer)) == []


@pytest.mark.parametrize(("query", "status", "error"), [
    ("status=held", 400, "bad_request"),
    ("order=price", 400, "bad_request"),
    ("limit=0", 400, "bad_request"),
    ("cursor=bm90LWEtY3Vyc29y", 400, "bad_cursor"),
    ("order=score&cursor=WzFd", 400, "bad_cursor"),  # [1]: an id cursor, not (score, id)
    ("cursor=WyJ4Il0", 400, "bad_cursor"),  # ["x"]
])  # fmt: skip
def test_bad_list_queries_are_400_with_a_json_reason(client, reviewer, seeded, query, status, error):
    response = client.get(f"/api/v1/items?{query}", headers=reviewer)
    assert (response.status_code, response.json["error"]) == (status, error)


def test_queue_counts_per_run_and_spider(client, reviewer, seeded, run_id):
    queue = client.get("/api/v1/items/queue", headers=reviewer).json
    assert queue == {"items": [{"run_id": run_id, "spider": "shop", "pending_review": 3, "optional_review": 1,
                                "min_score": 0.1}], "pending_review": 3, "optional_review": 1}
    assert client.get("/api/v1/items/queue?spider=blog", headers=reviewer).json["items"] == []


def test_edit_approve_reject_restore_and_the_trail(client, reviewer, seeded, hitl):
    i = seeded["H1"]
    item = client.get(f"/api/v1/items/{i}", headers=reviewer).json
    assert (item["status"], item["version"], item["data"]) == ("pending_review", 1, {"sku": "H1", "name": "One"})

    edited = client.patch(f"/api/v1/items/{i}", headers=reviewer,
                          json={"data": {"price": 12.5, "name": "One!"}, "expected_version": 1, "note": "fixed"})
    assert edited.status_code == 200, edited.json
    assert (edited.json["version"], edited.json["data"]) == (2, {"sku": "H1", "name": "One!", "price": 12.5})
    stale = client.patch(f"/api/v1/items/{i}", headers=reviewer, json={"data": {"name": "x"}, "expected_version": 1})
    assert (stale.status_code, stale.json["error"]) == (409, "conflict")
    stale = client.post(f"/api/v1/items/{i}/approve", headers=reviewer, json={"expected_version": 1})
    assert (stale.status_code, stale.json["error"]) == (409, "conflict")

    approved = client.post(f"/api/v1/items/{i}/approve", headers=reviewer,
                           json={"data": {"name": "One, final"}, "expected_version": 2, "note": "ok"})
    assert approved.status_code == 200, approved.json
    assert (approved.json["status"], approved.json["version"], approved.json["deliverable"]) == ("approved", 3, True)
    assert approved.json["reviewed_by"] == "console:reviewer@example.com"
    again = client.post(f"/api/v1/items/{i}/approve", headers=reviewer)
    assert (again.status_code, again.json["error"]) == (409, "conflict")

    versions = client.get(f"/api/v1/items/{i}/versions", headers=reviewer).json["items"]
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[1]["diff"] == [{"field": "name", "op": "changed", "old": "One", "new": "One!"},
                                   {"field": "price", "op": "added", "old": None, "new": 12.5}]
    assert versions[1]["actor"] == "console:reviewer@example.com" and versions[1]["note"] == "fixed"

    restored = client.post(f"/api/v1/items/{i}/restore", headers=reviewer, json={"version": 1})
    assert (restored.json["version"], restored.json["data"]) == (4, {"sku": "H1", "name": "One"})
    assert client.get(f"/api/v1/items/{i}/versions", headers=reviewer).json["items"][-1]["diff"] == [
        {"field": "name", "op": "changed", "old": "One, final", "new": "One"},
        {"field": "price", "op": "removed", "old": 12.5, "new": None}]
    missing = client.post(f"/api/v1/items/{i}/restore", headers=reviewer, json={"version": 9})
    assert (missing.status_code, missing.json["error"]) == (409, "conflict")

    rejected = client.post(f"/api/v1/items/{seeded['H2']}/reject", headers=reviewer, json={"note": "junk"})
    assert (rejected.json["status"], rejected.json["deliverable"]) == ("rejected", False)
    trail = client.get(f"/api/v1/items/{i}/history", headers=reviewer).json["items"]
    assert [e["action"] for e in trail] == ["edited", "approved", "restored"]
    events = [e for e in hitl.events.read("0-0", count=100) if e.type == "item.reviewed"]
    assert [(e.payload["item_id"], e.payload["action"]) for e in events] == [
        (i, "edited"), (i, "approved"), (i, "restored"), (seeded["H2"], "rejected")]


@pytest.mark.parametrize(("method", "suffix", "body", "field"), [
    ("patch", "", {"data": "price=1"}, "data"),
    ("patch", "", {"data": {}}, "data"),
    ("patch", "", {"data": {"a": 1}, "replace": "yes"}, "replace"),
    ("patch", "", {"data": {"a": 1}, "expected_version": "2"}, "expected_version"),
    ("patch", "", {"data": {"a": 1}, "note": 5}, "note"),
    ("patch", "", {"data": {"a": 1}, "status": "approved"}, "status"),
    ("post", "/approve", {"data": [1]}, "data"),
    ("post", "/reject", {"reason": "x"}, "reason"),
    ("post", "/restore", {"version": "1"}, "version"),
    ("post", "/restore", {}, "version"),
])  # fmt: skip
def test_bad_bodies_are_422_naming_the_field(client, reviewer, seeded, method, suffix, body, field):
    response = getattr(client, method)(f"/api/v1/items/{seeded['H1']}{suffix}", headers=reviewer, json=body)
    assert (response.status_code, response.json["error"]) == (422, "invalid"), response.json
    assert field in response.json["detail"]


def test_not_json_and_unknown_items(client, reviewer, seeded):
    response = client.patch(f"/api/v1/items/{seeded['H1']}", headers=reviewer, data="price=1")
    assert (response.status_code, response.json["error"]) == (400, "bad_request")
    for method, suffix in [("get", ""), ("patch", ""), ("post", "/approve"), ("get", "/versions"),
                           ("get", "/history"), ("get", "/next")]:
        response = getattr(client, method)(f"/api/v1/items/999999{suffix}", headers=reviewer,
                                           json={"data": {"a": 1}} if method == "patch" else None)
        assert (response.status_code, response.json["error"]) == (404, "not_found"), suffix


def test_next_walks_the_queue_the_reviewer_is_in(client, reviewer, seeded, run_id):
    def nxt(i, query=""):
        found = client.get(f"/api/v1/items/{i}/next?run_id={run_id}{query}", headers=reviewer).json["item"]
        return found and found["id"]

    assert nxt(seeded["H2"]) == seeded["H3"]  # held items, lowest score first, by default
    assert nxt(seeded["H3"]) == seeded["H1"]
    assert nxt(seeded["H1"]) == seeded["H2"]  # wraps
    assert nxt(seeded["H1"], "&status=&order=id") == seeded["D1"]
    assert nxt(seeded["O1"], "&status=optional_review") is None


def test_cookie_writes_need_the_csrf_header(client, auth, seeded):
    auth.login("reviewer@example.com")
    i = seeded["H1"]
    refused = client.post(f"/api/v1/items/{i}/approve", json={})
    assert (refused.status_code, refused.json["error"]) == (403, "csrf_failed")
    csrf = client.get_cookie("hitl_csrf").value
    assert client.post(f"/api/v1/items/{i}/approve", json={}, headers={"X-CSRF-Token": csrf}).status_code == 200
    run_id = items.get(client.application.extensions["hitl"].db, i)["run_id"]
    assert client.get(f"/api/v1/runs/{run_id}/items.jsonl").status_code == 200  # a GET: the cookie is enough


def test_run_quality_counts_and_histogram(client, reviewer, seeded, run_id):
    q = client.get(f"/api/v1/runs/{run_id}/quality", headers=reviewer).json
    assert q["counts"] == {"delivered": 2, "optional_review": 1, "pending_review": 3, "approved": 0,
                           "rejected": 0, "skipped": 0}
    assert q["score_histogram"] == [0, 1, 1, 1, 0, 0, 0, 1, 0, 2]
    assert client.get("/api/v1/runs/nope/quality", headers=reviewer).status_code == 404


def test_exports_of_a_run_agree_in_every_format_and_follow_the_reviews(client, reviewer, seeded, run_id):
    client.post(f"/api/v1/items/{seeded['H3']}/approve", headers=reviewer, json={"data": {"price": 4}})
    client.post(f"/api/v1/items/{seeded['O1']}/reject", headers=reviewer)
    expected = [{"sku": "D1", "price": 9.5, "specs": {"kg": 1}, "tags": ["a", "b"]},
                {"sku": "H3", "name": "Three", "price": 4},
                {"sku": "D2", "price": 1, "available": True}]

    got = {}
    for fmt, mimetype in [("json", "application/json"), ("jsonl", "application/x-ndjson"), ("csv", "text/csv"),
                          ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]:
        response = client.get(f"/api/v1/runs/{run_id}/items.{fmt}", headers=reviewer)
        assert response.status_code == 200, (fmt, response.data[:200])
        assert response.mimetype == mimetype
        assert response.headers["Content-Disposition"] == f'attachment; filename="{run_id}.{fmt}"'
        got[fmt] = response.data
    assert json.loads(got["json"]) == expected
    assert [json.loads(line) for line in got["jsonl"].decode().splitlines()] == expected
    header = ["sku", "price", "specs.kg", "tags", "name", "available"]
    flat = [{k: csv_cell(v) for k, v in flatten(e).items()} for e in expected]
    rows = list(csv.reader(io.StringIO(got["csv"].decode())))
    assert rows[0] == header
    assert rows[1:] == [[f.get(col, "") for col in header] for f in flat]
    sheet = openpyxl.load_workbook(io.BytesIO(got["xlsx"]), read_only=True)["items"]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == header
    assert cells[1:] == [[flatten(e).get(col) for col in header] for e in expected]

    empty = runs.new_run_id()
    runs.create_run(client.application.extensions["hitl"].db, empty, "shop", {}, "/tmp")
    assert client.get(f"/api/v1/runs/{empty}/items.json", headers=reviewer).data == b"[]\n"
    assert client.get(f"/api/v1/runs/{empty}/items.jsonl", headers=reviewer).data == b""
    for path in [f"/api/v1/runs/{run_id}/items.parquet", "/api/v1/runs/nope/items.csv"]:
        response = client.get(path, headers=reviewer)
        assert (response.status_code, response.json["error"]) == (404, "not_found"), path
