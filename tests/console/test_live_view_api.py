"""The live view's console side against a real ``hitl console`` and Redis: the one-time
token (issue, redeem once, renew, expiry), the websocket's checks, frames out and input in.

The crawler's side here is the relay it uses (:mod:`scrapy_hitl.live.relay`): the page is
announced and frames are published exactly as the crawler's holder does, and the input the
console forwards is read back from Redis as the crawler reads it. The whole loop with a real
crawl and a real browser is tests/console/browser/test_live_view.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import simple_websocket

from scrapy_hitl.live import relay
from scrapy_hitl.live.tokens import LiveTokens, TokenRefused
from scrapy_hitl.state import interventions

DOMAIN = "shop.example.test"


def _run(coro_fn):
    """Run the crawler's (asyncio) side; in a thread of its own, since a sync Playwright of
    the browser tests may have an event loop running in this one."""

    async def wrapped():
        client = relay.async_client(_run.sync)
        try:
            return await coro_fn(client)
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(wrapped())).result()


@pytest.fixture
def live_page(state):
    """An open captcha intervention whose page a crawler announced as live, with one frame."""
    data, _ = interventions.open_or_update(state, type="captcha_solve", reason="cloudflare_challenge",
                                           domain=DOMAIN, spider="s", url=f"http://{DOMAIN}/p/1")
    iid = data["id"]
    _run.sync = state.redis

    async def announce(client):
        await relay.announce(client, iid, {"domain": DOMAIN, "url": f"http://{DOMAIN}/p/1", "width": 1280,
                                           "height": 720}, 60)
        await relay.publish_frame(client, iid, data="/9j/4AAQ", width=1280, height=720, ts=time.time(), seq=1)

    _run(announce)
    return iid


@pytest.fixture
def reviewer(console_server, users):
    return console_server.login("reviewer@example.com")


def _bearer(login):
    return {"Authorization": f"Bearer {login['access_token']}"}


def _issue(console_server, login, iid):
    status, _, body = console_server.request("POST", f"/api/v1/interventions/{iid}/live/token", headers=_bearer(login))
    assert status == 201, body
    return body["token"]


def test_a_token_redeemed_twice_in_parallel_opens_exactly_one_live_view(console_server, reviewer, live_page):
    token = _issue(console_server, reviewer, live_page)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def open_view():
        barrier.wait()
        try:
            outcomes.append(console_server.ws(f"/ws/live/{live_page}?token={token}", token=reviewer["access_token"]))
        except simple_websocket.ConnectionError as exc:
            outcomes.append(exc.status_code)

    threads = [threading.Thread(target=open_view) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    opened = [o for o in outcomes if not isinstance(o, int)]
    assert len(opened) == 1 and [o for o in outcomes if isinstance(o, int)] == [403]
    frame = json.loads(opened[0].receive(timeout=30))  # the newest frame, at once
    assert frame["type"] == "frame" and frame["seq"] == 1 and (frame["w"], frame["h"]) == (1280, 720)


def test_an_expired_token_is_refused(console_server, reviewer, live_page, state):
    short = LiveTokens(state.redis, ttl=0.2)
    token = short.issue(live_page, user_id=reviewer["user"]["id"]).token
    deadline = time.monotonic() + 30
    while state.redis.exists("hitl:live:token:" + __import__("hashlib").sha256(token.encode()).hexdigest()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with pytest.raises(simple_websocket.ConnectionError) as refused:
        console_server.ws(f"/ws/live/{live_page}?token={token}", token=reviewer["access_token"])
    assert refused.value.status_code == 403
    status, _, body = console_server.request("POST", f"/api/v1/interventions/{live_page}/live/token/renew",
                                             {"token": token}, headers=_bearer(reviewer))
    assert status == 403 and body["error"] == "invalid_token"
    with pytest.raises(TokenRefused) as why:
        short.redeem(token, live_page, reviewer["user"]["id"])
    assert why.value.why == "missing"


def test_only_the_holder_may_renew_and_continue(console_server, reviewer, users, live_page):
    admin = console_server.login("admin@example.com")
    token = _issue(console_server, reviewer, live_page)
    # Not redeemed yet: Continue needs a token that opened the view.
    status, _, body = console_server.request("POST", f"/api/v1/interventions/{live_page}/live/continue",
                                             {"token": token}, headers=_bearer(reviewer))
    assert status == 403 and body["error"] == "invalid_token"
    # Someone else's token is refused on the socket and for a renewal.
    with pytest.raises(simple_websocket.ConnectionError) as refused:
        console_server.ws(f"/ws/live/{live_page}?token={token}", token=admin["access_token"])
    assert refused.value.status_code == 403
    status, _, body = console_server.request("POST", f"/api/v1/interventions/{live_page}/live/token/renew",
                                             {"token": token}, headers=_bearer(admin))
    assert status == 403
    status, _, body = console_server.request("POST", f"/api/v1/interventions/{live_page}/live/token/renew",
                                             {"token": token}, headers=_bearer(reviewer))
    assert status == 200 and body["expires_in"] == 900


def test_the_websocket_checks_login_origin_and_a_live_page(console_server, reviewer, live_page, state):
    token = _issue(console_server, reviewer, live_page)
    path = f"/ws/live/{live_page}?token={token}"
    for kwargs, code in (({}, 401), ({"token": "not.a.jwt"}, 401),
                         ({"cookie": reviewer["access_token"]}, 403),  # a cookie without Origin
                         ({"token": reviewer["access_token"], "origin": "http://evil.test"}, 403)):
        with pytest.raises(simple_websocket.ConnectionError) as refused:
            console_server.ws(path, **kwargs)
        assert refused.value.status_code == code, kwargs
    _run(lambda client: relay.close(client, live_page, "done"))
    with pytest.raises(simple_websocket.ConnectionError) as refused:
        console_server.ws(path, token=reviewer["access_token"])
    assert refused.value.status_code == 409  # the page is gone
    status, _, body = console_server.request("GET", f"/api/v1/interventions/{live_page}/live", headers=_bearer(reviewer))
    assert status == 200 and body["state"] == "closed" and body["reason"] == "done"
    status, _, _ = console_server.request("GET", f"/api/v1/interventions/{live_page}/live")
    assert status == 401


def test_input_reaches_the_crawlers_stream_and_frames_reach_the_viewer(console_server, reviewer, live_page):
    token = _issue(console_server, reviewer, live_page)
    ws = console_server.ws(f"/ws/live/{live_page}?token={token}", token=reviewer["access_token"],
                           origin=console_server.url)
    assert json.loads(ws.receive(timeout=30))["seq"] == 1
    sent = [{"op": "mouse", "type": "down", "x": 10, "y": 20, "button": "left", "buttons": 1, "clicks": 1},
            {"op": "key", "type": "down", "key": "a", "code": "KeyA", "modifiers": 0},
            {"op": "text", "text": "pasted"}, {"op": "continue"}, {"op": "wheel", "x": 1, "y": 2, "dy": 100,
                                                                   "evil": "<script>"}]
    for msg in sent:
        ws.send(json.dumps(msg))

    async def read(client):
        got: list[dict] = []
        after = "0-0"
        while len(got) < 4:
            for entry_id, msg in await relay.read_input(client, live_page, after, block_ms=30_000):
                got.append(msg)
                after = entry_id
        return got

    got = _run(read)
    assert [m["op"] for m in got] == ["mouse", "key", "text", "wheel"]  # continue is an API call, not input
    assert "evil" not in got[3]

    async def frame(client):
        await relay.publish_frame(client, live_page, data="/9j/4BBQ", width=800, height=600, ts=time.time(), seq=2)

    _run(frame)
    second = json.loads(ws.receive(timeout=30))
    assert (second["seq"], second["w"], second["data"]) == (2, 800, "/9j/4BBQ")
    _run(lambda client: relay.close(client, live_page, "done"))
    closed = json.loads(ws.receive(timeout=30))
    assert closed == {"type": "status", "state": "closed", "reason": "done"}
