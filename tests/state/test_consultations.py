"""Tests for scrapy_hitl.state.consultations (and deliveries), on SQLite and PostgreSQL, with
real Redis."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from scrapy_hitl.state import apikeys, consultations, deliveries
from scrapy_hitl.state.consultations import (
    AnswerInvalid,
    ConsultationClosed,
    ConsultationInvalid,
    ConsultationNotFound,
)
from scrapy_hitl.state.models import Consultation, utcnow

pytestmark = pytest.mark.postgres

SCHEMA = {
    "type": "object",
    "properties": {"price": {"type": "number", "minimum": 0}, "currency": {"enum": ["EUR", "USD"]}},
    "required": ["price", "currency"],
    "additionalProperties": False,
}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: every test here runs on both databases."""
    return request.param


@pytest.fixture
def key_id(state):
    return apikeys.create(state, "bot")[0]["id"]


def ask(state, **kwargs):
    kwargs.setdefault("title", "Is this the right person?")
    return consultations.create(state, **kwargs)


def events(state, prefix="consultation."):
    return [e for e in state.events.read(count=10_000) if e.type.startswith(prefix)]


# --- create ------------------------------------------------------------------------------------


def test_create_with_defaults(state, key_id):
    before = utcnow()
    data = ask(state, api_key_id=key_id, actor=f"agent:{key_id}", context={"html": "<b>x</b>"})
    assert data["state"] == "pending" and data["api_key_id"] == key_id
    assert (data["timeout_seconds"], data["priority"], data["metadata"]) == (86400, 0, {})
    assert (data["options"], data["response_schema"], data["callback_url"], data["response"]) == (None,) * 4
    assert data["context"] == {"html": "<b>x</b>"}
    deadline = consultations.get(state, data["id"])["deadline_at"]
    assert deadline > (before + timedelta(seconds=86399)).isoformat()
    full = consultations.get(state, data["id"])
    assert [(h["action"], h["actor"]) for h in full["history"]] == [("created", f"agent:{key_id}")]
    (ev,) = events(state)
    assert ev.type == "consultation.created"
    assert ev.payload == {"consultation_id": data["id"], "state": "pending", "priority": 0,
                          "title": "Is this the right person?", "api_key_id": key_id, "actor": f"agent:{key_id}"}


def test_create_normalizes_options(state):
    data = ask(state, options=["yes", {"value": "no"}, {"value": "rec_2", "label": "Ann Smith, 1970"}])
    assert data["options"] == [{"value": "yes", "label": "yes"}, {"value": "no", "label": "no"},
                               {"value": "rec_2", "label": "Ann Smith, 1970"}]


