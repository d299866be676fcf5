"""``/health/live`` and ``/health``'s workers: RQ's real worker registry in Redis."""

from __future__ import annotations

from rq import Queue, Worker

from scrapy_hitl.state import jobs, webhook_events


def test_liveness_answers_without_login(client):
    answer = client.get("/health/live")
    assert answer.status_code == 200 and answer.json == {"status": "ok"}


def test_readiness_counts_the_workers_of_each_kind(client, hitl):
    body = client.get("/health").json
    assert body["status"] == "ok"  # no worker: the console still serves reviewers
    assert body["workers"] == {"ok": False, "crawls": 0, "webhooks": 0}
    crawls = Worker([Queue(q, connection=hitl.redis) for q in jobs.CRAWL_QUEUES], connection=hitl.redis)
    crawls.register_birth()
    try:
        assert client.get("/health").json["workers"] == {"ok": False, "crawls": 1, "webhooks": 0}
        hooks = Worker([Queue(webhook_events.QUEUE, connection=hitl.redis)], connection=hitl.redis)
        hooks.register_birth()
        assert client.get("/health").json["workers"] == {"ok": True, "crawls": 1, "webhooks": 1}
        hooks.register_death()
    finally:
        crawls.register_death()
    assert client.get("/health").json["workers"]["crawls"] == 0
