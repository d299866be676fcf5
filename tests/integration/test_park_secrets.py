"""Parked requests carry no secret: a real crawl with a vault session parks requests, and
nothing Redis holds or wrote to its AOF file has the cookie; resuming sends it again."""

from __future__ import annotations

import uuid

import redis

from tests.integration.conftest import wait_for

DOMAIN = "vip.sandbox.test"
PAGES = 6  # the sandbox fixture serves 6 vip pages
GOOD = "letmein"  # the sandbox's vip_pass


def everything_in(client: redis.Redis) -> bytes:
    """Every key and value Redis holds, whatever the type."""
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        out.append(key)
        if kind == "string":
            out.append(client.get(key) or b"")
        elif kind == "hash":
            for k, v in client.hgetall(key).items():
                out += [k, v]
        elif kind == "list":
            out += client.lrange(key, 0, -1)
        elif kind == "set":
            out += client.smembers(key)
        elif kind == "zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _id, fields in client.xrange(key):
                for k, v in fields.items():
                    out += [k, v]
        else:
            raise AssertionError(f"{key!r}: a {kind} this scan does not read")
    return b"\n".join(out)


def test_parked_requests_carry_no_cookie_and_resume_with_the_vaults(
        crawl, cli, cookie_file, fresh_sandbox, own_redis):
    stale = f"stale-{uuid.uuid4().hex}"  # the vault's session, which the site refuses
    token = f"token-{uuid.uuid4().hex}"  # the spider's own Authorization header
    code, out = cli("sessions", "import", DOMAIN, str(cookie_file("cookie-header", DOMAIN, "vip_pass", stale)))
    assert code == 0, out

    run = crawl(spider="vip_fanout", args={"pages": str(PAGES)},
                settings={"DEFAULT_REQUEST_HEADERS": {"Authorization": f"Bearer {token}"}})
    (i,) = wait_for(lambda: cli.json("interventions", "list"), what="an intervention")
    assert (i["type"], i["domain"]) == ("login_refresh", DOMAIN)
    run.wait_for_log("Waiting for a human")

    client = redis.Redis.from_url(own_redis.url)
    parked = client.hvals("hitl:payload:vip_fanout")
    assert len(parked) == PAGES
    # Requests that went out with the session were parked (403 with the vault's cookie) ...
    sent_with_session = [r for n in range(1, PAGES + 1) for r in fresh_sandbox.requests(f"/vip/page/{n}")]
    assert sent_with_session and all(r["cookies"] == {"vip_pass": stale} for r in sent_with_session)
    # ... and neither the cookie nor the Authorization header is anywhere in Redis.
    held = everything_in(client)
    assert b"/vip/page/6" in held  # the scan reads the parked requests
    assert stale.encode() not in held
    assert token.encode() not in held
    assert b"hitl_sealed" in held  # the Authorization header is kept, encrypted

    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies",
                    str(cookie_file("netscape", DOMAIN, "vip_pass", GOOD)))
    assert code == 0, out
    result = run.wait()

    assert result.stats["finish_reason"] == "finished", result.log[-3000:]
    assert len(result.items_in("vip")) == PAGES
    assert result.stats["hitl/resumed"] == PAGES
    # Every page was finally fetched with the vault's current (refreshed) session.
    for n in range(1, PAGES + 1):
        assert fresh_sandbox.requests(f"/vip/page/{n}")[-1]["cookies"] == {"vip_pass": GOOD}

    # Nothing Redis holds now, nor anything it ever wrote to disk, has a cookie value.
    wait_for(lambda: client.info("persistence")["aof_buffer_length"] == 0, what="the AOF written")
    written = b"".join(path.read_bytes() for path in own_redis.files())
    assert b"/vip/page/6" in written  # the AOF has the parked requests
    for blob in (everything_in(client), written):
        for secret in (stale, GOOD, token):
            assert secret.encode() not in blob