@pytest.mark.parametrize(("fields", "field", "message"), [
    pytest.param({"title": ""}, "title", "required", id="empty-title"),
    pytest.param({"title": "   "}, "title", "required", id="blank-title"),
    pytest.param({"title": "x" * 201}, "title", "1 to 200", id="long-title"),
    pytest.param({"title": 5}, "title", "required", id="title-not-a-string"),
    pytest.param({"description": 5}, "description", "a string", id="description-not-a-string"),
    pytest.param({"options": []}, "options", "a list of 1 to 50", id="no-options"),
    pytest.param({"options": "yes"}, "options", "a list of 1 to 50", id="options-not-a-list"),
    pytest.param({"options": ["a"] * 51}, "options", "a list of 1 to 50", id="too-many-options"),
    pytest.param({"options": ["yes", "yes"]}, "options", "'yes' is there twice", id="duplicates"),
    pytest.param({"options": ["a", {"value": "a", "label": "A"}]}, "options", "there twice",
                 id="duplicate-values"),
    pytest.param({"options": [""]}, "options", "[0]: the value must be", id="empty-option"),
    pytest.param({"options": [1]}, "options", "[0] must be a string or an object", id="number-option"),
    pytest.param({"options": [{"label": "x"}]}, "options", "[0]: the value must be", id="no-value"),
    pytest.param({"options": [{"value": "a", "x": 1}]}, "options", "[0] must be", id="unknown-option-key"),
    pytest.param({"options": ["a"], "response_schema": {"type": "string"}}, "response_schema",
                 "not both", id="options-and-schema"),
    pytest.param({"response_schema": {"type": "nope"}}, "response_schema", "not a valid JSON Schema",
                 id="bad-type"),
    pytest.param({"response_schema": {"properties": {"a": {"minimum": "0"}}}}, "response_schema",
                 "(at /properties/a/minimum)", id="bad-keyword-deep"),
    pytest.param({"response_schema": "string"}, "response_schema", "a JSON Schema object", id="not-an-object"),
    pytest.param({"response_schema": {"$ref": "https://example.com/s.json"}}, "response_schema",
                 "only local references", id="remote-ref"),
    pytest.param({"response_schema": {"$ref": "#"}}, "response_schema", "loop without end", id="ref-loop"),
    pytest.param({"response_schema": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/x"}],
                                      "$defs": {"x": {"$ref": "#/$defs/x"}}}},
                 "response_schema", "loop without end", id="ref-loop-in-a-branch"),
    pytest.param({"response_schema": {"properties": {"a": {"$ref": "#/$defs/gone"}}}}, "response_schema",
                 "the $ref '#/$defs/gone' points nowhere", id="dangling-ref"),
    pytest.param({"callback_url": "ftp://example.com/x"}, "callback_url", "http or https", id="ftp"),
    pytest.param({"callback_url": "javascript:alert(1)"}, "callback_url", "http or https", id="js"),
    pytest.param({"callback_url": "https:///path"}, "callback_url", "http or https", id="no-host"),
    pytest.param({"callback_url": "https://exa mple.com/"}, "callback_url", "http or https", id="space"),
    pytest.param({"callback_url": "https://example.com:99999/"}, "callback_url", "http or https", id="port"),
    pytest.param({"callback_url": "https://e.com/" + "a" * 2048}, "callback_url", "http", id="long-url"),
    pytest.param({"timeout_seconds": 0}, "timeout_seconds", "from 1 to 604800", id="timeout-0"),
    pytest.param({"timeout_seconds": 604801}, "timeout_seconds", "from 1 to 604800", id="timeout-8-days"),
    pytest.param({"timeout_seconds": 60.5}, "timeout_seconds", "an integer", id="timeout-float"),
    pytest.param({"timeout_seconds": True}, "timeout_seconds", "an integer", id="timeout-bool"),
    pytest.param({"priority": 101}, "priority", "from -100 to 100", id="priority-high"),
    pytest.param({"priority": -101}, "priority", "from -100 to 100", id="priority-low"),
    pytest.param({"priority": "1"}, "priority", "an integer", id="priority-string"),
    pytest.param({"metadata": []}, "metadata", "a JSON object", id="metadata-list"),
])
def test_create_refuses_invalid_fields(state, fields, field, message):
    with pytest.raises(ConsultationInvalid) as excinfo:
        ask(state, **fields)
    assert list(excinfo.value.errors) == [field]
    assert message in excinfo.value.errors[field]
    assert events(state) == []


def test_create_names_every_bad_field_at_once(state):
    with pytest.raises(ConsultationInvalid) as excinfo:
        ask(state, title="", priority=500, callback_url="file:///etc/passwd")
    assert set(excinfo.value.errors) == {"title", "priority", "callback_url"}


@pytest.mark.parametrize("fields", [
    pytest.param({"timeout_seconds": 1, "priority": -100}, id="lowest"),
    pytest.param({"timeout_seconds": 604800, "priority": 100}, id="highest"),
    pytest.param({"callback_url": "http://127.0.0.1:9/hook"}, id="http-ip"),  # SSRF checks: at delivery
    pytest.param({"response_schema": {"$defs": {"p": {"type": "number"}}, "$ref": "#/$defs/p"}}, id="local-ref"),
    pytest.param({"response_schema": {"$schema": "http://json-schema.org/draft-07/schema#",
                                      "type": "string"}}, id="draft-7"),
    pytest.param({"response_schema": {"type": "object", "properties": {"child": {"$ref": "#"}}}},
                 id="recursive-through-a-property"),
    pytest.param({"response_schema": {"$id": "https://agent.example/answer", "$defs": {"p": {"type": "number"}},
                                      "properties": {"price": {"$ref": "#/$defs/p"}}}}, id="with-id"),
    pytest.param({"context": [1, "two", None], "metadata": {"trace": "abc"}}, id="any-context"),
    pytest.param({"title": "x" * 200, "description": "d" * 20_000}, id="longest-text"),
])
def test_create_accepts_valid_fields(state, fields):
    assert ask(state, **fields)["state"] == "pending"


