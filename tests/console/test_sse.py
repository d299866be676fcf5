"""``GET /api/v1/events`` (Server-Sent Events) under the real server, read by a plain HTTP
client: replay from ``Last-Event-ID`` with no gap and no duplicate, the websocket's JSON,
logins, keep-alives, garbage ids, and the live-connection cap it shares with websockets."""

from __future__ import annotations

import time

import pytest

from scrapy_hitl.state import apikeys
from tests.support.console import BAD_TOKENS, PASSWORD, RunningConsole, create_fixture_user
from tests.support.sse import SseClient

REVIEWER = "reviewer@example.com"


@pytest.fixture
def reviewer(state):
    return create_fixture_user(state.db, REVIEWER, PASSWORD, "reviewer")


@pytest.fixture
def server(hitl_env, state, reviewer, tmp_path):
    """The console with a 1 s keep-alive, so an idle stream shows one soon."""
    running = RunningConsole({**hitl_env, "HITL_EVENTS_KEEPALIVE": "1"}, str(tmp_path / "console.log")).start()
    yield running
    running.kill()


@pytest.fixture
def token(server):
    return server.login(REVIEWER)["access_token"]


def _emit(state, n, start=0):
    return [state.events.emit("requests.parked", {"n": i}, domain="a.example") for i in range(start, start + n)]


def _open(server, token=None, path="/api/v1/events", **headers):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return SseClient(server.url + path, headers=headers)


def test_reconnecting_with_last_event_id_misses_nothing_and_repeats_nothing(server, state, token):
    ids = _emit(state, 3)
    stream = _open(server, token, **{"Last-Event-ID": ids[0]})
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    preamble = stream.message()
    assert preamble.retry is not None and not preamble.data
    ids += _emit(state, 2, start=3)  # live, after the replay
    got = stream.events(4)
    assert [m.id for m in got] == ids[1:]
    stream.close()

    ids += _emit(state, 3, start=5)  # while disconnected
    stream = _open(server, token, path="/events/runs/events", **{"Last-Event-ID": got[-1].id})  # the old path
    ids += _emit(state, 1, start=8)
    again = stream.events(4)
    stream.close()
    assert [m.id for m in again] == ids[5:]  # no gap, and the first is not a repeat
    assert [m.json()["payload"]["n"] for m in got + again] == list(range(1, 9))
    assert all(m.json()["id"] == m.id for m in got + again)


def test_each_message_is_the_websockets_json(server, state, token):
    stream = _open(server, token)
    event_id = state.events.emit("intervention.created", {"url": "https://a.example/x"},
                                 intervention_id=7, domain="a.example", spider="s", run_id="r1")
    (msg,) = stream.events(1)
    stream.close()
    (event,) = state.events.range(event_id, event_id)
    assert msg.id == event_id and msg.json() == event.to_dict()


def test_an_idle_stream_gets_keep_alives_and_then_the_next_event(server, state, token):
    stream = _open(server, token)
    stream.message()  # the preamble
    assert stream.message().comments == ["keep-alive"]
    event_id = state.events.emit("domain.resumed", {"parked": 0}, domain="b.example")
    assert [m.id for m in stream.events(1)] == [event_id]
    stream.close()


GARBAGE = ["abc", "1-", "$", "1-2-3", "99999999999999999999-0", " ", "9999999999999-0"]  # the last: the future


def test_a_last_event_id_that_cannot_be_replayed_exactly_comes_with_a_warning(server, state, token):
    for n, garbage in enumerate(GARBAGE):  # one server for all of them: each start costs seconds
        old = _emit(state, 2, start=3 * n)
        stream = _open(server, token, **{"Last-Event-ID": garbage})
        assert stream.status == 200, garbage
        warning = stream.events(1)[0]
        assert warning.json()["type"] == "stream.warning", garbage
        assert warning.json()["payload"]["reason"] == "bad_last_event_id"
        assert warning.id == old[-1]  # the client's next reconnect sends a good id
        new = _emit(state, 1, start=3 * n + 2)
        assert [m.id for m in stream.events(1)] == new, garbage  # nothing old replayed
        stream.close()

    # An id older than the oldest event the capped stream kept: what is left, and a warning.
    ids = _emit(state, 5, start=100)
    state.redis.xtrim(state.events.key, maxlen=2, approximate=False)  # what HITL_EVENTS_MAXLEN does
    stream = _open(server, token, **{"Last-Event-ID": ids[0]})
    warning, *kept = stream.events(3)
    stream.close()
    assert warning.json()["payload"] == {"reason": "events_trimmed", "oldest_id": ids[3],
                                         "message": warning.json()["payload"]["message"]}
    assert [m.id for m in kept] == ids[3:]


