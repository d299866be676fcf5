"""``GET /metrics``: who may scrape it, and what each metric counts, read from the real
database and Redis with prometheus_client's own parser (the crawl's part:
tests/integration/test_resolve_dialect.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, Worker

from hitl_console.app import create_app
from hitl_console.metrics import BUCKETS
from scrapy_hitl.state import consultations, interventions, models, notifications, notify_channels, ownership
from scrapy_hitl.state.models import utcnow
from scrapy_hitl.state.parking import ParkEntry
from scrapy_hitl.state.runs import create_run, heartbeat

TOKEN = "a-long-random-metrics-token-0123456789"


@pytest.fixture
def app(hitl_env, hitl_schema):
    app = create_app({"metrics_token": TOKEN})
    yield app
    app.extensions["hitl"].close()


def scrape(client):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    return families, samples


@pytest.mark.parametrize("headers, status, error", [
    ({}, 401, "unauthorized"),
    ({"Authorization": "Bearer wrong-token-wrong-token-wrong"}, 401, "unauthorized"),
    ({"Authorization": f"Basic {TOKEN}"}, 401, "unauthorized"),
    ({"Authorization": f"Bearer {TOKEN}x"}, 401, "unauthorized"),
])
def test_only_the_metrics_token_may_scrape(app, headers, status, error):
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == status and response.json["error"] == error


def test_without_a_token_metrics_are_off(hitl_env, hitl_schema):
    app = create_app()
    try:
        response = app.test_client().get("/metrics")
        assert response.status_code == 404 and response.json["error"] == "metrics_off"
        assert "HITL_METRICS_TOKEN" in response.json["detail"]
    finally:
        app.extensions["hitl"].close()


@pytest.mark.parametrize("token", ["short", " " * 20 + "x"])
def test_a_guessable_token_stops_the_start_naming_the_setting(hitl_env, hitl_schema, monkeypatch, token):
    monkeypatch.setenv("HITL_METRICS_TOKEN", token)
    with pytest.raises(ValueError, match="HITL_METRICS_TOKEN is shorter than 16 characters"):
        create_app()


def _park(state, domain, n, spider="shop"):
    entries = [ParkEntry.build(domain=domain, fingerprint=f"{domain}-{i}", request={"url": f"https://{domain}/{i}"},
                               reason="forbidden") for i in range(n)]
    state.parking.park(spider, entries)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)  # the histograms' SQL differs
def test_each_metric_counts_the_shared_state(app):
    state = app.extensions["hitl"]
    client = app.test_client()
    _, empty = scrape(client)
    assert empty[("hitl_interventions_open", (("type", "captcha_solve"),))] == 0
    assert {k[1][0][1]: v for k, v in empty.items() if k[0] == "hitl_scrape_failed"} == dict.fromkeys(
        ("interventions", "parked", "consultations", "webhooks", "reviews", "crawlers", "workers", "jobs",
         "ownership", "notifications"), 0)

    # interventions: two open, one resolved 90 s after the block
    first, _ = interventions.open_or_update(state, type="captcha_solve", reason="captcha", domain="a.example")
    second, _ = interventions.open_or_update(state, type="captcha_solve", reason="captcha", domain="b.example")
    interventions.open_or_update(state, type="login_refresh", reason="http_401", domain="a.example")
    interventions.resolve(state, first["id"], actor="test")
    with state.db.session() as s:
        row = s.get(models.Intervention, first["id"])
        row.resolved_at = row.created_at + timedelta(seconds=90)
    ownership.take(state, "intervention", second["id"], owner="console:me@example.com")  # "I'm on it"
    with state.db.session() as s:
        owned = s.get(models.Intervention, second["id"])
        owned.created_at = owned.owned_at - timedelta(seconds=45)  # blocked 45 s before
    # parked requests on 22 domains: the top 20 by count, then the rest summed
    for i in range(22):
        _park(state, f"d{i:02}.example", 1 + (i >= 2))
    # consultations: two pending (one high priority), one answered
    asked = [consultations.create(state, title=f"q{i}", priority=p)["id"]
             for i, p in enumerate((5, 0, 0))]
    consultations.respond(state, asked[2], {"ok": True}, actor="user:me@example.com")
    # review queue, live crawls, workers and a queue
    create_run(state.db, "run-1", "shop", {}, "/tmp")
    with state.db.session() as s:
        for status in ("pending_review", "pending_review", "optional_review", "delivered"):
            s.add(models.ScrapedItem(run_id="run-1", spider="shop", status=status, score=0.4, data="{}"))
    with state.db.session() as s:
        s.execute(sa.update(models.Run).where(models.Run.id == "run-1").values(status="running"))
    heartbeat(state.redis, "run-1", ttl=60)
    with state.db.session() as s:  # a crawl job a worker is running
        s.add(models.Job(project="demo", spider="shop", status="running", run_id="run-1"))
    worker = Worker([Queue("hitl-test", connection=state.redis)], connection=state.redis, name="metrics-test")
    worker.register_birth()
    worker.set_state("idle")  # what a started worker waiting for jobs says
    Queue("hitl-test", connection=state.redis).enqueue("builtins.print", "x")

    # notifications: one delivered at the first attempt, one failed once and waiting to retry
    channel = notify_channels.add(state, name="team", url="json://127.0.0.1/hook", scheme="json",
                                  redacted="json://127.0.0.1/…", actor="test")
    for key, outcome in (("g1", "delivered"), ("g2", "retry")):
        message_id, _when = notifications.add(state.db, channel_id=channel["id"], group_key=key,
                                              event_type="intervention.created", throttle=0)
        claim = notifications.claim(state.db, message_id, lease_seconds=30)
        notifications.finish(state.db, claim, outcome, error=None if outcome == "delivered" else "HTTP 500",
                             next_attempt_at=utcnow() + timedelta(seconds=60))

    families, got = scrape(client)
    assert got[("hitl_interventions_open", (("type", "captcha_solve"),))] == 1
    assert got[("hitl_interventions_open", (("type", "login_refresh"),))] == 1
    resolution = {dict(k[1]).get("le"): v for k, v in got.items()
                  if k[0] == "hitl_intervention_resolution_seconds_bucket" and dict(k[1])["type"] == "captcha_solve"}
    assert resolution == {**{str(float(b)): float(b >= 90) for b in BUCKETS}, "+Inf": 1.0}
    assert 89 < got[("hitl_intervention_resolution_seconds_sum", (("type", "captcha_solve"),))] < 91
    owner = {dict(k[1]).get("le"): v for k, v in got.items()
             if k[0] == "hitl_intervention_owner_seconds_bucket" and dict(k[1])["type"] == "captcha_solve"}
    assert owner == {**{str(float(b)): float(b >= 45) for b in BUCKETS}, "+Inf": 1.0}
    assert got[("hitl_domains_paused", ())] == 2
    parked = {dict(k[1])["domain"]: v for k, v in got.items() if k[0] == "hitl_parked_requests"}
    assert len(parked) == 21 and parked["_other"] == 2 and parked["d21.example"] == 2 and "d00.example" not in parked
    assert got[("hitl_consultations_pending", (("priority", "high"),))] == 1
    assert got[("hitl_consultations_pending", (("priority", "normal"),))] == 1
    assert got[("hitl_consultation_answer_seconds_count", (("priority", "normal"),))] == 1
    assert got[("hitl_review_queue_items", (("status", "pending_review"),))] == 2
    assert got[("hitl_review_queue_items", (("status", "optional_review"),))] == 1
    assert got[("hitl_crawlers_live", ())] == 1
    assert (got[("hitl_workers", (("state", "idle"),))], got[("hitl_workers", (("state", "busy"),))]) == (1, 0)
    assert got[("hitl_queue_jobs", (("queue", "hitl-test"),))] == 1
    assert (got[("hitl_jobs", (("state", "running"),))], got[("hitl_jobs", (("state", "queued"),))]) == (1, 0)
    assert got[("hitl_notification_attempts_total", (("outcome", "delivered"),))] == 1
    assert got[("hitl_notification_attempts_total", (("outcome", "error"),))] == 1
    assert (got[("hitl_notifications", (("state", "delivered"),))], got[("hitl_notifications", (("state", "pending"),))]) \
        == (1, 1)
    assert got[("hitl_webhook_attempts_total", (("outcome", "delivered"),))] == 0
    assert families["hitl_webhook_attempts"].type == "counter"
    assert families["hitl_intervention_resolution_seconds"].type == "histogram"
    worker.register_death()