# --- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "answer"), [
    pytest.param({"options": ["yes", "no"]}, "no", id="option"),
    pytest.param({"options": [{"value": "rec_2", "label": "Ann"}]}, "rec_2", id="option-value"),
    pytest.param({"response_schema": SCHEMA}, {"price": 9.5, "currency": "EUR"}, id="schema"),
    pytest.param({"response_schema": {"type": "string", "format": "email"}}, "ann@example.com", id="format"),
    pytest.param({}, "free text", id="free-text"),
    pytest.param({}, {"any": ["json"]}, id="free-json"),
])
def test_respond_accepts_a_fitting_answer(state, fields, answer):
    data = ask(state, **fields)
    done = consultations.respond(state, data["id"], answer, actor="user:ann@example.com")
    assert (done["state"], done["response"], done["responded_by"]) == ("responded", answer, "user:ann@example.com")
    assert done["responded_at"] is not None
    again = consultations.get(state, data["id"])
    assert again["response"] == answer
    assert [h["action"] for h in again["history"]] == ["created", "responded"]
    assert [e.type for e in events(state)] == ["consultation.created", "consultation.responded"]


@pytest.mark.parametrize(("fields", "answer", "detail"), [
    pytest.param({"options": ["yes", "no"]}, "maybe",
                 {"message": "'maybe' is not one of the options: 'yes', 'no'", "path": [], "json_path": "$",
                  "validator": "options", "options": ["yes", "no"]}, id="not-an-option"),
    pytest.param({"options": [{"value": "rec_2", "label": "Ann"}]}, "Ann", {"validator": "options"},
                 id="label-is-not-the-value"),
    pytest.param({"options": ["1"]}, 1, {"validator": "options"}, id="number-for-string-option"),
    pytest.param({"response_schema": SCHEMA}, {"price": -1, "currency": "EUR"},
                 {"message": "-1 is less than the minimum of 0", "path": ["price"], "json_path": "$.price",
                  "validator": "minimum", "schema_path": ["properties", "price", "minimum"]}, id="minimum"),
    pytest.param({"response_schema": SCHEMA}, {"price": 1}, {"validator": "required", "path": []},
                 id="required"),
    pytest.param({"response_schema": SCHEMA}, {"price": 1, "currency": "GBP"},
                 {"validator": "enum", "path": ["currency"]}, id="enum"),
    pytest.param({"response_schema": {"type": "array", "items": {"type": "integer"}}}, [1, "2"],
                 {"path": [1], "json_path": "$[1]", "validator": "type"}, id="array-item"),
    pytest.param({"response_schema": {"type": "string", "format": "email"}}, "not an email",
                 {"validator": "format"}, id="format-asserted"),
    pytest.param({}, None, {"message": "an answer is required (null is not one)"}, id="null"),
])
def test_respond_refuses_an_answer_that_does_not_fit(state, fields, answer, detail):
    data = ask(state, **fields)
    with pytest.raises(AnswerInvalid) as excinfo:
        consultations.respond(state, data["id"], answer, actor="user:ann@example.com")
    assert excinfo.value.detail.items() >= detail.items(), excinfo.value.detail
    assert {"message", "path", "json_path"} <= set(excinfo.value.detail)
    assert consultations.get(state, data["id"])["state"] == "pending"


# --- transitions -------------------------------------------------------------------------------


