"""The quality gate with real crawls of the sandbox: held items stay out of the feed until a
reviewer approves them (edited), exports of the run agree in every format, and a template that
stops yielding items opens a selector_fix intervention."""

from __future__ import annotations

import csv
import json

import pytest

from scrapy_hitl.config import StateConfig
from scrapy_hitl.quality.export import csv_cell, flatten
from scrapy_hitl.state import HitlState
from scrapy_hitl.state import items as items_service
from tests.integration.conftest import wait_for
from tests.support.quality_spiders import PRODUCT_SCHEMA

PAGES = 6  # the sandbox fixture's pages per section: products 1..60
SPIDER_MODULES = ["demo.spiders", "tests.support.spiders", "tests.support.quality_spiders"]
CATALOG_SETTINGS = {"SPIDER_MODULES": SPIDER_MODULES, "HITL_ITEM_SCHEMAS": {"Product": PRODUCT_SCHEMA},
                    "HITL_QUALITY_FLUSH_INTERVAL": 0.2}


def sku(k: int) -> str:
    return f"SKU-{k:05d}"


@pytest.fixture
def catalog_run(crawl, hitl_env):
    result = crawl(spider="catalog", settings=CATALOG_SETTINGS).wait()
    assert result.returncode == 0, result.log[-3000:]
    st = HitlState.open(StateConfig.from_env())
    yield result, st
    st.close()


def test_held_items_stay_out_of_the_feed_until_approved_with_edits(catalog_run, cli, tmp_path):
    result, st = catalog_run
    stats = result.stats
    run_id = stats["hitl/run_id"]
    held = {sku(k) for k in range(4, PAGES * 10 + 1, 10)}  # no span.price: a critical field missing
    assert stats["hitl/quality/mandatory_review"] == len(held) == 6
    assert stats["hitl/quality/optional_review"] >= 1
    assert (stats["hitl/quality/delivered"] + stats["hitl/quality/optional_review"]
            + stats["hitl/quality/mandatory_review"]) == PAGES * 10
    assert sum(v for k, v in stats.items() if k.startswith("hitl/quality/score_bucket/")) == PAGES * 10
    fed = {item["sku"] for item in result.items}
    assert len(fed) == PAGES * 10 - len(held) and not fed & held
    assert "Held for review" not in result.log  # one line per held item only at DEBUG
    assert "Holding items for review" in result.log

    pending = items_service.list_items(st.db, run_id=run_id, status="pending_review")
    assert {p["data"]["sku"] for p in pending} == held
    first = next(p for p in pending if p["data"]["sku"] == sku(4))
    assert first["breakdown"]["completeness"] < 1 and first["deliverable"] is False
    assert {"check": "missing", "field": "price", "message": "required field missing or empty"} in first["failing"]
    content_type, page, meta = items_service.load_evidence(st.db, first["id"])
    assert content_type.startswith("text/html") and b"SKU-00004" in page and meta["kind"] == "body"

    odd = next(i for i in items_service.list_items(st.db, run_id=run_id, status="optional_review")
               if i["data"]["price"] == "Price on request")
    assert {f["check"] for f in odd["failing"]} >= {"schema"}

    approved = items_service.approve(st, first["id"], actor="user:reviewer@example.com",
                                     changes={"price": "£12.34"}, note="price from the shop's app")
    assert (approved["status"], approved["version"], approved["deliverable"]) == ("approved", 2, True)
    (v1, v2) = items_service.versions(st.db, first["id"])
    assert v1["data"].get("price") is None and v2["diff"] == [
        {"field": "price", "op": "changed", "old": None, "new": "£12.34"}]

    out = tmp_path / "run.jsonl"
    code, output = cli("export", run_id, "--format", "jsonl", "-o", str(out))
    assert code == 0, output
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    by_sku = {e["sku"]: e for e in exported}
    assert len(exported) == PAGES * 10 - len(held) + 1
    assert by_sku[sku(4)]["price"] == "£12.34"
    assert not (held - {sku(4)}) & set(by_sku)


def test_an_item_approved_while_the_crawl_waits_for_reviewers_reaches_its_feed(crawl, hitl_env):
    """HITL_REVIEW_WAIT keeps the finished crawl open while held items are undecided; an
    approval (with an edit) goes to the running crawl's feed, a rejection does not, and the
    crawl closes as soon as nothing is left to decide."""
    running = crawl(spider="catalog", settings={**CATALOG_SETTINGS, "HITL_REVIEW_WAIT": 120})
    running.wait_for_log("for reviewers: 6 held items", timeout=90)
    st = HitlState.open(StateConfig.from_env())
    try:
        # The last batch of scored items is written within HITL_QUALITY_FLUSH_INTERVAL of idling.
        pending = wait_for(lambda: (found := items_service.list_items(st.db, status="pending_review"))
                           and len(found) == 6 and found, what="the 6 held items to be stored")
        first, *rest = sorted(pending, key=lambda p: p["data"]["sku"])
        items_service.approve(st, first["id"], actor="user:reviewer@example.com", changes={"price": "£7.00"})
        for other in rest:
            items_service.reject(st, other["id"], actor="user:reviewer@example.com")
    finally:
        st.close()
    result = running.wait()
    assert result.returncode == 0, result.log[-3000:]
    fed = {item["sku"]: item for item in result.items}
    assert len(fed) == PAGES * 10 - 6 + 1
    assert fed[first["data"]["sku"]]["price"] == "£7.00"
    assert not {r["data"]["sku"] for r in rest} & set(fed)
    assert result.stats["hitl/quality/delivered_after_review"] == 1
    assert "Closing with" not in result.log  # closed because every held item was decided


