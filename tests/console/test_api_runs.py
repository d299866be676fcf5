"""The runs and spiders API, on the real state layer: SQLite, Redis, the stream and the parking lot."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from hitl_console.api import encode_cursor
from hitl_console.cli import main as cli
from scrapy_hitl.state import pauses, runs
from scrapy_hitl.state.models import Run
from scrapy_hitl.state.parking import ParkEntry

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def many(hitl):
    """Seven runs of two spiders; three start in the same instant. Returns ids newest first."""
    spec = [("r1", "shop", "completed", 0), ("r2", "shop", "failed", 1), ("r3", "blog", "running", 1),
            ("r4", "shop", "running", 1), ("r5", "blog", "waiting_for_human", 2),
            ("r6", "shop", "running", 3), ("r7", "blog", "completed", 4)]
    for run_id, spider, status, minutes in spec:
        runs.create_run(hitl.db, run_id, spider, {}, "/tmp")
        with hitl.db.session() as s:
            s.execute(update(Run).where(Run.id == run_id)
                      .values(status=status, created_at=T0 + timedelta(minutes=minutes)))
    return ["r7", "r6", "r5", "r4", "r3", "r2", "r1"]


def collect(client, headers, url, limit):
    items, cursor, pages = [], None, 0
    while True:
        sep = "&" if "?" in url else "?"
        response = client.get(f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else ""),
                              headers=headers)
        assert response.status_code == 200, response.json
        items += response.json["items"]
        cursor, pages = response.json["next_cursor"], pages + 1
        if cursor is None:
            return items, pages


# --- list ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "pages"), [(1, 7), (2, 4), (3, 3), (7, 1), (50, 1)])
def test_runs_page_newest_first_without_duplicates(client, reviewer, many, limit, pages):
    items, n = collect(client, reviewer, "/api/v1/runs", limit)
    assert [r["id"] for r in items] == many  # every run once, ties broken by id
    assert n == pages


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=running", ["r6", "r4", "r3"]),
        ("status=completed", ["r7", "r1"]),
        ("spider=blog", ["r7", "r5", "r3"]),
        ("spider=shop&status=running", ["r6", "r4"]),
        ("spider=nobody", []),
    ],
)
def test_runs_filters_across_pages(client, reviewer, many, query, expected):
    items, _pages = collect(client, reviewer, f"/api/v1/runs?{query}", 1)
    assert [r["id"] for r in items] == expected


def test_runs_carry_alive_from_the_heartbeat(client, reviewer, hitl, many):
    runs.heartbeat(hitl.redis, "r6", 30)
    items = client.get("/api/v1/runs", headers=reviewer).json["items"]
    assert {r["id"]: r["alive"] for r in items} == {r: r == "r6" for r in many}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("status=paused", "bad_request"),
        ("limit=0", "bad_request"),
        ("limit=201", "bad_request"),
        ("limit=ten", "bad_request"),
        ("cursor=%%%", "bad_cursor"),
        ("cursor=" + encode_cursor(["r1"]), "bad_cursor"),  # wrong arity
        ("cursor=" + encode_cursor(["yesterday", "r1"]), "bad_cursor"),  # not a timestamp
        ("cursor=" + encode_cursor(["2026-11-20T12:00:00+00:00", 5]), "bad_cursor"),  # id not a str
    ],
)
def test_runs_list_rejects_bad_parameters(client, reviewer, query, error):
    response = client.get(f"/api/v1/runs?{query}", headers=reviewer)
    assert response.status_code == 400
    assert response.json["error"] == error


# --- detail -------------------------------------------------------------------------------------


def park(hitl, spider, domain, n):
    hitl.parking.park(spider, [
        ParkEntry.build(domain=domain, fingerprint=f"{spider}-{domain}-{i}",
                        request={"url": f"https://{domain}/{i}"}, reason="forbidden")
        for i in range(n)
    ])


def test_run_detail_adds_alive_spider_paused_and_parked(client, reviewer, hitl, many):
    park(hitl, "shop", "a.example", 2)
    park(hitl, "shop", "b.example", 3)
    park(hitl, "blog", "a.example", 4)  # another spider's: not counted
    pauses.pause_spider(hitl.redis, "shop", by="test")
    runs.heartbeat(hitl.redis, "r6", 30)
    body = client.get("/api/v1/runs/r6", headers=reviewer).json
    assert body["id"] == "r6" and body["spider"] == "shop" and body["status"] == "running"
    assert (body["alive"], body["spider_paused"], body["parked"]) == (True, True, 5)
    other = client.get("/api/v1/runs/r5", headers=reviewer).json
    assert (other["alive"], other["spider_paused"], other["parked"]) == (False, False, 4)


def test_run_detail_carries_the_monitors_findings_apart_from_the_stats(client, reviewer, hitl, many):
    finding = {"monitor": "item_count_drop", "status": "alert", "values": {"items": 2, "median": 6},
               "message": "2 items, under 50% of the median of the last 5 completed runs (6)."}
    runs.update_run(hitl.db, "r1", stats={"item_scraped_count": 2, "hitl/monitors/alerts": 1,
                                          runs.MONITORS_STAT: [finding]})
    body = client.get("/api/v1/runs/r1", headers=reviewer).json
    assert body["monitors"] == [finding]
    assert body["stats"] == {"item_scraped_count": 2, "hitl/monitors/alerts": 1}
    assert client.get("/api/v1/runs/r2", headers=reviewer).json["monitors"] == []  # none recorded


@pytest.mark.parametrize("path", ["/api/v1/runs/nope", "/api/v1/runs/nope/events"])
def test_unknown_run_is_404(client, reviewer, path):
    response = client.get(path, headers=reviewer)
    assert response.status_code == 404 and response.json["error"] == "not_found"


# --- events timeline ----------------------------------------------------------------------------


def test_run_events_are_only_that_runs_oldest_first_across_pages(client, reviewer, hitl):
    runs.create_run(hitl.db, "mine", "shop", {}, "/tmp")
    runs.create_run(hitl.db, "other", "shop", {}, "/tmp")
    hitl.events.emit("spider.paused", {"by": "x"}, spider="shop")  # no run
    mine = []
    for i in range(5):
        mine.append(hitl.events.emit("run.progress", {"items": i}, run_id="mine", spider="shop"))
        hitl.events.emit("run.progress", {"items": i}, run_id="other", spider="shop")
    mine.append(hitl.events.emit("run.completed", {"finish_reason": "finished"}, run_id="mine", spider="shop"))
    runs.update_run(hitl.db, "mine", status="completed")
    hitl.events.emit("run.progress", {"items": 9}, run_id="other", spider="shop")
    items, pages = collect(client, reviewer, "/api/v1/runs/mine/events", 2)
    assert [e["id"] for e in items] == mine and pages == 3
    assert {e["run_id"] for e in items} == {"mine"}
    assert [e["payload"].get("items") for e in items] == [0, 1, 2, 3, 4, None]
    assert set(items[0]) == {"id", "type", "timestamp", "run_id", "intervention_id", "spider",
                             "domain", "payload"}


@pytest.mark.parametrize("cursor", ["%%%", encode_cursor(["not-an-id"]), encode_cursor([17])])
def test_run_events_reject_bad_cursors(client, reviewer, hitl, cursor):
    runs.create_run(hitl.db, "mine", "shop", {}, "/tmp")
    response = client.get(f"/api/v1/runs/mine/events?cursor={cursor}", headers=reviewer)
    assert response.status_code == 400 and response.json["error"] == "bad_cursor"


# --- spider pause -------------------------------------------------------------------------------


def spider_events(hitl, spider):
    return [(e.type, e.spider, e.payload) for e in hitl.events.read(count=10_000)
            if e.type.startswith("spider.") and e.spider == spider]


def test_pause_then_unpause_emits_both_events_once(client, reviewer, hitl):
    first = client.post("/api/v1/spiders/shop/pause", headers=reviewer)
    assert first.status_code == 200
    assert first.json == {"spider": "shop", "paused": True, "changed": True}
    assert "shop" in pauses.paused_spiders(hitl.redis)
    again = client.post("/api/v1/spiders/shop/pause", headers=reviewer)
    assert again.json == {"spider": "shop", "paused": True, "changed": False}
    assert client.get("/api/v1/runs", headers=reviewer).status_code == 200
    resumed = client.post("/api/v1/spiders/shop/unpause", headers=reviewer)
    assert resumed.json == {"spider": "shop", "paused": False, "changed": True}
    assert "shop" not in pauses.paused_spiders(hitl.redis)
    by = {"by": "console:reviewer@example.com"}
    assert spider_events(hitl, "shop") == [("spider.paused", "shop", by), ("spider.resumed", "shop", by)]


def test_cli_pause_and_unpause_do_the_same(client, reviewer, hitl):
    client.post("/api/v1/spiders/web/pause", headers=reviewer)
    client.post("/api/v1/spiders/web/unpause", headers=reviewer)
    for command in ("pause", "unpause"):
        result = CliRunner().invoke(cli, ["spiders", command, "cli"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert ("cli" in pauses.paused_spiders(hitl.redis)) == (command == "pause")
    web, from_cli = spider_events(hitl, "web"), spider_events(hitl, "cli")
    assert [(t, set(p)) for t, _s, p in web] == [(t, set(p)) for t, _s, p in from_cli]
    assert [p["by"] for _t, _s, p in from_cli] == ["cli", "cli"]


def test_unpausing_a_running_spider_changes_nothing(client, reviewer, hitl):
    response = client.post("/api/v1/spiders/shop/unpause", headers=reviewer)
    assert response.json == {"spider": "shop", "paused": False, "changed": False}
    assert spider_events(hitl, "shop") == []


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/runs"), ("get", "/api/v1/runs/r1"), ("get", "/api/v1/runs/r1/events"),
     ("post", "/api/v1/spiders/shop/pause"), ("post", "/api/v1/spiders/shop/unpause")],
)
def test_login_is_required(client, users, hitl, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert pauses.paused_spiders(hitl.redis) == {}


def test_cookie_pause_needs_the_csrf_token(client, auth, hitl):
    login = auth.login("reviewer@example.com")
    assert client.post("/api/v1/spiders/shop/pause").status_code == 403
    ok = client.post("/api/v1/spiders/shop/pause", headers={"X-CSRF-Token": login.json["csrf_token"]})
    assert ok.status_code == 200 and "shop" in pauses.paused_spiders(hitl.redis)
