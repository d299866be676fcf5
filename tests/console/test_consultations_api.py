"""The consultations API: agents ask and wait, reviewers answer; on the real state layer."""

from __future__ import annotations

import json
import threading
import time

import pytest

from hitl_console.api.consultations import MAX_WAITS_KEY
from scrapy_hitl.state import apikeys, consultations
from tests.support.console import PASSWORD

SCHEMA = {"type": "object", "properties": {"price": {"type": "number", "minimum": 0}},
          "required": ["price"], "additionalProperties": False}


@pytest.fixture
def agents(hitl):
    """Two agents: ``{"a": (key id, headers), "b": (...)}``."""
    out = {}
    for name in ("a", "b"):
        info, key, _ = apikeys.create(hitl, f"agent {name}")
        out[name] = (info["id"], {"Authorization": f"Bearer {key}"})
    return out


def ask(client, headers, **body):
    body.setdefault("title", "Which record is the right person?")
    response = client.post("/api/v1/consultations", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


# --- create ------------------------------------------------------------------------------------


def test_an_agent_creates_a_consultation(client, agents, hitl):
    key_id, agent = agents["a"]
    response = client.post("/api/v1/consultations", headers=agent, json={
        "title": "Is 12.99 EUR right for this item?", "description": "Scraped from the product page.",
        "context": {"url": "https://shop.example/p/1", "html": "<script>alert(1)</script>"},
        "options": ["yes", {"value": "no", "label": "No, the price is wrong"}],
        "callback_url": "https://agent.example/hooks/hitl", "timeout_seconds": 3600, "priority": 50,
        "metadata": {"trace_id": "t-1"}})
    assert response.status_code == 201, response.json
    data = response.json
    assert response.headers["Location"] == f"/api/v1/consultations/{data['id']}"
    assert (data["state"], data["api_key_id"], data["priority"], data["timeout_seconds"]) == (
        "pending", key_id, 50, 3600)
    assert data["asked_by"] == f"agent:{key_id}"
    assert data["options"] == [{"value": "yes", "label": "yes"}, {"value": "no", "label": "No, the price is wrong"}]
    assert data["context"]["html"] == "<script>alert(1)</script>"  # stored as given; pages render it as text
    history = client.get(f"/api/v1/consultations/{data['id']}", headers=agent).json["history"]
    assert [(h["action"], h["actor"]) for h in history] == [("created", f"agent:{key_id}")]
    (event,) = [e for e in hitl.events.read() if e.type.startswith("consultation.")]
    assert event.type == "consultation.created" and event.payload["consultation_id"] == data["id"]


@pytest.mark.parametrize(("body", "status", "detail"), [
    pytest.param({}, 422, {"title": "required"}, id="no-title"),
    pytest.param({"title": ""}, 422, {"title": "required: a string of 1 to 200 characters"}, id="empty"),
    pytest.param({"title": None}, 422, {"title": "required: a string of 1 to 200 characters"}, id="null"),
    pytest.param({"title": "q", "metadata": []}, 422, {"metadata": "a JSON object"}, id="metadata-list"),
    pytest.param({"title": "q", "options": ["a", "a"]}, 422,
                 {"options": "[1]: 'a' is there twice; the values must be distinct"}, id="duplicate-option"),
    pytest.param({"title": "q", "options": ["a"], "response_schema": {"type": "string"}}, 422,
                 {"response_schema": "give options or a response_schema, not both"}, id="both"),
    pytest.param({"title": "q", "response_schema": {"type": 12}}, 422, None, id="bad-schema"),
    pytest.param({"title": "q", "callback_url": "gopher://x"}, 422,
                 {"callback_url": "an http or https URL of at most 2048 characters"}, id="bad-url"),
    pytest.param({"title": "q", "timeout_seconds": 0, "priority": 1000}, 422,
                 {"timeout_seconds": "an integer from 1 to 604800", "priority": "an integer from -100 to 100"},
                 id="out-of-range"),
    pytest.param({"title": "q", "answer": "yes"}, 422, {"answer": "unknown field"}, id="unknown-field"),
    pytest.param(["q"], 400, "send a JSON object with Content-Type: application/json", id="not-an-object"),
])
def test_create_refuses_bad_bodies(client, agents, body, status, detail):
    response = client.post("/api/v1/consultations", json=body, headers=agents["a"][1])
    assert response.status_code == status, response.json
    assert response.json["error"] == ("invalid" if status == 422 else "bad_request")
    if detail is not None:
        assert response.json["detail"] == detail
    else:
        assert response.json["detail"]["response_schema"].startswith("not a valid JSON Schema: 12 is not valid")


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://127.0.0.1:8000/x",
                                 "http://[::ffff:127.0.0.1]/", "http://2130706433/", "https://localhost/hook"])
