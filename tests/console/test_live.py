"""``/ws/events`` under the real server (gunicorn gthread): the handshake's checks, live
delivery, and replay by ``after`` with no gap and no duplicate across reconnects."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse

import pytest
from simple_websocket import ConnectionClosed, ConnectionError as HandshakeRefused

from tests.support.console import BAD_TOKENS, PASSWORD, RunningConsole, create_fixture_user

REVIEWER = "reviewer@example.com"


@pytest.fixture
def reviewer(state):
    return create_fixture_user(state.db, REVIEWER, PASSWORD, "reviewer")


@pytest.fixture
def token(console_server, reviewer):
    return console_server.login(REVIEWER)["access_token"]


def _emit(state, n, start=0):
    return [state.events.emit("requests.parked", {"n": i}, domain="a.example") for i in range(start, start + n)]


def _raw_handshake(server, query="", headers=None):
    """The handshake over plain HTTP: (status, body), to see exactly what a refused client gets."""
    conn = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(server.url).port, timeout=30)
    conn.request("GET", "/ws/events" + query, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **(headers or {})})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


def test_an_emitted_event_arrives_live_as_its_json(console_server, state, token):
    ws = console_server.ws(token=token)
    _emit(state, 2)
    event_id = state.events.emit("intervention.created", {"url": "https://a.example/x"},
                                 intervention_id=7, domain="a.example", spider="s", run_id="r1")
    received = ws.events(3)
    assert [e["payload"] for e in received[:2]] == [{"n": 0}, {"n": 1}]
    last = received[2]
    assert set(last) == {"id", "type", "timestamp", "run_id", "intervention_id", "spider", "domain", "payload"}
    assert last["id"] == event_id and last["type"] == "intervention.created"
    assert (last["intervention_id"], last["domain"], last["spider"], last["run_id"]) == (7, "a.example", "s", "r1")


def test_without_after_only_new_events_are_sent(console_server, state, token):
    _emit(state, 3)
    ws = console_server.ws(token=token)
    new = state.events.emit("domain.resumed", {"parked": 0}, domain="b.example")
    assert [e["id"] for e in ws.events(1)] == [new]


def test_reconnecting_with_the_last_id_misses_nothing_and_repeats_nothing(console_server, state, token):
    ids = _emit(state, 3)
    ws = console_server.ws(f"/ws/events?after={ids[0]}", token=token)
    ids += _emit(state, 2, start=3)  # live, after the replay
    got = ws.events(4)
    assert [e["id"] for e in got] == ids[1:]
    ws.close()

    ids += _emit(state, 3, start=5)  # while disconnected
    ws = console_server.ws(f"/ws/events?after={got[-1]['id']}", token=token)
    ids += _emit(state, 1, start=8)
    again = ws.events(4)
    assert [e["id"] for e in again] == ids[5:]  # no gap, and the first is not a repeat
    assert [e["payload"]["n"] for e in got + again] == list(range(1, 9))


def test_after_zero_replays_the_whole_stream_in_order(console_server, state, token):
    ids = _emit(state, 5)
    ws = console_server.ws("/ws/events?after=0", token=token)
    assert [e["id"] for e in ws.events(5)] == ids


def test_a_malformed_after_is_400_before_the_upgrade(console_server, token):
    for after in ("abc", "1-", "-1", "$", "1-2-3", "0-", "99999999999999999999-0", "1.5-0", ""):
        status, body = _raw_handshake(console_server, "?after=" + urllib.parse.quote(after),
                                      {"Authorization": f"Bearer {token}"})
        assert status == 400, after
        assert json.loads(body)["error"] == "invalid" and "after" in json.loads(body)["detail"]


def test_no_token_is_401(console_server, reviewer):
    with pytest.raises(HandshakeRefused) as refused:
        console_server.ws()
    assert refused.value.status_code == 401
    status, body = _raw_handshake(console_server)
    assert status == 401 and json.loads(body) == {"error": "unauthorized", "detail": "log in first"}


def test_bad_tokens_are_401_on_the_handshake(console_server, reviewer):
    for case in BAD_TOKENS:  # one server for all of them: each start costs seconds
        with pytest.raises(HandshakeRefused) as refused:
            console_server.ws(token=case.values[0](console_server.key))
        assert refused.value.status_code == 401, case.id


def test_a_revoked_token_is_401_and_logout_ends_an_open_stream(console_server, state, token):
    ws = console_server.ws(token=token)
    status, _, _ = console_server.request("POST", "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    with pytest.raises(ConnectionClosed) as closed:  # the server re-checks the token and closes
        while ws.receive(timeout=30) is not None:
            pass
    assert closed.value.reason == 1008 and closed.value.message == "token revoked"
    with pytest.raises(HandshakeRefused) as refused:
        console_server.ws(token=token)
    assert refused.value.status_code == 401


def test_a_foreign_origin_is_refused_before_any_event(console_server, state, token):
    _emit(state, 2)  # after=0 would replay these at once if the upgrade happened
    for origin in ("https://evil.example", "null", console_server.url.replace("127.0.0.1", "localhost")):
        status, body = _raw_handshake(console_server, "?after=0",
                                      {"Authorization": f"Bearer {token}", "Origin": origin})
        assert status == 403, origin
        assert json.loads(body)["error"] == "forbidden_origin" and b"requests.parked" not in body
        with pytest.raises(HandshakeRefused) as refused:
            console_server.ws("/ws/events?after=0", token=token, origin=origin)
        assert refused.value.status_code == 403


def test_cookie_auth_works_with_the_consoles_own_origin_only(console_server, state, token):
    ids = _emit(state, 2)
    ws = console_server.ws("/ws/events?after=0", cookie=token, origin=console_server.url)
    assert [e["id"] for e in ws.events(2)] == ids
    for origin in (None, "https://evil.example"):  # a replayed cookie without Origin too
        with pytest.raises(HandshakeRefused) as refused:
            console_server.ws("/ws/events?after=0", cookie=token, origin=origin)
        assert refused.value.status_code == 403, origin


def test_an_origin_from_hitl_console_origins_is_allowed(hitl_env, state, reviewer, tmp_path):
    env = {**hitl_env, "HITL_CONSOLE_ORIGINS": "https://review.example.com, https://other.example"}
    server = RunningConsole(env, str(tmp_path / "console.log")).start()
    try:
        token = server.login(REVIEWER)["access_token"]
        ws = server.ws(cookie=token, origin="https://review.example.com")
        event_id = state.events.emit("session.captured", {"cookies": 2}, domain="a.example")
        assert [e["id"] for e in ws.events(1)] == [event_id]
        with pytest.raises(HandshakeRefused):
            server.ws(cookie=token, origin="https://review.example.com.evil.example")
    finally:
        server.kill()


def test_open_websockets_are_capped_per_process_and_a_closed_one_frees_its_slot(hitl_env, state, reviewer,
                                                                                 tmp_path):
    # --threads 6 keeps 4 threads for the API: 2 live connections at most.
    server = RunningConsole(hitl_env, str(tmp_path / "console.log"), threads=6).start()
    try:
        token = server.login(REVIEWER)["access_token"]
        first, _second = server.ws(token=token), server.ws(token=token)
        status, body = _raw_handshake(server, headers={"Authorization": f"Bearer {token}"})
        assert status == 503 and json.loads(body)["error"] == "too_many_live_connections"
        assert server.request("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})[0] == 200
        first.close()
        # The closed connection's thread ends within one XREAD block; poll until its slot is
        # free (the hang guard is pytest's timeout, not a time assertion).
        while True:
            try:
                third = server.ws(token=token)
                break
            except HandshakeRefused as exc:
                assert exc.status_code == 503
                time.sleep(0.05)
        event_id = state.events.emit("domain.paused", {}, domain="c.example")
        assert [e["id"] for e in third.events(1)] == [event_id]
    finally:
        server.kill()


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_a_plain_http_get_is_not_upgraded(console_server, token, accept):
    status, _, body = console_server.request("GET", "/ws/events", headers={"Authorization": f"Bearer {token}",
                                                                            "Accept": accept})
    assert status == 400 and body["error"] == "bad_request"  # JSON whatever the Accept header
