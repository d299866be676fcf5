"""The state functions the live view adds: withdrawing one parked request (the held
request's copy) and expiring an intervention whose live page nobody solved."""

from __future__ import annotations

from scrapy_hitl.state import interventions
from scrapy_hitl.state.parking import ParkEntry

DOMAIN = "shop.example.test"


def _entry(url: str, reason: str = "domain_paused") -> ParkEntry:
    return ParkEntry.build(domain=DOMAIN, fingerprint="", request={"url": url}, reason=reason)


def test_withdraw_takes_out_one_parked_request_and_not_a_claimed_one(state):
    lot = state.parking
    first, held, last = lot.park("s", [_entry("/1"), _entry("/held", "captcha_live"), _entry("/3")])
    assert lot.withdraw("s", DOMAIN, held) is True
    assert lot.withdraw("s", DOMAIN, held) is False  # already gone
    assert [p["park_id"] for p in lot.peek("s", DOMAIN)] == [first, last]
    claimed = lot.claim("s", DOMAIN, 1, "run")
    assert lot.withdraw("s", DOMAIN, claimed[0].park_id) is False  # resumed by a crawler: not ours to drop
    assert lot.withdraw("s", DOMAIN, last) is True
    assert lot.count("s", DOMAIN) == 0 and ("s", DOMAIN) not in lot.pairs()


def test_expire_closes_the_intervention_fails_the_held_request_and_releases_the_domain(state):
    data, _ = interventions.open_or_update(state, type="captcha_solve", reason="cloudflare_challenge",
                                           domain=DOMAIN, spider="s")
    state.parking.park("s", [_entry("/2")])
    last = state.events.last_id()
    result = interventions.expire(state, data["id"], reason="captcha_expired", failed=1)
    assert result["intervention"]["status"] == "expired"
    assert result["intervention"]["resolution"] == {"action": "expire", "reason": "captcha_expired", "failed": 1}
    events = [(e.type, e.payload) for e in state.events.read(last)]
    assert [t for t, _ in events] == ["intervention.expired", "requests.failed", "domain.resumed"]
    assert events[0][1]["reason"] == "captcha_expired" and events[0][1]["parked"] == 1
    assert events[1][1] == {"count": 1, "reason": "captcha_expired"}
    assert state.parking.count("s", DOMAIN) == 1  # the others are released, not dropped
    try:
        interventions.expire(state, data["id"], reason="captcha_expired")
    except interventions.InterventionClosed:
        pass
    else:
        raise AssertionError("an intervention expired twice")


def test_one_live_page_per_intervention_across_crawlers(state):
    import asyncio

    from scrapy_hitl.live import relay
    from scrapy_hitl.state import runs

    async def go():
        client = relay.async_client(state.redis)
        try:
            runs.heartbeat(state.redis, "run-a", 30)
            assert await relay.claim(client, 5, "run-a", 60) is None
            assert await relay.claim(client, 5, "run-a", 60) is None  # its own: fine
            assert await relay.claim(client, 5, "run-b", 60) == "run-a"  # alive: refused
            runs.end_heartbeat(state.redis, "run-a")
            assert await relay.claim(client, 5, "run-b", 60) is None  # dead: taken over
            await relay.close(client, 5, "done")
            assert await relay.claim(client, 5, "run-c", 60) is None  # closed: free
        finally:
            await client.aclose()

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # a thread of its own: no event loop of another test in the way
        pool.submit(lambda: asyncio.run(go())).result()


def test_the_login_hosts_wait_between_two_beats_ends_empty_not_in_a_socket_timeout(state):
    """A crawl's login-page host waits for a request with BLPOP until its next alive beat is
    due (ALIVE_TTL / 3 seconds). Its asyncio client must wait that long for the answer: with
    redis-py's default 5 s socket timeout the read timed out, redis-py retried it for about a
    minute, and meanwhile the host's alive key (ALIVE_TTL) expired, so the console sent the
    crawl's login pages to `hitl worker` instead."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from scrapy_hitl.live import relay
    from scrapy_hitl.live.login import ALIVE_TTL

    async def go():
        client = relay.async_client(state.redis)
        try:
            return await client.blpop(["hitl:test:nobody-pushes-here"], timeout=round(ALIVE_TTL / 3))
        finally:
            await client.aclose()

    with ThreadPoolExecutor(1) as pool:  # a thread of its own: no event loop of another test in the way
        assert pool.submit(lambda: asyncio.run(go())).result(timeout=120) is None
