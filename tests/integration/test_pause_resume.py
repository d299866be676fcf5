"""The core loop with real crawls: block -> park -> intervention -> resolve -> resume.

Each test runs `scrapy crawl` of the demo project against the local sandbox site, with a
real Redis and a real database, and checks what the sandbox actually received.
"""

from __future__ import annotations

import pytest

from scrapy_hitl.config import StateConfig
from scrapy_hitl.state import HitlState
from tests.integration.conftest import wait_for

PAGES = 6  # the sandbox fixture serves 6 listing pages per section, 10 quotes each
ITEMS = PAGES * 10


def open_interventions(cli):
    return cli.json("interventions", "list")


def vip_page_paths(sandbox):
    return {k: v for k, v in sandbox.hits().items() if k.startswith("/vip/page/")}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_403_section_parks_while_others_crawl_then_cookies_resume_it(crawl, cli, cookie_file, fresh_sandbox, state):
    run = crawl(args={"sections": "quotes,vip"})
    opened = wait_for(lambda: open_interventions(cli), what="an intervention")
    assert len(opened) == 1
    i = opened[0]
    assert (i["type"], i["reason"], i["domain"], i["status"]) == (
        "manual_access", "http_403", "vip.sandbox.test", "open")
    assert i["run_id"] and i["created_at"]
    # The other section keeps crawling while vip waits.
    wait_for(lambda: fresh_sandbox.hits().get(f"/quotes/page/{PAGES}"), what="quotes to finish")
    run.wait_for_log("Waiting for a human")
    assert vip_page_paths(fresh_sandbox) == {"/vip/page/1": 1}
    assert wait_for(lambda: open_interventions(cli)[0]["parked_count"] == 1, what="parked count")

    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies",
                    str(cookie_file("netscape", "vip.sandbox.test", "vip_pass", "letmein")))
    assert code == 0, out
    result = run.wait()

    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["finish_reason"] == "finished"
    assert len(result.items_in("quotes")) == ITEMS
    assert len(result.items_in("vip")) == ITEMS
    # Every vip page was fetched once more, now with the cookie; page 1 exactly twice
    # (the 403, then the resumed request), the others once.
    hits = vip_page_paths(fresh_sandbox)
    assert hits == {"/vip/page/1": 2, **{f"/vip/page/{n}": 1 for n in range(2, PAGES + 1)}}
    sent = fresh_sandbox.requests("/vip/page/1")
    assert [r["cookies"].get("vip_pass") for r in sent] == [None, "letmein"]
    assert result.stats["hitl/parked"] == 1
    assert result.stats["hitl/resumed"] == 1
    assert result.stats["hitl/interventions/created/manual_access"] == 1
    assert result.stats["hitl/blocks/http_403"] == 1
    resolved = cli.json("interventions", "show", str(i["id"]))
    assert resolved["status"] == "resolved"
    assert [h["action"] for h in resolved["history"]] == ["created", "resolved"]
    # A dashboard has the counts while the run waits, when nothing else is emitted.
    (waiting,) = [e for e in state.events.read("0-0", count=10_000) if e.type == "run.waiting"]
    assert waiting.payload["reason"] == "all_work_parked"
    assert waiting.payload["parked"] == 1 and waiting.payload["responses"] >= ITEMS


@pytest.mark.parametrize("fmt", ["cookie-editor-json", "netscape", "playwright-storage-state", "cookie-header"])
def test_each_cookie_format_resolves_and_next_run_resumes(fmt, crawl, cli, cookie_file, fresh_sandbox):
    first = crawl(args={"sections": "vip"}, settings={"HITL_PAUSE_TIMEOUT": 1})
    result = first.wait()
    assert result.stats["finish_reason"] == "hitl_paused"
    assert result.items == []
    (i,) = open_interventions(cli)

    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies",
                    str(cookie_file(fmt, "vip.sandbox.test", "vip_pass", "letmein")))
    assert code == 0, out

    # A later run starts by re-injecting what was resolved while no crawler ran; its own
    # start request is a duplicate of the parked one and is dropped.
    second = crawl(args={"sections": "vip"}).wait()
    assert second.stats["finish_reason"] == "finished"
    assert len(second.items_in("vip")) == ITEMS
    assert second.stats["hitl/resumed"] == 1
    assert second.stats["hitl/parked/duplicates_dropped"] == 1
    assert vip_page_paths(fresh_sandbox)["/vip/page/1"] == 2
    sessions = cli.json("sessions", "list")
    assert [s["domain"] for s in sessions] == ["vip.sandbox.test"]
    assert sessions[0]["cookie_names"] == ["vip_pass"]
    assert sessions[0]["health"] == "valid"