def test_only_a_pending_consultation_can_be_answered_or_cancelled(state):
    answered = ask(state)
    consultations.respond(state, answered["id"], "yes", actor="user:a@example.com")
    cancelled = ask(state)
    consultations.cancel(state, cancelled["id"], actor="agent:1", reason="found it myself")
    for done, state_ in ((answered, "responded"), (cancelled, "cancelled")):
        with pytest.raises(ConsultationClosed) as excinfo:
            consultations.respond(state, done["id"], "again", actor="user:b@example.com")
        assert excinfo.value.state == state_
        with pytest.raises(ConsultationClosed, match=f"is {state_}; it cannot become cancelled"):
            consultations.cancel(state, done["id"], actor="agent:1")
    history = consultations.get(state, cancelled["id"])["history"]
    assert history[-1]["detail"] == {"reason": "found it myself"}
    for fn in (lambda: consultations.respond(state, 999, "x", actor="u"),
               lambda: consultations.cancel(state, 999, actor="a"), lambda: consultations.get(state, 999)):
        with pytest.raises(ConsultationNotFound, match="No consultation with id 999."):
            fn()


def test_an_owner_sees_and_cancels_only_its_own(state, key_id):
    other = apikeys.create(state, "other")[0]["id"]
    mine = ask(state, api_key_id=key_id)
    assert consultations.get(state, mine["id"], owner=key_id)["id"] == mine["id"]
    with pytest.raises(ConsultationNotFound):
        consultations.get(state, mine["id"], owner=other)
    with pytest.raises(ConsultationNotFound):
        consultations.cancel(state, mine["id"], actor=f"agent:{other}", owner=other)
    assert consultations.get(state, mine["id"])["state"] == "pending"
    assert consultations.cancel(state, mine["id"], actor=f"agent:{key_id}", owner=key_id)["state"] == "cancelled"