def test_exports_of_one_run_hold_the_same_records_in_every_format(catalog_run, cli, tmp_path):
    from openpyxl import load_workbook

    result, _ = catalog_run
    run_id = result.stats["hitl/run_id"]
    files = {}
    for fmt in ("json", "jsonl", "csv", "xlsx"):
        files[fmt] = tmp_path / f"run.{fmt}"
        code, output = cli("export", run_id, "--format", fmt, "-o", str(files[fmt]))
        assert code == 0, output
    records = json.loads(files["json"].read_text())
    assert records == [json.loads(line) for line in files["jsonl"].read_text().splitlines()]
    assert len(records) == PAGES * 10 - 6
    flat = [flatten(r) for r in records]

    with files["csv"].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    assert rows == [{name: csv_cell(f.get(name)) for name in header} for f in flat]

    book = load_workbook(files["xlsx"], read_only=True)  # read-only keeps the file open: close it
    try:
        values = list(book["items"].iter_rows(values_only=True))
    finally:
        book.close()
    assert list(values[0]) == header
    assert [dict(zip(header, row)) for row in values[1:]] == [{name: f.get(name) for name in header} for f in flat]


def test_a_template_that_stops_yielding_items_opens_selector_fix(crawl, cli, fresh_sandbox):
    """drift_noexpect reads /drift with the old markup and no hitl_expect: pages 3-5 yield nothing."""
    result = crawl(spider="drift_noexpect", settings={"SPIDER_MODULES": SPIDER_MODULES,
                                                      "HITL_PAUSE_TIMEOUT": 1}).wait()
    assert len(result.items) == 20  # pages 1-2
    (i,) = cli.json("interventions", "list")
    assert (i["type"], i["reason"], i["domain"]) == ("selector_fix", "no_items", "drift.sandbox.test")
    shown = cli.json("interventions", "show", str(i["id"]))
    port = fresh_sandbox.url.rsplit(":", 1)[1]
    assert shown["evidence"]["pages"] == [f"http://drift.sandbox.test:{port}/drift/page/{n}" for n in (3, 4, 5)]
    assert shown["evidence"]["expected_fields"] == ["author", "text", "url"]
    assert result.stats["hitl/parked/reason/no_items"] == 3
    assert result.stats["hitl/quality/empty_pages"] == 3
    assert fresh_sandbox.hits().get("/drift/page/6") is None  # parked: the domain is paused


def test_consecutive_failing_requests_to_a_domain_open_an_intervention_and_park_them(crawl, cli):
    """A domain whose server is down: after Scrapy's retries, 2 final failures in a row pause it."""
    import socket

    with socket.socket() as s:  # a port nothing listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = crawl(spider="flood", args={"base": f"http://127.0.0.1:{port}", "count": "3",
                                         "domain": "down.sandbox.test"},
                   settings={"HITL_PAUSE_TIMEOUT": 1}).wait()
    (i,) = cli.json("interventions", "list")
    assert (i["type"], i["reason"], i["domain"]) == ("manual_access", "consecutive_failures", "down.sandbox.test")
    shown = cli.json("interventions", "show", str(i["id"]))
    assert len(shown["evidence"]["failures"]) == 2
    assert all("ConnectionRefused" in f["error"] for f in shown["evidence"]["failures"])
    assert result.stats["hitl/parked"] == 3  # the two failures and the one still in flight: none lost
    assert result.stats["retry/count"] >= 4  # Scrapy's own retries came first
    assert not result.items


def test_a_page_that_missed_hitl_expect_scores_its_items_extraction_zero(crawl):
    # On the top tier (static here), and the page is then parked for a selector_fix when the
    # crawl runs out of work (tests/integration/test_nothing_silent.py): 1 s of waiting.
    result = crawl(spider="expect_mismatch", settings={"SPIDER_MODULES": SPIDER_MODULES, "HITL_TIERS": "static,human",
                                                       "HITL_PAUSE_TIMEOUT": 1}).wait()
    assert result.stats["hitl/interventions/created/selector_fix"] == 1
    run_id = result.stats["hitl/run_id"]
    st = HitlState.open(StateConfig.from_env())
    try:
        stored = items_service.list_items(st.db, run_id=run_id)
    finally:
        st.close()
    assert len(stored) == 10
    complete = [i for i in stored if i["data"].get("price") and i["data"]["price"].startswith("£")]
    assert complete and all(i["breakdown"]["extraction"] == 0.0 and i["score"] == 0.9 for i in complete)
    assert all({"check": "extraction", "field": None, "message": "the page did not match the spider's hitl_expect"}
               in i["failing"] for i in stored)
