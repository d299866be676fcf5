"""Tests for scrapy_hitl.state.items: scored items, versions, review, timeouts, export streams;
on SQLite and PostgreSQL, with real Redis."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest

from scrapy_hitl.state import items, runs
from scrapy_hitl.state.items import ItemConflict, ItemNotFound
from scrapy_hitl.state.models import ItemEvidence, utcnow

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: every test here runs on both databases."""
    return request.param


def row(run_id, status="delivered", score=1.0, **data):
    return {"run_id": run_id, "spider": "shop", "item_type": "Product", "url": "http://shop.example/p/1",
            "status": status, "score": score, "breakdown": {"completeness": score}, "failing": [],
            "data": {"sku": "S1", "price": "£1.00", **data}}


def record(state, rows, evidence=None, **kw):
    return items.record(state.db, rows, evidence, **kw)


def test_record_a_batch_with_shared_evidence(state, run_id):
    page = b"<html>" + b"x" * 10_000 + b"</html>"
    ev = {"kind": "body", "content_type": "text/html", "url": "http://shop.example/p/1", "tier": "static",
          "data": page, "size": len(page)}
    rows = [row(run_id), {**row(run_id, "pending_review", 0.3), "evidence_key": "k"},
            {**row(run_id, "optional_review", 0.7), "evidence_key": "k"}]
    assert record(state, rows, {"k": ev, "unused": ev}) == {"delivered": 1, "pending_review": 1,
                                                              "optional_review": 1}
    listed = items.list_items(state.db, run_id=run_id)
    assert [i["status"] for i in listed] == ["delivered", "pending_review", "optional_review"]
    assert [i["deliverable"] for i in listed] == [True, False, True]
    assert listed[0]["review_deadline"] is None and listed[1]["review_deadline"] is not None
    assert listed[1]["evidence_id"] == listed[2]["evidence_id"] is not None  # one page, stored once
    content_type, data, meta = items.load_evidence(state.db, listed[1]["id"])
    assert (content_type, data, meta["size"]) == ("text/html", page, len(page))
    with state.db.session() as s:
        stored = s.get(ItemEvidence, listed[1]["evidence_id"])
        assert stored.encoding == "gzip" and len(stored.data) < len(page) / 10
        assert gzip.decompress(stored.data) == page
        assert s.query(ItemEvidence).count() == 1
    with pytest.raises(LookupError, match="no stored page"):
        items.load_evidence(state.db, listed[0]["id"])


def test_data_keeps_unicode_and_unknown_types_as_text(state, run_id):
    from decimal import Decimal

    record(state, [row(run_id, name="Théière", price=Decimal("3.10"), tags=["a", "b"], nested={"x": 1})])
    (item,) = items.list_items(state.db, run_id=run_id)
    assert item["data"] == {"sku": "S1", "price": "3.10", "name": "Théière", "tags": ["a", "b"], "nested": {"x": 1}}
    assert next(items.iter_export(state.db, run_id, raw=True)).count("Théière") == 1


def test_list_filters_and_keyset_pages(state, run_id):
    other = runs.new_run_id()
    runs.create_run(state.db, other, "shop", {}, "/tmp")
    record(state, [row(run_id, "pending_review" if n % 2 else "delivered", sku=f"S{n}") for n in range(7)])
    record(state, [row(other, "pending_review")])
    pending = items.list_items(state.db, run_id=run_id, status="pending_review", limit=2)
    assert [p["data"]["sku"] for p in pending] == ["S1", "S3"]
    rest = items.list_items(state.db, run_id=run_id, status="pending_review", cursor=pending[-1]["id"])
    assert [p["data"]["sku"] for p in rest] == ["S5"]
    assert len(items.list_items(state.db, status="pending_review")) == 4
    assert items.counts(state.db, run_id) == {"delivered": 4, "optional_review": 0, "pending_review": 3,
                                              "approved": 0, "rejected": 0, "skipped": 0}
    with pytest.raises(ValueError, match="Unknown status"):
        items.list_items(state.db, status="held")