def test_an_internal_callback_url_is_refused_at_once(client, agents, monkeypatch, url):
    monkeypatch.setenv("HITL_WEBHOOK_ALLOW_PRIVATE", "0")
    response = client.post("/api/v1/consultations", json={"title": "q", "callback_url": url},
                           headers=agents["a"][1])
    assert response.status_code == 422, response.json
    assert set(response.json["detail"]) == {"callback_url"}


def test_bad_json_is_400(client, agents):
    response = client.post("/api/v1/consultations", data="{title:", content_type="application/json",
                           headers=agents["a"][1])
    assert (response.status_code, response.json["error"]) == (400, "bad_request")


def test_null_fields_take_their_defaults(client, agents):
    data = ask(client, agents["a"][1], options=None, response_schema=None, callback_url=None,
               timeout_seconds=None, priority=None, metadata=None, description=None)
    assert (data["timeout_seconds"], data["priority"], data["metadata"], data["description"]) == (86400, 0, {}, "")


# --- who sees what -------------------------------------------------------------------------------


def test_an_agent_sees_only_its_own_and_reviewers_see_all(client, agents, reviewer):
    (a_id, a), (b_id, b) = agents["a"], agents["b"]
    mine = ask(client, a, title="mine")
    theirs = ask(client, b, title="theirs")
    other = client.get(f"/api/v1/consultations/{theirs['id']}", headers=a)
    missing = client.get("/api/v1/consultations/9999", headers=a)
    assert (other.status_code, other.json["error"]) == (404, "not_found")
    assert other.json["detail"] == f"No consultation with id {theirs['id']}."  # as if it did not exist
    assert missing.status_code == 404
    assert client.get(f"/api/v1/consultations/{theirs['id']}?wait=1", headers=a).status_code == 404
    assert [c["id"] for c in client.get("/api/v1/consultations", headers=a).json["items"]] == [mine["id"]]
    assert client.get(f"/api/v1/consultations?api_key_id={b_id}", headers=a).json == {
        "items": [], "next_cursor": None}
    assert [c["id"] for c in client.get(f"/api/v1/consultations?api_key_id={a_id}", headers=a).json["items"]] \
        == [mine["id"]]

    everything = client.get("/api/v1/consultations", headers=reviewer).json["items"]
    assert [c["id"] for c in everything] == [theirs["id"], mine["id"]]
    only_b = client.get(f"/api/v1/consultations?api_key_id={b_id}", headers=reviewer).json["items"]
    assert [c["id"] for c in only_b] == [theirs["id"]]
    shown = client.get(f"/api/v1/consultations/{theirs['id']}", headers=reviewer)
    assert shown.status_code == 200 and shown.json["title"] == "theirs"


def test_a_consultation_a_spider_asked_is_seen_by_reviewers_only(client, agents, reviewer, hitl):
    data = consultations.create(hitl, title="Selector broke?", actor="spider:shop")
    assert client.get(f"/api/v1/consultations/{data['id']}", headers=agents["a"][1]).status_code == 404
    shown = client.get(f"/api/v1/consultations/{data['id']}", headers=reviewer).json
    assert (shown["api_key_id"], shown["asked_by"]) == (None, "spider:shop")


def test_list_filters_and_pages_across_pages(client, agents, reviewer, hitl):
    _a_id, a = agents["a"]
    ids = [ask(client, a, title=f"q{i}", priority=(i % 3) * 10)["id"] for i in range(7)]
    consultations.respond(hitl, ids[0], "yes", actor="user:reviewer@example.com")

    def collect(query, limit=2, headers=a):
        seen, cursor, pages = [], None, 0
        while True:
            url = f"/api/v1/consultations?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
            response = client.get(url, headers=headers)
            assert response.status_code == 200, response.json
            seen, cursor, pages = seen + [c["id"] for c in response.json["items"]], response.json["next_cursor"], \
                pages + 1
            if cursor is None:
                return seen, pages

    assert collect("") == (ids[::-1], 4)
    assert collect("", limit=7) == (ids[::-1], 1)
    assert collect("&state=pending", limit=3) == (ids[:0:-1], 2)
    assert collect("&state=responded") == ([ids[0]], 1)
    assert collect("&min_priority=20", headers=reviewer) == ([ids[5], ids[2]], 1)
    queue, _ = collect("&order=priority&state=pending", limit=2, headers=reviewer)
    assert queue == [ids[2], ids[5], ids[1], ids[4], ids[3], ids[6]]  # highest first, then oldest


