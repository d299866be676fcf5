"""The real thing: ``hitl worker`` processes (RQ worker + scheduler + sweep) on real Redis,
delivering to a real receiver on 127.0.0.1, answers given through the state layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from rq import Queue
from standardwebhooks import Webhook

from hitl_console.webhooks import delivery
from hitl_console.webhooks.config import WebhookConfig
from hitl_console.webhooks.worker import Sweeper, worker_class
from scrapy_hitl.state import consultations, deliveries, webhook_events
from tests.webhooks.conftest import event_ids, wait_for


def respond(agent, url: str) -> dict:
    asked = agent.ask(url)
    consultations.respond(agent.state, asked["id"], "yes", actor="user:ann@example.com")
    return asked


def settled(state, consultation_id: int, events: int = 1):
    """The consultation's events once none is pending, else None."""
    found = webhook_events.list_for(state.db, consultation_id)
    return found if len(found) == events and all(e["state"] != "pending" for e in found) else None


def test_an_answer_reaches_the_receiver_signed(state, agent, receiver, worker_process):
    rec = receiver()
    worker = worker_process()
    asked = respond(agent, rec.url)
    wait_for(lambda: consultations.get(state, asked["id"])["state"] == "callback_sent",
             what=f"the webhook; worker log:\n{worker.log()[-2000:]}")
    (request,) = rec.requests
    payload = Webhook(agent.secret).verify(request["body"], request["headers"])
    assert payload["type"] == "consultation.responded" and payload["data"]["response"] == "yes"


def test_a_receiver_down_for_three_attempts_gets_the_fourth(state, agent, receiver, worker_process):
    rec = receiver(["reset", "reset", "reset"])  # the first 3 connections are reset: "down"
    worker = worker_process()
    asked = respond(agent, rec.url)
    (event,) = wait_for(lambda: settled(state, asked["id"]),
                        what=f"the delivery; worker log:\n{worker.log()[-2000:]}")
    assert event["state"] == "delivered" and event["attempts"] == 4
    attempts = deliveries.list_for(state.db, asked["id"])
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
    assert {a["webhook_id"] for a in attempts} == {event["webhook_id"]}
    assert [a["status_code"] for a in attempts] == [None, None, None, 200]
    assert all(a["error"] for a in attempts[:3]) and attempts[3]["error"] is None
    assert rec.connections == 4
    (request,) = rec.requests  # only the fourth got through
    assert request["headers"]["webhook-id"] == event["webhook_id"]
    Webhook(agent.secret).verify(request["body"], request["headers"])
    assert consultations.get(state, asked["id"])["state"] == "callback_sent"


def test_a_worker_killed_mid_delivery_loses_nothing(state, agent, receiver, worker_process):
    rec = receiver(["hang"])  # the first request is read and never answered
    first = worker_process(HITL_WEBHOOK_TIMEOUT="1")  # a lease of 1 + 5 s
    asked = respond(agent, rec.url)
    wait_for(rec.got_request.is_set, what=f"the first attempt; worker log:\n{first.log()[-2000:]}")
    first.kill()  # SIGKILL, mid-request: no clean-up of any kind
    (pending,) = webhook_events.list_for(state.db, asked["id"])
    assert pending["state"] == "pending" and pending["attempts"] == 1

    second = worker_process(HITL_WEBHOOK_TIMEOUT="1")  # once the lease expires, its sweep takes over
    (event,) = wait_for(lambda: settled(state, asked["id"]),
                        what=f"the redelivery; worker log:\n{second.log()[-2000:]}")
    assert event["state"] == "delivered"
    attempts = deliveries.list_for(state.db, asked["id"])
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, None), (2, 200)]
    assert attempts[0]["error"] == webhook_events.INTERRUPTED
    assert [r["headers"]["webhook-id"] for r in rec.requests] == [event["webhook_id"]] * 2
    assert rec.requests[0]["body"] == rec.requests[1]["body"]
    assert consultations.get(state, asked["id"])["state"] == "callback_sent"


def test_a_failed_enqueue_is_recovered_by_the_sweep(state, agent, receiver, monkeypatch):
    """Redis refuses the enqueue after the commit: the event waits in the database, the sweep
    queues it, and an RQ worker (in-process, burst) delivers it."""
    rec = receiver()

    def down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    with monkeypatch.context() as m:
        m.setattr(webhook_events, "enqueue", down)
        asked = respond(agent, rec.url)
    queue = Queue(webhook_events.QUEUE, connection=state.redis)
    assert len(queue) == 0 and len(event_ids(state, asked["id"])) == 1

    config = WebhookConfig(allow_private=True, sweep_interval=0.05)
    delivery.use(state, config)
    sweeper = Sweeper(state, config)
    wait_for(lambda: sweeper.sweep(force=True)["queued"], what="the sweep to queue the event")
    worker_class()([queue], connection=state.redis).work(burst=True)
    assert consultations.get(state, asked["id"])["state"] == "callback_sent"
    assert json.loads(rec.requests[0]["body"])["data"]["id"] == asked["id"]


def test_a_burst_worker_sends_what_is_due_and_exits(state, agent, receiver, webhook_env, monkeypatch):
    rec = receiver()
    with monkeypatch.context() as m:  # nothing queued: only the sweep at start can find it
        m.setattr(webhook_events, "enqueue", lambda *a, **k: None)
        asked = respond(agent, rec.url)
    done = subprocess.run([sys.executable, "-m", "hitl_console.cli", "worker", "--burst"],
                          env={**os.environ, **webhook_env, "HITL_WEBHOOK_SWEEP_INTERVAL": "0.01"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert consultations.get(state, asked["id"])["state"] == "callback_sent"
    assert len(rec.requests) == 1


def test_the_worker_skips_items_nobody_reviewed_in_time_as_each_spider_chose(state, worker_process):
    from scrapy_hitl.state import items, runs

    run_id = runs.new_run_id()
    runs.create_run(state.db, run_id, "shop", {}, "/tmp")
    base = {"run_id": run_id, "spider": "shop", "item_type": "Product", "url": "http://shop.test/p", "score": 0.3}
    items.record(state.db, [{**base, "status": "pending_review", "data": {"sku": "drop"}}],
                 review_timeout=-1, timeout_action="drop")
    items.record(state.db, [{**base, "status": "pending_review", "data": {"sku": "deliver"}}],
                 review_timeout=-1, timeout_action="deliver")
    items.record(state.db, [{**base, "status": "pending_review", "data": {"sku": "later"}}], review_timeout=3600)
    worker = worker_process()
    wait_for(lambda: items.counts(state.db, run_id)["skipped"] == 2,
             what=f"the sweep to skip the overdue items; worker log:\n{worker.log()[-2000:]}")
    assert [e["sku"] for e in items.iter_export(state.db, run_id)] == ["deliver"]
    (later,) = items.list_items(state.db, run_id=run_id, status="pending_review")
    assert later["data"]["sku"] == "later"
    skipped = items.list_items(state.db, run_id=run_id, status="skipped")
    assert [items.history(state.db, i["id"])[0]["detail"]["action"] for i in skipped] == ["drop", "deliver"]
    # the sweep logs after its other work (the crawls it re-queues); the worker's other threads
    # (the notifier) may run first, so the line is waited for, not expected at once
    wait_for(lambda: "skipped" in worker.log(), what="the sweep's log line")