def test_the_review_queue_orders_by_score_pages_by_score_and_id_and_walks_next(state, run_id):
    scores = [0.4, 0.1, 0.4, 0.3, 0.1]  # ties on purpose: the id breaks them
    record(state, [row(run_id, "pending_review", s, sku=f"S{n}") for n, s in enumerate(scores)])
    record(state, [row(run_id, "optional_review", 0.6, sku="O1"), row(run_id, "delivered", 1.0, sku="D1")])
    order = ["S1", "S4", "S3", "S0", "S2"]
    first = items.list_items(state.db, run_id=run_id, status="pending_review", order="score", limit=2)
    assert [i["data"]["sku"] for i in first] == order[:2]
    rest = items.list_items(state.db, run_id=run_id, status="pending_review", order="score",
                            cursor=(first[-1]["score"], first[-1]["id"]))
    assert [i["data"]["sku"] for i in rest] == order[2:]
    by_sku = {i["data"]["sku"]: i["id"] for i in first + rest}
    walked, at = [], by_sku["S1"]
    for _ in range(len(order)):
        nxt = items.next_in_queue(state.db, at, status="pending_review", run_id=run_id)
        walked.append(nxt and next(k for k, v in by_sku.items() if v == nxt["id"]))
        at = nxt["id"]
    assert walked == ["S4", "S3", "S0", "S2", "S1"]  # past the end it wraps to the lowest score
    items.approve(state, by_sku["S3"], actor="t")  # acted on: its place in the order still counts
    assert items.next_in_queue(state.db, by_sku["S3"], status="pending_review", run_id=run_id)["id"] == by_sku["S0"]
    assert items.next_in_queue(state.db, by_sku["S0"], status="pending_review", run_id=run_id,
                               order="id")["id"] == by_sku["S1"]
    only = items.list_items(state.db, run_id=run_id, status="pending_review", order="score", limit=50)
    for i in only:
        if i["id"] != by_sku["S1"]:
            items.reject(state, i["id"], actor="t")
    assert items.next_in_queue(state.db, by_sku["S1"], status="pending_review", run_id=run_id) is None
    with pytest.raises(ValueError, match="Unknown order"):
        items.list_items(state.db, order="price")


def test_queue_counts_per_run_and_spider_held_first(state, run_id):
    other = runs.new_run_id()
    runs.create_run(state.db, other, "blog", {}, "/tmp")
    record(state, [row(run_id, "optional_review", 0.7), row(run_id, "pending_review", 0.2), row(run_id)])
    record(state, [{**row(other, "pending_review", 0.3), "spider": "blog"} for _ in range(3)])
    assert items.queue(state.db) == [
        {"run_id": other, "spider": "blog", "pending_review": 3, "optional_review": 0, "min_score": 0.3},
        {"run_id": run_id, "spider": "shop", "pending_review": 1, "optional_review": 1, "min_score": 0.2}]
    assert [g["run_id"] for g in items.queue(state.db, spider="shop")] == [run_id]
    assert items.queue(state.db, run_id=runs.new_run_id()) == []


def test_score_histogram(state, run_id):
    record(state, [row(run_id, score=s) for s in (0.0, 0.05, 0.45, 0.5, 0.9, 0.95, 1.0)])
    assert items.score_histogram(state.db, run_id) == [2, 0, 0, 0, 1, 1, 0, 0, 0, 3]


def test_edit_creates_versions_with_field_diffs_and_restore_makes_a_new_one(state, run_id):
    record(state, [row(run_id, "pending_review", 0.3, name=None)])
    (item,) = items.list_items(state.db, run_id=run_id)
    assert items.versions(state.db, item["id"]) == [
        {"version": 1, "data": item["data"], "actor": "crawler", "diff": [], "note": "", "at": item["created_at"]}]
    edited = items.edit(state, item["id"], {"name": "Lamp", "price": "£2.00"}, actor="user:a@x.io", note="fix")
    assert (edited["version"], edited["data"]["name"], edited["status"]) == (2, "Lamp", "pending_review")
    again = items.edit(state, item["id"], {"sku": "S9", "price": "£2.00", "name": "Lamp"}, actor="user:b@x.io",
                       replace=True, expected_version=2)
    assert again["version"] == 3
    v1, v2, v3 = items.versions(state.db, item["id"])
    assert v1["data"] == item["data"] and v1["actor"] == "crawler"
    assert v2["diff"] == [{"field": "price", "op": "changed", "old": "£1.00", "new": "£2.00"},
                          {"field": "name", "op": "changed", "old": None, "new": "Lamp"}]
    assert (v2["actor"], v2["note"]) == ("user:a@x.io", "fix")
    assert v3["diff"] == [{"field": "sku", "op": "changed", "old": "S1", "new": "S9"}]
    assert items.edit(state, item["id"], {"sku": "S9"}, actor="x")["version"] == 3  # no change, no version
    with pytest.raises(ItemConflict, match="at version 3, not 2"):
        items.edit(state, item["id"], {"sku": "S0"}, actor="x", expected_version=2)

    restored = items.restore(state, item["id"], 1, actor="user:a@x.io")
    assert restored["version"] == 4 and restored["data"] == item["data"]
    v4 = items.versions(state.db, item["id"])[-1]
    assert v4["note"] == "restored version 1" and {d["field"] for d in v4["diff"]} == {"sku", "price", "name"}
    assert [h["action"] for h in items.history(state.db, item["id"])] == ["edited", "edited", "restored"]
    with pytest.raises(ItemConflict, match="no version 9"):
        items.restore(state, item["id"], 9, actor="x")