@pytest.mark.parametrize("query", ["state=open", "min_priority=101", "min_priority=x", "order=oldest",
                                   "limit=0", "cursor=bm9wZQ", "api_key_id=0", "cursor=WzFd&order=priority"])
def test_list_refuses_bad_queries(client, agents, query):
    response = client.get(f"/api/v1/consultations?{query}", headers=agents["a"][1])
    assert response.status_code == 400 and response.json["error"] in ("bad_request", "bad_cursor")


# --- respond -----------------------------------------------------------------------------------


def test_a_reviewer_answers_with_an_option(client, agents, reviewer):
    a = agents["a"][1]
    data = ask(client, a, options=["yes", {"value": "no", "label": "No"}])
    wrong = client.post(f"/api/v1/consultations/{data['id']}/respond", json={"answer": "No"}, headers=reviewer)
    assert wrong.status_code == 422
    assert wrong.json == {"error": "invalid_answer", "detail": {
        "message": "'No' is not one of the options: 'yes', 'no'", "path": [], "json_path": "$",
        "validator": "options", "options": ["yes", "no"]}}
    done = client.post(f"/api/v1/consultations/{data['id']}/respond", json={"answer": "no"}, headers=reviewer)
    assert done.status_code == 200
    assert (done.json["state"], done.json["response"], done.json["responded_by"]) == (
        "responded", "no", "user:reviewer@example.com")
    seen = client.get(f"/api/v1/consultations/{data['id']}", headers=a).json
    assert seen["response"] == "no"
    assert [(h["action"], h["actor"]) for h in seen["history"]][-1] == ("responded", "user:reviewer@example.com")


def test_an_answer_that_violates_the_schema_is_422_with_the_schema_error(client, agents, reviewer):
    data = ask(client, agents["a"][1], response_schema=SCHEMA)
    url = f"/api/v1/consultations/{data['id']}/respond"
    bad = client.post(url, json={"answer": {"price": -3}}, headers=reviewer)
    assert bad.status_code == 422
    assert bad.json == {"error": "invalid_answer", "detail": {
        "message": "-3 is less than the minimum of 0", "path": ["price"], "json_path": "$.price",
        "validator": "minimum", "schema_path": ["properties", "price", "minimum"]}}
    extra = client.post(url, json={"answer": {"price": 3, "note": "x"}}, headers=reviewer).json["detail"]
    assert extra["validator"] == "additionalProperties" and "'note' was unexpected" in extra["message"]
    assert client.post(url, json={"answer": {"price": 3}}, headers=reviewer).json["response"] == {"price": 3}


def test_respond_errors(client, agents, reviewer):
    a = agents["a"][1]
    data = ask(client, a)
    url = f"/api/v1/consultations/{data['id']}/respond"
    missing = client.post(url, json={}, headers=reviewer)
    assert (missing.status_code, missing.json["detail"]) == (422, {"answer": "required"})
    unknown = client.post(url, json={"answer": "x", "note": "y"}, headers=reviewer)
    assert (unknown.status_code, unknown.json["detail"]) == (422, {"note": "unknown field"})
    null = client.post(url, json={"answer": None}, headers=reviewer)
    assert (null.status_code, null.json["error"]) == (422, "invalid_answer")
    assert client.post(url, data="x", headers=reviewer).status_code == 400
    assert client.post("/api/v1/consultations/999/respond", json={"answer": "x"}, headers=reviewer).status_code == 404
    as_agent = client.post(url, json={"answer": "x"}, headers=a)
    assert (as_agent.status_code, as_agent.json["error"]) == (403, "forbidden")  # an agent cannot answer itself
    assert client.post(url, json={"answer": "first"}, headers=reviewer).status_code == 200
    again = client.post(url, json={"answer": "second"}, headers=reviewer)
    assert (again.status_code, again.json["error"]) == (409, "closed")
    assert client.get(f"/api/v1/consultations/{data['id']}", headers=a).json["response"] == "first"


