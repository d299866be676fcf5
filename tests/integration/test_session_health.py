"""hitl worker's session keeping against the sandbox: a failing probe asks for a login before
any crawl wastes a request, and a session near its expected end asks for a refresh ahead."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from hitl_console.session_worker import SessionWorker, SessionWorkerConfig
from scrapy_hitl.cookies import Cookie
from scrapy_hitl.state import interventions, pauses, session_health

DOMAIN = "members.sandbox.test"


def members_url(site, path: str) -> str:
    port = site.url.rsplit(":", 1)[1].rstrip("/")
    return f"http://{DOMAIN}:{port}{path}"


def test_a_failing_probe_opens_the_intervention_before_a_crawl_starts(state, crawl, cli, fresh_sandbox, monkeypatch):
    # The probe fetches with requests: point the sandbox host names at the sandbox.
    monkeypatch.setenv("NO_PROXY", "*")
    import socket

    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if str(host).endswith(".sandbox.test") else host, *a, **k))
    state.vault.put(DOMAIN, [Cookie("member_session", "valid-alice", DOMAIN)], name="alice")
    state.vault.put(DOMAIN, [Cookie("member_session", "expired", DOMAIN)], name="bob")
    session_health.set_probe(state.db, DOMAIN, url=members_url(fresh_sandbox, "/members/page/1"), selector="div.quote")

    first = SessionWorker(state, SessionWorkerConfig()).check(force=True)
    (probed,) = first["probed"]
    assert probed["passed"] == ["alice"] and list(probed["failed"]) == ["bob"]
    assert "HTTP 401" in probed["failed"]["bob"]
    advisory = probed["intervention"]
    assert (advisory["type"], advisory["reason"], advisory["priority"]) == ("login_refresh", "probe_failed", -1)
    assert DOMAIN not in pauses.paused_domains(state.redis)  # alice still works: nothing pauses
    pool = {s["name"]: s for s in state.vault.pool_info(DOMAIN)}
    assert (pool["alice"]["health"], pool["bob"]["health"]) == ("valid", "invalid")

    state.vault.put(DOMAIN, [Cookie("member_session", "expired-too", DOMAIN)], name="alice")  # alice logged out
    second = SessionWorker(state, SessionWorkerConfig()).check(force=True)
    (probed,) = second["probed"]
    assert probed["passed"] == [] and list(probed["failed"]) == ["alice"]
    opened = interventions.get(state, probed["intervention"]["id"])
    assert opened["id"] == advisory["id"] and opened["priority"] == 0  # the same one, now the real block
    assert DOMAIN in pauses.paused_domains(state.redis)
    health = session_health.info(state.db, DOMAIN)
    assert health["probe_result"]["result"] == "failed" and health["probe_result"]["at"]

    fresh_sandbox.reset()
    run = crawl(args={"sections": "members", "details": "0"})
    run.wait_for_log("Waiting for a human")
    assert fresh_sandbox.requests("/members/page/1") == []  # parked before it was sent
    interventions.cancel(state, opened["id"], actor="test")
    result = run.wait()
    assert result.stats.get("downloader/request_count", 0) == 0


def test_a_session_near_its_end_asks_for_a_refresh_ahead_and_pauses_nothing(state):
    soon = time.time() + 20 * 60
    state.vault.put("shop.example", [Cookie("sid", "v", "shop.example", expires=soon)], name="alice")
    state.vault.put("far.example", [Cookie("sid", "v", "far.example", expires=time.time() + 86400)])

    result = SessionWorker(state, SessionWorkerConfig(refresh_ahead=1800)).check(force=True)

    (opened,) = result["refresh"]
    assert (opened["domain"], opened["type"], opened["reason"], opened["priority"]) == (
        "shop.example", "login_refresh", "expires_soon", -1)
    assert opened["evidence"]["session"] == "alice"
    assert "expires in 20 min" in opened["evidence"]["summary"]
    assert pauses.paused_domains(state.redis) == {}
    assert interventions.get(state, opened["id"])["parked_count"] == 0
    # Asked once: the next pass finds it open.
    assert SessionWorker(state, SessionWorkerConfig(refresh_ahead=1800)).check(force=True)["refresh"] == []


def test_the_median_lifetime_of_past_sessions_sets_the_expected_end(state):
    for hours in (2, 3, 4):
        session_health.record_lifetime(state.db, "shop.example", hours * 3600)
    assert session_health.info(state.db, "shop.example")["lifetime_median"] == 3 * 3600
    captured = datetime.now(timezone.utc) - timedelta(hours=3) + timedelta(minutes=10)
    end = session_health.expected_end(captured, None, 3 * 3600)
    assert timedelta(minutes=9) < end - datetime.now(timezone.utc) < timedelta(minutes=11)


def test_before_a_job_the_probes_not_run_lately_run(state, fresh_sandbox, monkeypatch):
    from hitl_console.session_worker import before_job

    import socket

    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if str(host).endswith(".sandbox.test") else host, *a, **k))
    state.vault.put(DOMAIN, [Cookie("member_session", "expired", DOMAIN)], name="alice")
    session_health.set_probe(state.db, DOMAIN, url=members_url(fresh_sandbox, "/members/page/1"), selector="div.quote")

    (probed,) = before_job(state)
    assert list(probed["failed"]) == ["alice"] and DOMAIN in pauses.paused_domains(state.redis)
    assert before_job(state) == []  # probed a moment ago: not again