def test_expired_session_401_pauses_for_login_refresh(crawl, cli, cookie_file, fresh_sandbox):
    code, out = cli("sessions", "import", "members.sandbox.test",
                    str(cookie_file("cookie-header", "members.sandbox.test", "member_session", "expired")))
    assert code == 0, out
    run = crawl(args={"sections": "members"})
    (i,) = wait_for(lambda: open_interventions(cli), what="an intervention")
    assert (i["type"], i["reason"], i["domain"]) == ("login_refresh", "http_401", "members.sandbox.test")
    wait_for(lambda: cli.json("sessions", "list")[0]["health"] == "invalid", what="session marked invalid")
    run.wait_for_log("Waiting for a human")

    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies",
                    str(cookie_file("cookie-editor-json", "members.sandbox.test", "member_session", "valid-demo")))
    assert code == 0, out
    result = run.wait()
    assert result.stats["finish_reason"] == "finished"
    assert len(result.items_in("members")) == ITEMS
    assert result.stats["hitl/sessions/invalidated"] == 1
    sent = fresh_sandbox.requests("/members/page/1")
    assert [r["cookies"].get("member_session") for r in sent] == ["expired", "valid-demo"]


def test_kill9_while_parked_then_restart_and_resolve_fetches_each_once(
        crawl, cli, cookie_file, fresh_sandbox, redis_server):
    run = crawl(args={"sections": "vip"}, settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 16})
    (i,) = wait_for(lambda: open_interventions(cli), what="an intervention")
    run.wait_for_log("Waiting for a human")
    run.kill9()
    # Redis restarts too (AOF): still nothing lost.
    import redis as redis_lib

    redis_lib.Redis.from_url(redis_server.url).bgrewriteaof()
    wait_for(lambda: redis_lib.Redis.from_url(redis_server.url).info("persistence")["aof_rewrite_in_progress"] == 0,
             what="AOF rewrite")
    redis_server.restart()

    restarted = crawl(args={"sections": "vip"})
    restarted.wait_for_log("Waiting for a human")
    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies",
                    str(cookie_file("netscape", "vip.sandbox.test", "vip_pass", "letmein")))
    assert code == 0, out
    result = restarted.wait()
    assert result.stats["finish_reason"] == "finished"
    assert len(result.items_in("vip")) == ITEMS
    with_cookie = [r for r in fresh_sandbox.requests("/vip/page/1") if r["cookies"].get("vip_pass")]
    assert len(with_cookie) == 1  # the parked request, fetched exactly once
    hits = vip_page_paths(fresh_sandbox)
    assert all(hits[f"/vip/page/{n}"] == 1 for n in range(2, PAGES + 1)), hits


def test_learning_requires_session_then_parks_before_sending(crawl, cli, slow_sandbox):
    # 12 requests in flight against a site with a 300 ms round trip: the pause after the
    # first 403 cannot recall the other 11, and each 403 teaches the domain's stats.
    slow_sandbox.reset()
    first = crawl(spider="vip_fanout", args={"pages": "12"}, site=slow_sandbox,
                  settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 16, "HITL_PAUSE_TIMEOUT": 1}).wait()
    assert first.stats["hitl/blocks/http_403"] >= 10
    (domain,) = [d for d in cli.json("domains", "list") if d["domain"] == "vip.sandbox.test"]
    assert domain["attempts"] >= 10
    assert domain["requires_session"] == "required"
    assert domain["access_class"] == "human"
    (i,) = open_interventions(cli)
    code, out = cli("interventions", "cancel", str(i["id"]), "--note", "start over")
    assert code == 0, out
    slow_sandbox.reset()

    second = crawl(spider="vip_fanout", args={"pages": "12"}, site=slow_sandbox,
                   settings={"HITL_PAUSE_TIMEOUT": 1}).wait()
    assert slow_sandbox.hits().get("__total__", 0) == 0  # nothing was sent
    assert second.stats["hitl/parked"] == 12
    # the first opens the intervention; the rest find the domain paused
    assert second.stats["hitl/parked/reason/session_required"] == 1
    assert second.stats["hitl/parked/reason/domain_paused"] == 11
    (again,) = open_interventions(cli)
    assert (again["type"], again["reason"], again["parked_count"]) == ("manual_access", "session_required", 12)


def test_cancel_fails_parked_requests_with_a_reason(crawl, cli, fresh_sandbox):
    run = crawl(args={"sections": "vip"})
    (i,) = wait_for(lambda: open_interventions(cli), what="an intervention")
    run.wait_for_log("Waiting for a human")
    result_json = cli.json("interventions", "cancel", str(i["id"]), "--note", "not worth it")
    assert result_json["failed"] == 1
    result = run.wait()
    assert result.stats["finish_reason"] == "finished"
    assert result.stats["hitl/failed/intervention_cancelled"] == 1
    assert "1 parked requests to vip.sandbox.test failed: intervention" in result.log
    assert cli.json("status")["parked_total"] == 0