def test_unknown_ids_are_404_whatever_the_body(client, agents, reviewer):
    a = agents["a"][1]
    for path, headers in (("/api/v1/consultations/999/respond", reviewer), ("/api/v1/consultations/999/cancel", a)):
        for body in ({"nonsense": 1}, None):
            response = client.post(path, json=body, headers=headers)
            assert (response.status_code, response.json) == (
                404, {"error": "not_found", "detail": "No consultation with id 999."})


def test_respond_from_the_browser_needs_the_csrf_token(app, agents, users):
    browser = app.test_client()
    csrf = browser.post("/api/v1/auth/login", json={"email": "reviewer@example.com",
                                                    "password": PASSWORD}).json["csrf_token"]
    data = ask(browser, agents["a"][1])
    url = f"/api/v1/consultations/{data['id']}/respond"
    refused = browser.post(url, json={"answer": "yes"})
    assert (refused.status_code, refused.json["error"]) == (403, "csrf_failed")
    assert browser.get(f"/api/v1/consultations/{data['id']}").status_code == 200  # reads need none
    assert browser.post(url, json={"answer": "yes"}, headers={"X-CSRF-Token": csrf}).status_code == 200


# --- cancel ------------------------------------------------------------------------------------


def test_the_agent_that_asked_cancels(client, agents, reviewer):
    (a_id, a), (_b_id, b) = agents["a"], agents["b"]
    data = ask(client, a)
    url = f"/api/v1/consultations/{data['id']}/cancel"
    assert client.post(url, headers=b).status_code == 404  # not theirs
    as_reviewer = client.post(url, headers=reviewer)
    assert (as_reviewer.status_code, as_reviewer.json["error"]) == (403, "forbidden")
    bad = client.post(url, json={"reason": 5}, headers=a)
    assert (bad.status_code, bad.json["detail"]) == (422, {"reason": "a string of at most 1000 characters"})
    done = client.post(url, json={"reason": "solved it myself"}, headers=a)
    assert done.status_code == 200 and done.json["state"] == "cancelled"
    history = client.get(f"/api/v1/consultations/{data['id']}", headers=a).json["history"]
    assert (history[-1]["action"], history[-1]["actor"], history[-1]["detail"]) == (
        "cancelled", f"agent:{a_id}", {"reason": "solved it myself"})
    again = client.post(url, headers=a)
    assert (again.status_code, again.json["error"]) == (409, "closed")
    answer = client.post(f"/api/v1/consultations/{data['id']}/respond", json={"answer": "x"}, headers=reviewer)
    assert answer.status_code == 409


# --- long-poll ---------------------------------------------------------------------------------


