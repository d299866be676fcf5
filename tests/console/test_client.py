"""hitl_console.client against the real console server (gunicorn), real database and Redis."""

from __future__ import annotations

import threading
import time

import pytest

from hitl_console.auth.users import create_user
from hitl_console.client import (
    ConsultationCancelled,
    Consultations,
    ConsultationTimedOut,
    HitlApiError,
)
from scrapy_hitl.state import apikeys, consultations
from tests.support.console import PASSWORD, RunningConsole

REVIEWER = "reviewer@example.com"


@pytest.fixture
def agent(console_server, state):
    create_user(state.db, REVIEWER, PASSWORD, "reviewer")
    info, key, _ = apikeys.create(state, "client test")
    client = Consultations(console_server.url, key, timeout=30)
    client.key_id = info["id"]
    return client


def answer_when_asked(console, state, answer, *, title):
    """A reviewer in another thread: waits for the question, answers it through the API."""
    token = console.login(REVIEWER)["access_token"]
    done = {}

    def run():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [c for c in consultations.list_(state, state="pending") if c["title"] == title]
            if found:
                done["status"], _, done["body"] = console.request(
                    "POST", f"/api/v1/consultations/{found[0]['id']}/respond", {"answer": answer},
                    headers={"Authorization": f"Bearer {token}"})
                done["at"] = time.monotonic()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def test_ask_blocks_until_a_reviewer_answers(console_server, state, agent):
    schema = {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}
    thread, done = answer_when_asked(console_server, state, {"price": 12.99}, title="The right price?")
    result = agent.ask("The right price?", response_schema=schema, context={"url": "https://shop.example/p/1"},
                       timeout_seconds=120, priority=10, metadata={"trace": "t-1"})
    returned = time.monotonic()
    thread.join(10)
    assert done["status"] == 200, done
    assert (result["state"], result["response"], result["responded_by"]) == (
        "responded", {"price": 12.99}, f"user:{REVIEWER}")
    assert (result["asked_by"], result["priority"], result["metadata"]) == (
        f"agent:{agent.key_id}", 10, {"trace": "t-1"})
    print(f"ask() returned {returned - done['at']:.3f} s after the answer")


def test_refusals_raise_with_the_status_and_the_json_error(console_server, state, agent):
    with pytest.raises(HitlApiError) as bad:
        agent.create("q", options=["a", "a"])
    assert (bad.value.status, bad.value.error) == (422, "invalid")
    assert bad.value.body == {"error": "invalid",
                              "detail": {"options": "[1]: 'a' is there twice; the values must be distinct"}}
    with pytest.raises(HitlApiError) as missing:
        agent.get(999)
    assert (missing.value.status, missing.value.detail) == (404, "No consultation with id 999.")

    data = agent.create("Cancel me", options=["x"])
    assert agent.get(data["id"])["history"][0]["action"] == "created"
    assert agent.get(data["id"], wait=1)["state"] == "pending"
    assert agent.cancel(data["id"], reason="not needed")["state"] == "cancelled"
    with pytest.raises(ConsultationCancelled) as cancelled:
        agent.wait(data["id"])
    assert cancelled.value.consultation["history"][-1]["detail"] == {"reason": "not needed"}
    with pytest.raises(HitlApiError) as closed:
        agent.cancel(data["id"])
    assert (closed.value.status, closed.value.error) == (409, "closed")

    ids = [agent.create(f"q{i}")["id"] for i in range(5)]
    assert [c["id"] for c in agent.iter(state="pending", limit=2)] == ids[::-1]
    assert agent.list(order="priority", limit=1)["next_cursor"]
    with pytest.raises(HitlApiError) as bad_filter:
        agent.list(state="open")
    assert bad_filter.value.status == 400

    apikeys.revoke(state, agent.key_id)
    with pytest.raises(HitlApiError) as revoked:
        agent.list()
    assert revoked.value.body == {"error": "unauthorized", "detail": "invalid API key"}
    assert "hitl_live_" not in repr(agent)


def test_ask_raises_when_nobody_answers_in_time(console_server, state, agent):
    started = time.monotonic()
    with pytest.raises(ConsultationTimedOut) as timed_out:
        agent.ask("Anyone?", timeout_seconds=1)
    assert timed_out.value.consultation["state"] == "timed_out"
    assert time.monotonic() - started < 30  # at the deadline, not after a whole long-poll
    with pytest.raises(TimeoutError):
        agent.wait(agent.create("Still there?")["id"], timeout=1)  # the caller's own bound


def test_a_long_poll_refused_for_lack_of_threads_is_retried(hitl_env, state, tmp_path):
    """With 8 threads the console takes one long-poll at a time: the second waiter gets 429
    with Retry-After, and the client waits and retries until it gets its answer."""
    server = RunningConsole(hitl_env, str(tmp_path / "small.log"), threads=8).start()
    try:
        _, key, _ = apikeys.create(state, "small")
        refused = []

        class Counting(Consultations):
            def _request(self, *args, **kwargs):
                try:
                    return super()._request(*args, **kwargs)
                except HitlApiError as exc:
                    refused.append((exc.status, exc.error, exc.headers.get("Retry-After")))
                    raise

        agent = Counting(server.url, key)
        first, second = agent.create("first"), agent.create("second")
        results = {}

        def wait(name, consultation_id):
            results[name] = agent.wait(consultation_id, timeout=60)

        threads = [threading.Thread(target=wait, args=("first", first["id"])),
                   threading.Thread(target=wait, args=("second", second["id"]))]
        for t in threads:
            t.start()
        time.sleep(1.0)  # both are waiting (one of them refused with 429, retrying)
        consultations.respond(state, first["id"], "one", actor="user:test")
        consultations.respond(state, second["id"], "two", actor="user:test")
        for t in threads:
            t.join(90)
        assert {k: v["response"] for k, v in results.items()} == {"first": "one", "second": "two"}
        assert refused and set(refused) == {(429, "too_many_waits", "2")}
    finally:
        server.stop()