def test_a_logout_ends_an_open_stream_with_a_notice(server, state, token):
    stream = _open(server, token)
    stream.message()  # the preamble: the stream is open
    assert server.request("POST", "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})[0] == 200
    notices = []
    with pytest.raises(EOFError):  # the server re-checks the token within seconds and ends the stream
        while True:
            msg = stream.message()
            if msg.data:
                notices.append(msg.json()["payload"])
    assert notices == [{"reason": "unauthorized", "message": "token revoked"}]
    assert _open(server, token).status == 401


def test_redis_going_away_ends_an_open_stream_with_a_notice_not_a_500(hitl_env, state, reviewer, tmp_path):
    from tests.support.servers import RedisServer

    redis_server = RedisServer().start()
    own = RunningConsole({**hitl_env, "HITL_REDIS_URL": redis_server.url}, str(tmp_path / "console.log")).start()
    try:
        token = own.login(REVIEWER)["access_token"]
        stream = _open(own, token)
        stream.message()  # the preamble: the stream is open and reading
        redis_server.stop()
        notices = []
        with pytest.raises(EOFError):
            while True:
                msg = stream.message()
                if msg.data:
                    notices.append(msg.json()["payload"]["reason"])
        assert notices == ["unavailable"]  # then EventSource reconnects with its Last-Event-ID
    finally:
        own.kill()
        redis_server.stop()


def test_refusals_are_json_errors_before_any_event(server, state, token):
    stream = _open(server, token, path="/api/v1/events?after=abc")  # a script's malformed start
    assert stream.status == 400 and stream.body["error"] == "invalid"
    for path in ("/api/v1/events", "/events/runs/events"):
        stream = _open(server, path=path)
        assert (stream.status, stream.body) == (401, {"error": "unauthorized", "detail": "log in first"})
    for case in BAD_TOKENS:
        stream = _open(server, case.values[0](server.key))
        assert stream.status == 401 and stream.body["error"] == "unauthorized", case.id
    _record, key, _secret = apikeys.create(state, "agent")
    stream = _open(server, key)  # an agent's key: consultations only, as on the websocket
    assert stream.status == 403 and stream.body["error"] == "forbidden"


def test_the_console_cookie_works_and_a_foreign_origin_is_refused(server, state, token):
    ids = _emit(state, 2)
    cookie = {"Cookie": f"hitl_token={token}"}
    stream = _open(server, **cookie, **{"Last-Event-ID": "0"})  # EventSource, same origin: no Origin header
    assert [m.id for m in stream.events(2)] == ids
    stream.close()
    stream = _open(server, **cookie, Origin="https://evil.example")
    assert stream.status == 403 and stream.body["error"] == "forbidden_origin"


def test_streams_share_the_live_connection_cap_and_a_closed_one_frees_its_thread(hitl_env, state, reviewer,
                                                                                tmp_path):
    # --threads 6 keeps 4 threads for the API: 2 live connections (websockets and streams together).
    server = RunningConsole(hitl_env, str(tmp_path / "console.log"), threads=6).start()
    try:
        token = server.login(REVIEWER)["access_token"]
        server.ws(token=token)
        first = _open(server, token)
        refused = _open(server, token)
        assert refused.status == 503 and refused.body["error"] == "too_many_live_connections"
        assert server.request("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})[0] == 200
        first.close()
        # The server notices the closed socket within one XREAD block and frees the slot; poll
        # until it has (the hang guard is pytest's timeout, not a time assertion).
        while (third := _open(server, token)).status == 503:
            time.sleep(0.05)
        event_id = state.events.emit("domain.paused", {}, domain="c.example")
        assert [m.id for m in third.events(1)] == [event_id]
        third.close()
    finally:
        server.kill()