def test_of_two_concurrent_answers_exactly_one_wins(state):
    data = ask(state, options=["a", "b"])
    results, barrier = [], threading.Barrier(4)

    def answer(value):
        barrier.wait()
        try:
            results.append(consultations.respond(state, data["id"], value, actor=f"user:{value}")["response"])
        except ConsultationClosed:
            results.append("closed")

    threads = [threading.Thread(target=answer, args=(v,)) for v in ("a", "b", "a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count("closed") == 3
    assert [h["action"] for h in consultations.get(state, data["id"])["history"]] == ["created", "responded"]


def test_callback_states(state):
    data = ask(state, callback_url="https://agent.example/hook")
    with pytest.raises(ConsultationClosed):
        consultations.mark_callback(state, data["id"], delivered=True)  # nothing was answered yet
    consultations.respond(state, data["id"], "yes", actor="user:a@example.com")
    assert consultations.mark_callback(state, data["id"], delivered=False)["state"] == "callback_failed"
    sent = consultations.mark_callback(state, data["id"], delivered=True, detail={"attempt": 5})
    assert sent["state"] == "callback_sent"
    assert consultations.get(state, data["id"])["history"][-1] == {
        **consultations.get(state, data["id"])["history"][-1], "action": "callback_sent", "actor": "system",
        "detail": {"attempt": 5}}
    with pytest.raises(ConsultationClosed):
        consultations.mark_callback(state, data["id"], delivered=True)
    assert [e.type for e in events(state)][-2:] == ["consultation.callback_failed", "consultation.callback_sent"]


# --- deadlines ---------------------------------------------------------------------------------


def overdue(state, consultation_id, seconds=1):
    with state.db.session() as s:
        s.execute(update(Consultation).where(Consultation.id == consultation_id)
                  .values(deadline_at=utcnow() - timedelta(seconds=seconds)))


def test_expire_overdue_marks_only_pending_consultations_past_their_deadline(state):
    late, later, answered, fresh = (ask(state, title=t) for t in ("late", "later", "answered", "fresh"))
    overdue(state, late["id"], 100)
    overdue(state, later["id"], 10)
    consultations.respond(state, answered["id"], "x", actor="user:a@example.com")
    overdue(state, answered["id"], 100)
    expired = consultations.expire_overdue(state)
    assert [c["id"] for c in expired] == [late["id"], later["id"]]  # oldest deadline first
    assert {c["state"] for c in expired} == {"timed_out"}
    assert consultations.get(state, late["id"])["history"][-1]["actor"] == "system"
    assert consultations.get(state, fresh["id"])["state"] == "pending"
    assert consultations.get(state, answered["id"])["state"] == "responded"
    assert consultations.expire_overdue(state) == []  # each times out once
    assert [e.type for e in events(state)].count("consultation.timed_out") == 2


def test_expire_overdue_takes_now_and_a_limit(state):
    ids = [ask(state, timeout_seconds=60)["id"] for _ in range(3)]
    assert consultations.expire_overdue(state, utcnow() + timedelta(seconds=30)) == []
    later = utcnow() + timedelta(seconds=61)
    assert len(consultations.expire_overdue(state, later, limit=2)) == 2
    assert [c["id"] for c in consultations.expire_overdue(state, later)] == [ids[2]]


def test_an_answer_after_the_deadline_times_the_consultation_out(state):
    data = ask(state)
    overdue(state, data["id"])
    with pytest.raises(ConsultationClosed, match="timed out") as excinfo:
        consultations.respond(state, data["id"], "too late", actor="user:a@example.com")
    assert excinfo.value.state == "timed_out"
    assert consultations.get(state, data["id"])["state"] == "timed_out"


def test_expire_times_out_one_consultation_only_once_it_is_overdue(state):
    data = ask(state)
    assert consultations.expire(state, data["id"])["state"] == "pending"  # not due yet
    overdue(state, data["id"])
    expired = consultations.expire(state, data["id"])
    assert (expired["state"], expired["history"][-1]["actor"]) == ("timed_out", "system")
    assert consultations.expire(state, data["id"])["state"] == "timed_out"  # once
    assert [e.type for e in events(state)].count("consultation.timed_out") == 1
    with pytest.raises(ConsultationNotFound):
        consultations.expire(state, data["id"] + 1)


def test_current_times_out_an_overdue_consultation_as_it_is_read(state, key_id):
    data = ask(state, api_key_id=key_id)
    assert consultations.current(state, data["id"])["state"] == "pending"
    overdue(state, data["id"])
    with pytest.raises(ConsultationNotFound):  # another key's: not even expired
        consultations.current(state, data["id"], owner=key_id + 1)
    assert consultations.get(state, data["id"])["state"] == "pending"
    assert consultations.current(state, data["id"], owner=key_id)["state"] == "timed_out"


def test_who_asked_is_kept(state, key_id):
    assert ask(state, actor="spider:shop")["asked_by"] == "spider:shop"
    assert ask(state, api_key_id=key_id, actor=f"agent:{key_id}")["asked_by"] == f"agent:{key_id}"


# --- lists -------------------------------------------------------------------------------------


def test_list_filters_and_pages_newest_first(state, key_id):
    other = apikeys.create(state, "other")[0]["id"]
    ids = [ask(state, title=f"q{i}", priority=i * 10, api_key_id=key_id if i % 2 else other)["id"]
           for i in range(7)]
    consultations.respond(state, ids[0], "x", actor="user:a@example.com")

    def pages(**filters):
        seen, cursor = [], None
        while True:
            rows = consultations.list_(state, limit=3, cursor=cursor, **filters)
            seen += [r["id"] for r in rows]
            if len(rows) < 3:
                return seen
            cursor = [rows[-1]["id"]] if filters.get("order", "newest") == "newest" else \
                [rows[-1]["priority"], rows[-1]["id"]]

    assert pages() == ids[::-1]
    assert pages(state="pending") == ids[:0:-1]
    assert pages(state="responded") == [ids[0]]
    assert pages(min_priority=40) == [ids[6], ids[5], ids[4]]
    assert pages(api_key_id=key_id) == [ids[5], ids[3], ids[1]]
    assert pages(api_key_id=key_id, min_priority=30) == [ids[5], ids[3]]
    assert "history" not in consultations.list_(state)[0]


def test_list_as_a_queue_highest_priority_then_oldest(state):
    made = [(p, ask(state, priority=p)["id"]) for p in (0, 50, 0, 100, 50, -5)]
    expected = [i for _p, i in sorted(made, key=lambda pi: (-pi[0], pi[1]))]
    seen, cursor = [], None
    for _ in range(10):
        rows = consultations.list_(state, order="priority", limit=2, cursor=cursor)
        seen += [r["id"] for r in rows]
        if len(rows) < 2:
            break
        cursor = [rows[-1]["priority"], rows[-1]["id"]]
    assert seen == expected


def test_list_refuses_unknown_states_and_orders(state):
    with pytest.raises(ValueError, match="state must be one of pending, responded"):
        consultations.list_(state, state="open")
    with pytest.raises(ValueError, match="order must be one of newest, priority"):
        consultations.list_(state, order="oldest")


# --- waiting -----------------------------------------------------------------------------------


def later(delay, fn, *args, **kwargs):
    def run():
        time.sleep(delay)
        fn(*args, **kwargs)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["respond", "cancel", "expire"])
def test_wait_returns_as_soon_as_the_state_changes(state, how):
    data = ask(state)
    if how == "expire":
        overdue(state, data["id"])
    change = {"respond": lambda: consultations.respond(state, data["id"], "yes", actor="user:a@example.com"),
              "cancel": lambda: consultations.cancel(state, data["id"], actor="agent:1"),
              "expire": lambda: consultations.expire_overdue(state)}[how]
    thread = later(0.3, change)
    started = time.monotonic()
    got = consultations.wait_for_change(state, data["id"], timeout=20)
    waited = time.monotonic() - started
    thread.join()
    assert got["state"] == {"respond": "responded", "cancel": "cancelled", "expire": "timed_out"}[how]
    assert waited < 10, waited  # woken by Redis, not by the 5 s safety net or the timeout
    assert got["history"][-1]["action"] == got["state"]


def test_wait_times_out_with_the_pending_consultation(state):
    data = ask(state)
    started = time.monotonic()
    got = consultations.wait_for_change(state, data["id"], timeout=0.5)
    assert 0.4 < time.monotonic() - started < 5
    assert got["state"] == "pending"


def test_wait_returns_timed_out_at_the_consultations_own_deadline(state):
    data = ask(state, timeout_seconds=1)
    started = time.monotonic()
    got = consultations.wait_for_change(state, data["id"], timeout=30)
    assert got["state"] == "timed_out"
    assert time.monotonic() - started < 20  # at the deadline, not at the end of the wait


def test_wait_on_a_consultation_that_is_not_pending_returns_at_once(state):
    data = ask(state)
    consultations.respond(state, data["id"], "yes", actor="user:a@example.com")
    started = time.monotonic()
    assert consultations.wait_for_change(state, data["id"], timeout=30)["state"] == "responded"
    assert time.monotonic() - started < 5


def test_wait_checks_the_owner(state, key_id):
    data = ask(state, api_key_id=key_id)
    with pytest.raises(ConsultationNotFound):
        consultations.wait_for_change(state, data["id"], timeout=1, owner=key_id + 1)


# --- deliveries --------------------------------------------------------------------------------


def test_delivery_attempts_are_recorded(state, key_id):
    data = ask(state, api_key_id=key_id, callback_url="https://agent.example/hook")
    first = deliveries.record_attempt(
        state.db, consultation_id=data["id"], api_key_id=key_id, webhook_id="msg_1",
        event_type="consultation.responded", url="https://agent.example/hook", attempt=1,
        error="connection refused", duration_ms=3)
    second = deliveries.record_attempt(
        state.db, consultation_id=data["id"], api_key_id=key_id, webhook_id="msg_1",
        event_type="consultation.responded", url="https://agent.example/hook", attempt=2,
        status_code=200, response_excerpt="ok" * 1000, duration_ms=40)
    assert (first["status_code"], first["error"], first["response_excerpt"]) == (None, "connection refused", "")
    assert len(second["response_excerpt"]) == 1000 and second["error"] is None
    listed = deliveries.list_for(state.db, data["id"])
    assert [(d["attempt"], d["webhook_id"]) for d in listed] == [(1, "msg_1"), (2, "msg_1")]
    assert deliveries.list_for(state.db, data["id"], after=first["id"]) == [second]
