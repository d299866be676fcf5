"""Tests for scrapy_hitl.state.parking against a real Redis (the ``state`` fixture)."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from scrapy_hitl.state.parking import INDEX, ParkEntry, ParkingLot

SPIDER = "shop"


def entry(n, *, domain="a.example", fp=None, replaces="", reason="captcha"):
    """A parked request for https://<domain>/<n>; fingerprint "fp<n>" unless given."""
    return ParkEntry.build(
        domain=domain,
        fingerprint=f"fp{n}" if fp is None else fp,
        request={"url": f"https://{domain}/{n}", "meta": {"n": n}},
        reason=reason,
        replaces=replaces,
        run_id="run-1",
        parked_at=1700000000.0 + n,
    )


def urls(claimed):
    return [c.request["url"] for c in claimed]


@pytest.fixture
def lot(state):
    return state.parking


def test_park_returns_ids_in_order_and_keeps_order(lot):
    first = lot.park(SPIDER, [entry(1), entry(2), entry(3)])
    second = lot.park(SPIDER, [entry(4), entry(5)])
    ids = first + second
    assert all(ids) and [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert len(set(ids)) == 5
    claimed = lot.claim(SPIDER, "a.example", 10, "run-2")
    assert [c.park_id for c in claimed] == ids
    assert urls(claimed) == [f"https://a.example/{n}" for n in range(1, 6)]
    c = claimed[0]
    assert (c.domain, c.fingerprint, c.reason) == ("a.example", "fp1", "captcha")
    assert c.request == {"url": "https://a.example/1", "meta": {"n": 1}}


def test_park_nothing(lot):
    assert lot.park(SPIDER, []) == []
    assert lot.pairs() == []


def test_payload_is_plain_json(lot, state):
    (pid,) = lot.park(SPIDER, [entry(1)])
    raw = state.redis.hget(f"hitl:payload:{SPIDER}", pid)
    assert json.loads(raw) == {
        "domain": "a.example", "fp": "fp1", "request": {"url": "https://a.example/1", "meta": {"n": 1}},
        "reason": "captcha", "run_id": "run-1", "parked_at": 1700000001.0,
    }


def test_duplicate_fingerprint_is_not_parked_twice(lot):
    (first,) = lot.park(SPIDER, [entry(1, fp="same")])
    assert lot.park(SPIDER, [entry(2, fp="same")]) == [None]
    # also within one batch
    ids = lot.park(SPIDER, [entry(3, fp="x"), entry(4, fp="x")])
    assert ids[0] is not None and ids[1] is None
    assert lot.count(SPIDER, "a.example") == 2
    assert lot.fingerprints(SPIDER) == {"same", "x"}
    assert urls(lot.claim(SPIDER, "a.example", 10, "r")) == ["https://a.example/1", "https://a.example/3"]


def test_dont_filter_requests_are_never_deduplicated(lot):
    ids = lot.park(SPIDER, [entry(1, fp=""), entry(1, fp="")]) + lot.park(SPIDER, [entry(1, fp="")])
    assert None not in ids and len(set(ids)) == 3
    assert lot.count(SPIDER, "a.example") == 3
    assert lot.fingerprints(SPIDER) == set()


def test_dedup_is_per_spider(lot):
    assert lot.park("s1", [entry(1, fp="same")])[0] is not None
    assert lot.park("s2", [entry(1, fp="same")])[0] is not None


def test_claimed_fingerprint_still_deduplicates(lot):
    lot.park(SPIDER, [entry(1, fp="f")])
    lot.claim(SPIDER, "a.example", 1, "r")
    assert lot.fingerprints(SPIDER) == {"f"}
    assert lot.park(SPIDER, [entry(9, fp="f")]) == [None]


def test_claim_oldest_first_in_batches(lot, state):
    ids = lot.park(SPIDER, [entry(n) for n in range(1, 6)])
    batches = [lot.claim(SPIDER, "a.example", 2, "run-2") for _ in range(4)]
    assert [[c.park_id for c in b] for b in batches] == [ids[0:2], ids[2:4], ids[4:5], []]
    assert lot.count(SPIDER, "a.example") == 0
    assert lot.claimed_count(SPIDER) == 5
    owners = {k.decode(): v.decode() for k, v in state.redis.hgetall(f"hitl:claim_owner:{SPIDER}").items()}
    assert owners == dict.fromkeys(ids, "run-2")


def test_claim_is_per_domain(lot):
    lot.park(SPIDER, [entry(1, domain="a.example"), entry(2, domain="b.example"), entry(3, domain="a.example")])
    assert urls(lot.claim(SPIDER, "b.example", 10, "r")) == ["https://b.example/2"]
    assert lot.count(SPIDER, "a.example") == 2


def test_ack_removes_payload_and_fingerprint(lot, state):
    ids = lot.park(SPIDER, [entry(1), entry(2, fp="")])
    lot.claim(SPIDER, "a.example", 2, "r")
    assert lot.ack(SPIDER, ids) == 2
    assert lot.claimed_count(SPIDER) == 0
    assert state.redis.hlen(f"hitl:payload:{SPIDER}") == 0
    assert state.redis.hlen(f"hitl:claim_owner:{SPIDER}") == 0
    assert lot.fingerprints(SPIDER) == set()
    # the same request can be parked again
    assert lot.park(SPIDER, [entry(1)])[0] is not None
    # acking again, or nothing, is harmless
    assert lot.ack(SPIDER, ids) == 0
    assert lot.ack(SPIDER, []) == 0


def test_ack_keeps_a_newer_owner_of_the_fingerprint(lot):
    """After a re-park took over the fingerprint, acking the old id must not drop it."""
    (old,) = lot.park(SPIDER, [entry(1, fp="f")])
    lot.claim(SPIDER, "a.example", 1, "r")
    (new,) = lot.park(SPIDER, [entry(1, fp="f", replaces=old)])
    assert lot.ack(SPIDER, [old]) == 0
    assert lot.fingerprints(SPIDER) == {"f"}
    assert lot.park(SPIDER, [entry(7, fp="f")]) == [None]
    assert [c.park_id for c in lot.claim(SPIDER, "a.example", 5, "r")] == [new]


def test_repark_replaces_the_claim_atomically(lot, state):
    (old,) = lot.park(SPIDER, [entry(1, fp="f")])
    (claimed,) = lot.claim(SPIDER, "a.example", 1, "run-2")
    # blocked again on resume: parked again, replacing its own claim
    (new,) = lot.park(SPIDER, [entry(1, fp=claimed.fingerprint, replaces=claimed.park_id, reason="hard_block")])
    assert new is not None and new != old  # not a duplicate of itself
    assert lot.claimed_count(SPIDER) == 0
    assert state.redis.hexists(f"hitl:payload:{SPIDER}", old) == 0
    assert state.redis.hexists(f"hitl:claim_owner:{SPIDER}", old) == 0
    assert state.redis.hget(f"hitl:fps:{SPIDER}", "f").decode() == new
    (again,) = lot.claim(SPIDER, "a.example", 5, "run-3")
    assert (again.park_id, again.reason) == (new, "hard_block")


def test_release_puts_claims_back_in_their_original_place(lot):
    ids = lot.park(SPIDER, [entry(1), entry(2), entry(3)])
    claimed = lot.claim(SPIDER, "a.example", 2, "run-2")
    later = lot.park(SPIDER, [entry(4)])
    assert lot.release(SPIDER, [c.park_id for c in claimed]) == 2
    assert lot.claimed_count(SPIDER) == 0
    again = lot.claim(SPIDER, "a.example", 10, "run-3")
    assert [c.park_id for c in again] == ids + later
    assert urls(again) == [f"https://a.example/{n}" for n in (1, 2, 3, 4)]


def test_release_of_unknown_or_acked_ids_is_harmless(lot):
    ids = lot.park(SPIDER, [entry(1)])
    lot.claim(SPIDER, "a.example", 1, "r")
    lot.ack(SPIDER, ids)
    assert lot.release(SPIDER, ids + ["999999"]) == 0
    assert lot.release(SPIDER, []) == 0
    assert lot.count(SPIDER, "a.example") == 0


def test_release_restores_the_index(lot):
    ids = lot.park(SPIDER, [entry(1)])
    lot.claim(SPIDER, "a.example", 1, "r")
    assert lot.counts() == {}  # empty pair dropped from the index
    assert lot.pairs() == []
    lot.release(SPIDER, ids)
    assert lot.pairs() == [(SPIDER, "a.example")]
    assert lot.counts() == {(SPIDER, "a.example"): 1}


def test_release_dead_claims(lot, state):
    ids = lot.park(SPIDER, [entry(n) for n in range(1, 5)])
    lot.claim(SPIDER, "a.example", 2, "alive-run")
    lot.claim(SPIDER, "a.example", 2, "dead-run")
    asked = []

    def is_alive(run_id):
        asked.append(run_id)
        return run_id == "alive-run"

    assert lot.release_dead_claims(SPIDER, is_alive) == 2
    assert sorted(asked) == ["alive-run", "alive-run", "dead-run", "dead-run"]
    assert lot.claimed_count(SPIDER) == 2
    owners = {k.decode(): v.decode() for k, v in state.redis.hgetall(f"hitl:claim_owner:{SPIDER}").items()}
    assert owners == {ids[0]: "alive-run", ids[1]: "alive-run"}
    assert [c.park_id for c in lot.claim(SPIDER, "a.example", 10, "r")] == ids[2:]
    assert lot.release_dead_claims(SPIDER, lambda run_id: True) == 0


def test_discard_drops_a_domain_and_its_fingerprints(lot, state):
    lot.park(SPIDER, [entry(1), entry(2), entry(3, fp="")])
    (b_id,) = lot.park(SPIDER, [entry(4, domain="b.example")])
    lot.park("other", [entry(5)])
    assert lot.discard(SPIDER, "a.example") == 3
    assert lot.count(SPIDER, "a.example") == 0
    assert lot.fingerprints(SPIDER) == {"fp4"}
    assert [k.decode() for k in state.redis.hkeys(f"hitl:payload:{SPIDER}")] == [b_id]
    assert lot.pairs() == [("other", "a.example"), (SPIDER, "b.example")]
    assert lot.count("other", "a.example") == 1  # another spider's requests stay
    assert lot.discard(SPIDER, "a.example") == 0
    # the discarded requests may be parked again
    assert lot.park(SPIDER, [entry(1)])[0] is not None


def test_counts_pairs_and_domain_count(lot):
    lot.park("s1", [entry(1), entry(2), entry(3, domain="b.example")])
    lot.park("s2", [entry(1)])
    assert lot.pairs() == [("s1", "a.example"), ("s1", "b.example"), ("s2", "a.example")]
    assert lot.counts() == {("s1", "a.example"): 2, ("s1", "b.example"): 1, ("s2", "a.example"): 1}
    assert lot.domain_count("a.example") == 3
    assert lot.domain_count("b.example") == 1
    assert lot.domain_count("c.example") == 0
    assert lot.domains_of("s1") == ["a.example", "b.example"]
    assert lot.domains_of("s3") == []


def test_peek_shows_the_oldest_without_claiming(lot):
    ids = lot.park(SPIDER, [entry(n) for n in range(1, 4)])
    peeked = lot.peek(SPIDER, "a.example", limit=2)
    assert [p["park_id"] for p in peeked] == ids[:2]
    assert [p["request"]["url"] for p in peeked] == ["https://a.example/1", "https://a.example/2"]
    assert peeked[0]["reason"] == "captcha"
    assert lot.count(SPIDER, "a.example") == 3
    assert lot.peek(SPIDER, "nothing.example") == []


def test_parked_requests_survive_a_redis_restart(lot, state, redis_server):
    """The test server runs with AOF (appendfsync everysec). SHUTDOWN flushes and fsyncs the
    AOF before exiting, so a clean restart needs no wait; the one-second window of
    ``everysec`` only matters if the machine itself crashes."""
    ids = lot.park(SPIDER, [entry(1), entry(2), entry(3)])
    lot.claim(SPIDER, "a.example", 1, "run-2")
    redis_server.restart()
    fresh = ParkingLot(redis.Redis.from_url(redis_server.url))
    try:
        assert fresh.count(SPIDER, "a.example") == 2
        assert fresh.claimed_count(SPIDER) == 1
        assert fresh.fingerprints(SPIDER) == {"fp1", "fp2", "fp3"}
        assert fresh.release(SPIDER, [ids[0]]) == 1
        assert [c.park_id for c in fresh.claim(SPIDER, "a.example", 10, "r")] == ids
        # the new ids continue after the old ones (hitl:seq survived too)
        (new,) = fresh.park(SPIDER, [entry(4)])
        assert int(new) > int(ids[-1])
    finally:
        fresh.client.close()
    # and the state's own client reconnects by itself
    assert lot.claimed_count(SPIDER) == 3


def test_parked_requests_survive_a_redis_crash(lot, redis_server):
    """SIGKILL: Redis writes the AOF buffer to the file before it replies, so what was
    acknowledged is in the OS page cache and survives a process crash (appendfsync everysec
    only bounds the loss on a power cut). No BGREWRITEAOF or sleep is needed."""
    ids = lot.park(SPIDER, [entry(1), entry(2)])
    assert redis_server.proc is not None
    redis_server.proc.kill()
    redis_server.proc.wait(timeout=10)
    redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert [c.park_id for c in ParkingLot(client).claim(SPIDER, "a.example", 10, "r")] == ids
    finally:
        client.close()


def test_two_claimers_get_disjoint_sets(lot, redis_server):
    total = 300
    ids = lot.park(SPIDER, [entry(n) for n in range(total)])
    results: dict[str, list[str]] = {"A": [], "B": []}
    barrier = threading.Barrier(2)

    def worker(name):
        client = redis.Redis.from_url(redis_server.url)
        mine = ParkingLot(client)
        barrier.wait()
        try:
            while batch := mine.claim(SPIDER, "a.example", 7, f"run-{name}"):
                results[name].extend(c.park_id for c in batch)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    a, b = results["A"], results["B"]
    assert not set(a) & set(b)
    assert sorted(a + b, key=int) == ids
    assert len(a) + len(b) == total
    # each claimer saw its share in order
    assert a == sorted(a, key=int) and b == sorted(b, key=int)
    assert lot.claimed_count(SPIDER) == total


def test_counts_does_not_unindex_a_pair_parked_meanwhile(lot, state):
    """``counts()`` reads the queue sizes, then unindexes the empty pairs. A crawler that
    parks into such a pair in between must keep it indexed, or ``pairs()``,
    ``domain_count``, ``cancel`` and the next run's ``domains_of`` would never see those
    parked requests: the unindexing re-checks the size atomically, in Lua."""
    lot.park(SPIDER, [entry(1)])
    lot.claim(SPIDER, "a.example", 1, "r")  # queue empty, pair still indexed

    console = ParkingLot(state.redis)
    unindex = console._unindex_empty

    def another_process_parks_first(args):
        lot.park(SPIDER, [entry(2)])
        return unindex(args=args)

    console._unindex_empty = another_process_parks_first
    console.counts()
    assert lot.count(SPIDER, "a.example") == 1
    assert state.redis.sismember(INDEX, f"{SPIDER}\ta.example") == 1
    assert lot.domains_of(SPIDER) == ["a.example"]




def test_a_parked_request_keeps_its_credentials_only_encrypted(lot, state):
    """What Redis stores (and its AOF) of a request with its own Authorization header and
    cookies: neither value; claimed and loaded with the key, the request has both again."""
    import scrapy
    from scrapy import Request

    from scrapy_hitl.state.crypto import fernet_for
    from scrapy_hitl.state.serialization import SEAL_PURPOSE, request_from_json, request_to_json

    sealer = fernet_for(state.config.secret_key, purpose=SEAL_PURPOSE)
    spider = scrapy.Spider(name=SPIDER)
    request = Request("https://a.example/account", headers={"Authorization": "Bearer tok-3f9e"},
                      cookies={"own": "cookie-81d0"}, meta={"page": 1})
    data = request_to_json(request, spider, sealer=sealer)
    lot.park(SPIDER, [ParkEntry.build(domain="a.example", fingerprint="fp1", request=data)])

    stored = b"".join(state.redis.hvals(f"hitl:payload:{SPIDER}"))
    assert b"/account" in stored
    assert b"tok-3f9e" not in stored and b"cookie-81d0" not in stored
    (claimed,) = lot.claim(SPIDER, "a.example", 10, "run-2")
    back = request_from_json(claimed.request, spider, sealer=sealer)
    assert back.headers[b"Authorization"] == b"Bearer tok-3f9e"
    assert back.cookies == {"own": "cookie-81d0"}
    assert back.meta == {"page": 1}
