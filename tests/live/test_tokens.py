"""Live-view tokens on a real Redis: issued for one reviewer and intervention, redeemed
once atomically, renewable by their holder only, gone after their TTL."""

from __future__ import annotations

import threading
import time

import pytest

from scrapy_hitl.live.tokens import LiveTokens, TokenRefused


@pytest.fixture
def tokens(state):
    return LiveTokens(state.redis, ttl=60)


def _race(fn, n: int) -> list[str]:
    barrier = threading.Barrier(n)
    results: list[str] = []

    def one():
        barrier.wait()
        try:
            fn()
            results.append("ok")
        except TokenRefused as exc:
            results.append(exc.why)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results)


def test_a_token_redeemed_in_parallel_succeeds_exactly_once(tokens):
    for _ in range(10):
        token = tokens.issue(3, user_id=7).token
        assert _race(lambda token=token: tokens.redeem(token, 3, 7), 8) == ["ok"] + ["used"] * 7
        tokens.check_held(token, 3, 7)  # the winner holds it


def test_an_expired_token_is_rejected(state):
    short = LiveTokens(state.redis, ttl=0.05)
    token = short.issue(3, user_id=7).token
    deadline = time.monotonic() + 30  # a hang guard while Redis expires the key, not a timing assertion
    while state.redis.exists(_key(token)):
        assert time.monotonic() < deadline, "the token never expired"
        time.sleep(0.01)
    with pytest.raises(TokenRefused) as refused:
        short.redeem(token, 3, 7)
    assert refused.value.why == "missing"
    with pytest.raises(TokenRefused, match="unknown or expired"):
        short.renew(token, 3, 7)
    with pytest.raises(TokenRefused, match="unknown or expired"):
        short.check_held(token, 3, 7)


def test_a_token_is_for_one_reviewer_and_one_intervention_and_only_its_holder_renews_it(tokens, state):
    token = tokens.issue(3, user_id=7).token
    for intervention, user in ((4, 7), (3, 8)):
        with pytest.raises(TokenRefused) as refused:
            tokens.redeem(token, intervention, user)
        assert refused.value.why == "mismatch"
        with pytest.raises(TokenRefused):
            tokens.renew(token, intervention, user)
    with pytest.raises(TokenRefused) as refused:
        tokens.check_held(token, 3, 7)
    assert refused.value.why == "not_redeemed"
    tokens.redeem(token, 3, 7)
    state.redis.pexpire(_key(token), 1000)
    assert tokens.renew(token, 3, 7) == 60
    assert state.redis.pttl(_key(token)) > 50_000
    with pytest.raises(TokenRefused):
        tokens.redeem("hitl_lv_forged", 3, 7)
    assert not any(token.encode() in k for k in state.redis.keys("hitl:live:token:*"))  # only a hash is kept


def _key(token: str) -> str:
    import hashlib

    return "hitl:live:token:" + hashlib.sha256(token.encode()).hexdigest()