def test_selector_drift_parks_pages_and_refetches_them_after_the_fix(crawl, cli, fresh_sandbox):
    first = crawl(args={"sections": "drift", "details": "0"}, settings={"HITL_PAUSE_TIMEOUT": 1}).wait()
    (i,) = open_interventions(cli)
    assert (i["type"], i["reason"], i["domain"]) == ("selector_fix", "selector_missing", "drift.sandbox.test")
    assert i["parked_count"] == 3  # pages 3, 4 and 5: three in a row without div.quote
    assert len(first.items) == 20  # pages 1-2 (old markup)
    shown = cli.json("interventions", "show", str(i["id"]))
    assert shown["evidence"]["pages"] == [f"http://drift.sandbox.test:{fresh_sandbox.url.rsplit(':', 1)[1]}/drift/page/{n}" for n in (3, 4, 5)]

    code, out = cli("interventions", "resolve", str(i["id"]), "--note", "spider fixed for the redesign")
    assert code == 0, out
    fixed = crawl(args={"sections": "drift", "details": "0", "markup": "v2"}).wait()
    assert fixed.stats["hitl/resumed"] == 3
    texts = {item["url"].rsplit("/", 1)[1] for item in fixed.items}
    assert {"3", "4", "5", "6"} <= texts  # parked pages fetched again, and page 6 found from 5
    # first run: static, browser, stealth (a miss climbs before it blames the selector);
    # second run: once, resumed (the spider's own copy of the page is dropped as parked)
    assert fresh_sandbox.hits()["/drift/page/3"] == 4
    assert fixed.stats["hitl/parked/duplicates_dropped"] == 3


def test_spider_pause_from_cli_parks_everything_until_unpaused(crawl, cli, fresh_sandbox):
    code, out = cli("spiders", "pause", "sandbox")
    assert code == 0, out
    run = crawl(args={"sections": "quotes"})
    run.wait_for_log("Waiting for a human")
    assert fresh_sandbox.hits().get("__total__", 0) == 0
    code, out = cli("spiders", "unpause", "sandbox")
    assert code == 0, out
    result = run.wait()
    assert result.stats["finish_reason"] == "finished"
    assert len(result.items_in("quotes")) == ITEMS
    assert result.stats["hitl/parked/reason/spider_paused"] == 1


def test_unserializable_request_is_reported_not_dropped_silently(crawl, cli):
    result = crawl(spider="unserializable", settings={"HITL_PAUSE_TIMEOUT": 1}).wait()
    assert result.stats["hitl/parked/unserializable"] == 1
    assert "Cannot park" in result.log and "is not a method of the spider" in result.log


def test_state_survives_for_the_console_too(hitl_env, crawl, cli):
    """The CLI sees what the crawler recorded: run, intervention, parked counts."""
    run = crawl(args={"sections": "vip"}, settings={"HITL_PAUSE_TIMEOUT": 1}).wait()
    status = cli.json("status")
    assert status["redis"]["ok"] and status["database"]["ok"]
    assert status["parked"] == [{"spider": "sandbox", "domain": "vip.sandbox.test", "parked": 1}]
    assert status["paused_domains"] == ["vip.sandbox.test"]
    st = HitlState.open(StateConfig.from_env())
    try:
        from scrapy_hitl.state.runs import get_run

        rec = get_run(st.db, run.stats["hitl/run_id"])
        assert rec["status"] == "waiting_for_human"
        assert rec["finish_reason"] == "hitl_paused"
        assert rec["args"]["sections"] == "vip"
    finally:
        st.close()


def test_a_running_crawl_reports_its_progress_on_a_timer(crawl, slow_sandbox, state):
    """run.progress comes from a timer every HITL_PROGRESS_INTERVAL (not from each
    response), with counts that only grow, and the last one no more than the crawl did."""
    slow_sandbox.reset()
    result = crawl(args={"sections": "quotes", "details": "0"}, site=slow_sandbox,
                   settings={"HITL_PROGRESS_INTERVAL": 0.2}).wait()
    assert result.returncode == 0, result.log[-3000:]

    run_id = result.stats["hitl/run_id"]
    progress = [e.payload for e in state.events.range(count=10_000) if e.type == "run.progress" and e.run_id == run_id]
    assert len(progress) >= 2, progress  # 12 pages at 300 ms each: several ticks
    responses = [p["responses"] for p in progress]
    assert responses == sorted(responses)
    counts = [tuple(p[k] for k in ("requests", "responses", "items", "parked", "resumed")) for p in progress]
    assert all(a != b for a, b in zip(counts, counts[1:]))  # only when they moved
    assert 0 < responses[-1] <= result.stats["downloader/response_count"]
    assert all(p["status"] == "running" for p in progress)