def respond_later(app, consultation_id, delay, answer="yes"):
    """Answer from another thread, through the API, as a reviewer in another tab would."""
    when = {}

    def run():
        client = app.test_client()
        token = client.post("/api/v1/auth/login", json={"email": "reviewer@example.com",
                                                        "password": PASSWORD}).json["access_token"]
        time.sleep(delay)
        when["at"] = time.monotonic()
        response = client.post(f"/api/v1/consultations/{consultation_id}/respond", json={"answer": answer},
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200

    thread = threading.Thread(target=run)
    thread.start()
    return thread, when


def test_a_long_poll_returns_as_soon_as_the_answer_is_given(app, client, agents, users):
    a = agents["a"][1]
    data = ask(client, a, options=["yes", "no"])
    thread, when = respond_later(app, data["id"], delay=1.0)
    started = time.monotonic()
    response = client.get(f"/api/v1/consultations/{data['id']}?wait=30", headers=a)
    returned = time.monotonic()
    thread.join()
    assert response.status_code == 200
    assert (response.json["state"], response.json["response"]) == ("responded", "yes")
    assert returned - started < 25, "it waited out the wait instead of waking on the answer"
    print(f"long-poll returned {returned - when['at']:.3f} s after the answer was sent")


def test_a_long_poll_that_waits_out_answers_200_with_the_current_state(client, agents):
    a = agents["a"][1]
    data = ask(client, a)
    started = time.monotonic()
    response = client.get(f"/api/v1/consultations/{data['id']}?wait=1", headers=a)
    assert response.status_code == 200 and response.json["state"] == "pending"
    assert 0.9 < time.monotonic() - started < 10
    assert [h["action"] for h in response.json["history"]] == ["created"]


def test_a_long_poll_on_an_answered_consultation_returns_at_once(client, agents, reviewer):
    a = agents["a"][1]
    data = ask(client, a)
    client.post(f"/api/v1/consultations/{data['id']}/respond", json={"answer": "x"}, headers=reviewer)
    started = time.monotonic()
    assert client.get(f"/api/v1/consultations/{data['id']}?wait=60", headers=a).json["state"] == "responded"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("wait", ["61", "-1", "abc", "1.5", "1e3"])
def test_wait_out_of_range_is_400(client, agents, wait):
    data = ask(client, agents["a"][1])
    response = client.get(f"/api/v1/consultations/{data['id']}?wait={wait}", headers=agents["a"][1])
    assert response.status_code == 400
    assert response.json == {"error": "bad_request", "detail": {"wait": "an integer from 0 to 60 (seconds)"}}


def test_wait_0_does_not_wait(client, agents):
    data = ask(client, agents["a"][1])
    response = client.get(f"/api/v1/consultations/{data['id']}?wait=0", headers=agents["a"][1])
    assert response.status_code == 200 and response.json["state"] == "pending"


def test_long_polls_beyond_the_cap_get_429(app, client, agents, hitl):
    app.config[MAX_WAITS_KEY] = 1
    a = agents["a"][1]
    first, second = ask(client, a), ask(client, a)
    holding = {}

    def wait():
        holding["response"] = app.test_client().get(f"/api/v1/consultations/{first['id']}?wait=30", headers=a)

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while app.extensions["hitl_long_polls"].open < 1:  # the first one holds the slot
            assert time.monotonic() < deadline, "the first long-poll never started"
            time.sleep(0.01)
        refused = client.get(f"/api/v1/consultations/{second['id']}?wait=5", headers=a)
        assert refused.status_code == 429
        assert refused.json["error"] == "too_many_waits" and refused.headers["Retry-After"] == "2"
        assert client.get(f"/api/v1/consultations/{second['id']}", headers=a).status_code == 200  # no wait: fine
    finally:
        consultations.cancel(hitl, first["id"], actor="test")
        thread.join()
    assert holding["response"].json["state"] == "cancelled"
    assert app.extensions["hitl_long_polls"].open == 0  # released
    assert client.get(f"/api/v1/consultations/{second['id']}?wait=1", headers=a).status_code == 200


# --- hitl consultations --------------------------------------------------------------------------


def test_cli_lists_shows_answers_and_cancels(hitl):
    from click.testing import CliRunner

    from hitl_console.cli import main as cli

    runner = CliRunner()
    low = consultations.create(hitl, title="Low", actor="spider:shop", options=["yes", "no"])
    high = consultations.create(hitl, title="High", priority=50, actor="agent:1", response_schema=SCHEMA,
                                context={"url": "https://shop.example/p/1"})
    listed = runner.invoke(cli, ["consultations", "list", "--json"], catch_exceptions=False)
    assert [c["id"] for c in json.loads(listed.output)] == [high["id"], low["id"]]
    table = runner.invoke(cli, ["consultations", "list"], catch_exceptions=False).output
    assert "spider:shop" in table and table.index("High") < table.index("Low")
    shown = runner.invoke(cli, ["consultations", "show", str(high["id"])], catch_exceptions=False).output
    assert "https://shop.example/p/1" in shown and "the answer must satisfy" in shown

    wrong = runner.invoke(cli, ["consultations", "respond", str(low["id"]), "maybe"])
    assert wrong.exit_code == 1 and "not one of the options" in wrong.output
    assert runner.invoke(cli, ["consultations", "respond", str(low["id"]), "yes", "--by", "ann"]).exit_code == 0
    assert consultations.get(hitl, low["id"])["responded_by"] == "ann"
    bad = runner.invoke(cli, ["consultations", "respond", str(high["id"]), '{"price": -1}', "--json-answer"])
    assert bad.exit_code == 1 and "at $.price" in bad.output
    assert runner.invoke(cli, ["consultations", "respond", str(high["id"]), "{", "--json-answer"]).exit_code == 1
    again = runner.invoke(cli, ["consultations", "respond", str(low["id"]), "no"])
    assert again.exit_code == 1 and "only a pending one can be answered" in again.output
    assert runner.invoke(cli, ["consultations", "cancel", str(high["id"]), "--reason", "moot"]).exit_code == 0
    assert consultations.get(hitl, high["id"])["history"][-1]["actor"] == "cli"
    assert runner.invoke(cli, ["consultations", "show", "999"]).exit_code == 1
