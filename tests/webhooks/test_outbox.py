"""The outbox (scrapy_hitl.state.webhook_events): written with the transition, claimed by one
worker at a time, taken over when a lease expires, found by the sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scrapy_hitl.state import consultations, deliveries, webhook_events
from scrapy_hitl.state.models import utcnow
from tests.webhooks.conftest import event_ids

URL = "https://hooks.agent.example/cb"


@pytest.fixture
def event_id(agent):
    asked = agent.ask(URL)
    consultations.respond(agent.state, asked["id"], "yes", actor="user:ann@example.com")
    (found,) = event_ids(agent.state, asked["id"])
    return found


def test_the_event_commits_or_rolls_back_with_the_transition(state, agent, monkeypatch):
    asked = agent.ask(URL)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(webhook_events, "add", broken)
        with pytest.raises(RuntimeError):
            consultations.respond(state, asked["id"], "yes", actor="user:ann@example.com")
    assert consultations.get(state, asked["id"])["state"] == "pending"  # the answer rolled back too
    consultations.respond(state, asked["id"], "yes", actor="user:ann@example.com")
    (event,) = webhook_events.list_for(state.db, asked["id"])
    assert event["state"] == "pending" and event["attempts"] == 0 and event["url"] == URL
    assert event["event_type"] == "consultation.responded" and event["webhook_id"].startswith("msg_")


def test_one_claim_at_a_time(state, event_id):
    first = webhook_events.claim(state.db, event_id, lease_seconds=60)
    assert first is not None and first.attempt == 1 and first.round_attempt == 1
    assert webhook_events.claim(state.db, event_id, lease_seconds=60) is None
    assert webhook_events.due(state.db) == []  # leased: not the sweep's


def test_an_expired_lease_is_taken_over_and_the_lost_attempt_recorded(state, event_id):
    first = webhook_events.claim(state.db, event_id, lease_seconds=30)
    later = utcnow() + timedelta(seconds=31)
    assert webhook_events.due(state.db, now=later) == [event_id]
    second = webhook_events.claim(state.db, event_id, lease_seconds=30, now=later)
    assert second is not None and second.attempt == 2 and second.webhook_id == first.webhook_id
    (lost,) = deliveries.list_for(state.db, first.consultation_id)
    assert (lost["attempt"], lost["status_code"], lost["error"]) == (1, None, webhook_events.INTERRUPTED)
    # The first worker comes back too late: its attempt is recorded, the event is not touched.
    assert not webhook_events.finish(state.db, first, "delivered", attempt={"status_code": 200})
    assert webhook_events.get(state.db, event_id)["state"] == "pending"
    assert webhook_events.finish(state.db, second, "delivered", attempt={"status_code": 200}, status_code=200)
    assert webhook_events.get(state.db, event_id)["state"] == "delivered"
    assert [a["attempt"] for a in deliveries.list_for(state.db, first.consultation_id)] == [1, 1, 2]


def test_the_sweep_leaves_fresh_events_to_their_job(state, event_id):
    assert webhook_events.due(state.db, grace=60) == []
    assert webhook_events.due(state.db, now=utcnow() + timedelta(seconds=61), grace=60) == [event_id]
    claim = webhook_events.claim(state.db, event_id, lease_seconds=60)
    retry_at = utcnow() + timedelta(seconds=10)
    webhook_events.finish(state.db, claim, "retry", attempt={"error": "refused"}, next_attempt_at=retry_at)
    assert webhook_events.due(state.db) == []  # not due yet
    assert webhook_events.claim(state.db, event_id, lease_seconds=60) is None
    assert webhook_events.due(state.db, now=retry_at) == [event_id]


def test_redeliver(state, agent, event_id):
    with pytest.raises(webhook_events.NoWebhook):
        webhook_events.redeliver(state.db, agent.ask(None)["id"])
    claim = webhook_events.claim(state.db, event_id, lease_seconds=60)
    webhook_events.finish(state.db, claim, "failed", attempt={"status_code": 500}, status_code=500, error="HTTP 500")
    again_id, event = webhook_events.redeliver(state.db, claim.consultation_id)
    assert again_id == event_id and event["state"] == "pending" and event["attempts"] == 1
    again = webhook_events.claim(state.db, event_id, lease_seconds=60)
    assert (again.attempt, again.round_attempt, again.webhook_id) == (2, 1, claim.webhook_id)