def test_approve_with_changes_and_reject(state, run_id):
    record(state, [row(run_id, "pending_review", 0.3, sku="A"), row(run_id, "optional_review", 0.7, sku="B")])
    a, b = items.list_items(state.db, run_id=run_id)
    approved = items.approve(state, a["id"], actor="user:r@x.io", changes={"price": "£9.00"}, note="checked")
    assert (approved["status"], approved["deliverable"], approved["version"]) == ("approved", True, 2)
    assert approved["reviewed_by"] == "user:r@x.io" and approved["reviewed_at"]
    with pytest.raises(ItemConflict, match="already approved"):
        items.approve(state, a["id"], actor="x")
    rejected = items.reject(state, b["id"], actor="user:r@x.io", note="duplicate")
    assert (rejected["status"], rejected["deliverable"]) == ("rejected", False)
    assert items.history(state.db, a["id"])[0]["detail"] == {
        "from": "pending_review", "note": "checked", "version": 2, "fields": ["price"]}
    assert [(e["sku"], e["price"]) for e in items.iter_export(state.db, run_id)] == [("A", "£9.00")]
    events = [e for e in state.events.read(count=1000) if e.type == "item.reviewed"]
    assert [(e.payload["item_id"], e.payload["action"]) for e in events] == [(a["id"], "approved"),
                                                                             (b["id"], "rejected")]
    with pytest.raises(ItemNotFound):
        items.approve(state, 10_000, actor="x")


def test_skip_overdue_applies_each_items_timeout_action_and_audits_it(state, run_id):
    record(state, [row(run_id, "pending_review", sku="drop")], review_timeout=60, timeout_action="drop")
    record(state, [row(run_id, "pending_review", sku="deliver"), row(run_id, "optional_review", sku="opt")],
           review_timeout=60, timeout_action="deliver")
    record(state, [row(run_id, "pending_review", sku="later")], review_timeout=3600)
    assert items.skip_overdue(state, now=utcnow() + timedelta(seconds=30)) == 0
    assert items.skip_overdue(state, now=utcnow() + timedelta(seconds=120), limit=2) == 3
    by_sku = {i["data"]["sku"]: i for i in items.list_items(state.db, run_id=run_id)}
    assert {k: (v["status"], v["deliverable"]) for k, v in by_sku.items()} == {
        "drop": ("skipped", False), "deliver": ("skipped", True), "opt": ("skipped", True),
        "later": ("pending_review", False)}
    (event,) = items.history(state.db, by_sku["drop"]["id"])
    assert (event["action"], event["actor"], event["detail"]["action"]) == ("skipped", "system", "drop")
    assert items.history(state.db, by_sku["opt"]["id"])[0]["detail"]["from"] == "optional_review"
    assert sorted(e["sku"] for e in items.iter_export(state.db, run_id)) == ["deliver", "opt"]


def test_export_streams_latest_versions_in_scrape_order(state, run_id):
    record(state, [row(run_id, "delivered" if n % 3 else "pending_review", sku=f"S{n}") for n in range(2500)])
    held = items.list_items(state.db, run_id=run_id, status="pending_review", limit=1)[0]
    items.approve(state, held["id"], actor="x", changes={"price": "£5.00"})
    exported = list(items.iter_export(state.db, run_id, batch=100))
    assert len(exported) == 2500 - 834 + 1
    assert exported[0] == {"sku": "S0", "price": "£5.00"}  # approved, at its edited version
    assert [e["sku"] for e in exported[1:4]] == ["S1", "S2", "S4"]
    raw = list(items.iter_export(state.db, run_id, raw=True))
    assert [json.loads(r) for r in raw] == exported
