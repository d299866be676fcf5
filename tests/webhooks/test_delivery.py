"""One attempt at a time (``deliver_event`` called in the test), against a real local receiver:
signatures, 410, Retry-After, rotation, redirects, giving up and redelivering, timeouts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from hitl_console.webhooks.config import WebhookConfig
from hitl_console.webhooks.delivery import deliver_event, signature_headers
from hitl_console.webhooks.worker import Sweeper
from scrapy_hitl.state import apikeys, consultations, deliveries, webhook_events
from scrapy_hitl.state.models import Consultation, utcnow
from tests.webhooks.conftest import event_ids

CONFIG = WebhookConfig(allow_private=True, retry_schedule=(0.05, 0.1, 0.2), max_attempts=5, timeout=2)


def answered(agent, url: str, answer: str = "yes") -> tuple[dict, int]:
    asked = agent.ask(url)
    consultations.respond(agent.state, asked["id"], answer, actor="user:ann@example.com")
    (event_id,) = event_ids(agent.state, asked["id"])
    return asked, event_id


def test_the_signature_verifies_and_tampering_or_a_stale_timestamp_fails(state, agent, receiver):
    rec = receiver()
    asked, event_id = answered(agent, rec.url)
    assert deliver_event(state, CONFIG, event_id) == "delivered"
    (request,) = rec.requests
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")
    payload = Webhook(agent.secret).verify(request["body"], headers)
    assert payload["type"] == "consultation.responded"
    assert payload["data"]["id"] == asked["id"] and payload["data"]["response"] == "yes"
    assert payload["data"]["state"] == "responded"
    tampered = request["body"].replace(b'"yes"', b'"no"')
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(agent.secret).verify(tampered, headers)
    stale = signature_headers(headers["webhook-id"], request["body"].decode(), [agent.secret],
                              utcnow() - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(agent.secret).verify(request["body"], stale)
    _other, _key, other_secret = apikeys.create(state, "another agent")
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(request["body"], headers)

    done = consultations.get(state, asked["id"])
    assert done["state"] == "callback_sent"
    assert done["history"][-1]["actor"] == "webhook-worker"
    assert done["history"][-1]["detail"]["webhook_id"] == headers["webhook-id"]
    (attempt,) = deliveries.list_for(state.db, asked["id"])
    assert (attempt["attempt"], attempt["status_code"], attempt["error"]) == (1, 200, None)
    assert attempt["webhook_id"] == headers["webhook-id"] and attempt["url"] == rec.url
    assert attempt["response_excerpt"] == "ok" and attempt["duration_ms"] >= 0


def test_a_410_disables_the_keys_endpoint(state, agent, receiver):
    rec = receiver([(410, {}, b"gone")])
    first, event_id = answered(agent, rec.url)
    assert deliver_event(state, CONFIG, event_id) == "disabled"
    assert apikeys.get(state, agent.id)["webhook_disabled_at"] is not None
    assert consultations.get(state, first["id"])["state"] == "callback_failed"
    (event,) = webhook_events.list_for(state.db, first["id"])
    assert event["state"] == "disabled" and event["next_attempt_at"] is None
    # No retry; and the key's next webhook is not even attempted.
    second, second_event = answered(agent, rec.url)
    assert deliver_event(state, CONFIG, second_event) == "disabled"
    assert rec.connections == 1
    assert deliveries.list_for(state.db, second["id"]) == []
    assert consultations.get(state, second["id"])["state"] == "callback_failed"


HTTP_DATE_IN_5_MIN = "http-date"  # built when the test runs: collection may be minutes earlier


@pytest.mark.parametrize(("header", "expected"), [
    pytest.param("120", 120.0, id="seconds"),
    pytest.param(HTTP_DATE_IN_5_MIN, None, id="http-date"),
    pytest.param("999999", 3600.0, id="capped-at-HITL_WEBHOOK_RETRY_AFTER_MAX"),
    pytest.param("soon", 0.0, id="malformed-ignored"),
])
def test_retry_after_sets_the_next_attempt(state, agent, receiver, header, expected):
    if header == HTTP_DATE_IN_5_MIN:
        expected = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=5)
        header = format_datetime(expected, usegmt=True)
    rec = receiver([(503, {"Retry-After": header}, b"busy")])
    _asked, event_id = answered(agent, rec.url)
    before = utcnow()
    assert deliver_event(state, CONFIG, event_id, rng=lambda: 0.0) == "retry"
    after = utcnow()
    scheduled = webhook_events.next_attempt_at(state.db, event_id)
    if isinstance(expected, datetime):
        assert expected - timedelta(seconds=1) <= scheduled <= expected + timedelta(seconds=1)
    else:
        assert before + timedelta(seconds=expected) <= scheduled <= after + timedelta(seconds=expected)
    # ...and RQ's scheduler has the job for that moment (to the second).
    registry = ScheduledJobRegistry(queue=Queue(webhook_events.QUEUE, connection=state.redis))
    times = [registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()]
    assert any(abs((t - scheduled).total_seconds()) <= 1 for t in times), (times, scheduled)


def test_a_rotated_secret_signs_twice_during_the_grace_period(state, agent, receiver):
    rec = receiver()
    _info, new_secret = apikeys.rotate_webhook_secret(state, agent.id, grace_seconds=3600)
    _asked, event_id = answered(agent, rec.url)
    assert deliver_event(state, CONFIG, event_id) == "delivered"
    (request,) = rec.requests
    signatures = request["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (new_secret, agent.secret):
        assert Webhook(secret).verify(request["body"], request["headers"])["type"] == "consultation.responded"
    # Each signature alone verifies with its own secret: the new one first.
    only_new = {**request["headers"], "webhook-signature": signatures[0]}
    Webhook(new_secret).verify(request["body"], only_new)
    with pytest.raises(WebhookVerificationError):
        Webhook(agent.secret).verify(request["body"], only_new)


def test_a_redirect_to_an_internal_host_is_not_followed(state, agent, receiver):
    internal = receiver()
    redirecting = receiver([(302, {"Location": internal.url}, b"")])
    asked, event_id = answered(agent, redirecting.url)
    assert deliver_event(state, CONFIG, event_id) == "retry"
    assert internal.connections == 0
    (attempt,) = deliveries.list_for(state.db, asked["id"])
    assert attempt["status_code"] == 302
    assert attempt["error"] == f"redirect (302 to {internal.url}) not followed"


def test_it_gives_up_after_the_maximum_then_a_redelivery_sends_the_same_webhook(state, agent, receiver):
    rec = receiver([(500, {}, b"oops"), (500, {}, b"oops")])
    config = WebhookConfig(allow_private=True, retry_schedule=(0.0,), max_attempts=2, timeout=2)
    asked, event_id = answered(agent, rec.url)
    assert [deliver_event(state, config, event_id) for _ in range(2)] == ["retry", "failed"]
    assert deliver_event(state, config, event_id) == "skipped"  # given up: nothing more
    failed = consultations.get(state, asked["id"])
    assert failed["state"] == "callback_failed"
    assert "gave up after 2 attempts" in failed["history"][-1]["detail"]["reason"]

    _id, event = webhook_events.redeliver(state.db, asked["id"])
    assert event["state"] == "pending"
    assert deliver_event(state, config, event_id) == "delivered"
    assert consultations.get(state, asked["id"])["state"] == "callback_sent"
    attempts = deliveries.list_for(state.db, asked["id"])
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 500), (3, 200)]
    assert len({a["webhook_id"] for a in attempts}) == 1
    assert len({r["headers"]["webhook-id"] for r in rec.requests}) == 1
    assert len({r["body"] for r in rec.requests}) == 1  # the same body, byte for byte


def test_an_unresolvable_or_refused_url(state, agent, receiver):
    refused = WebhookConfig(allow_private=False, retry_schedule=(0.0,), timeout=2)
    rec = receiver()
    asked, event_id = answered(agent, rec.url)
    assert deliver_event(state, refused, event_id) == "failed"  # 127.0.0.1: no retry can fix it
    (attempt,) = deliveries.list_for(state.db, asked["id"])
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("refused: the callback host 127.0.0.1 is a loopback address")
    assert rec.connections == 0


def test_no_webhook_without_a_callback_url_or_an_agent_or_on_cancel(state, agent, receiver):
    rec = receiver()
    quiet = agent.ask(None)
    consultations.respond(state, quiet["id"], "yes", actor="user:ann@example.com")
    spider = consultations.create(state, title="from a spider", options=["a"], callback_url=rec.url)
    consultations.respond(state, spider["id"], "a", actor="user:ann@example.com")
    cancelled = agent.ask(rec.url)
    consultations.cancel(state, cancelled["id"], actor=f"agent:{agent.id}", owner=agent.id)
    assert [event_ids(state, c["id"]) for c in (quiet, spider, cancelled)] == [[], [], []]


def test_a_timed_out_consultation_sends_its_webhook_from_the_sweep(state, agent, receiver):
    rec = receiver()
    asked = agent.ask(rec.url, timeout_seconds=60)
    with state.db.session() as s:
        s.execute(update(Consultation).where(Consultation.id == asked["id"])
                  .values(deadline_at=utcnow() - timedelta(seconds=1)))
    assert Sweeper(state, CONFIG).sweep(force=True)["timed_out"] == 1
    (event_id,) = event_ids(state, asked["id"])
    assert deliver_event(state, CONFIG, event_id) == "delivered"
    payload = json.loads(rec.requests[0]["body"])
    assert payload["type"] == "consultation.timed_out" and payload["data"]["state"] == "timed_out"
    assert consultations.get(state, asked["id"])["state"] == "timed_out"  # no callback_* state after it
