"""The seed's loop as a service: a job blocks on a 403, its crawler exits waiting, and a
resolve made with no crawler alive queues the job again, which collects every item."""

from __future__ import annotations

import json

from tests.integration.test_jobs import Worker, items, job_of, project  # noqa: F401 (fixture)

FAST_IDLE = ("-s", "HITL_PAUSE_TIMEOUT=1", "-s", "TEST_ENGINE_HEARTBEAT=0.1",
             "-s", 'EXTENSIONS={"tests.support.heartbeat.EngineHeartbeat": 0}')


def test_a_resolve_after_the_crawler_exited_reruns_the_job_to_the_end(
        cli, project, state, fresh_sandbox, hitl_env, tmp_path, cookie_file):  # noqa: F811
    from scrapy_hitl.state import interventions, runs

    feed = tmp_path / "items.jsonl"
    job = cli.json("jobs", "run", project, "sandbox", "-a", f"base={fresh_sandbox.url}", "-a", "sections=quotes,vip",
                   "-s", f"FEEDS={json.dumps({str(feed): {'format': 'jsonlines'}})}", *FAST_IDLE)
    worker = Worker(hitl_env, tmp_path, burst=True)
    assert worker.wait() == 0, worker.log()[-4000:]

    # The crawl parked vip, waited a second for a human, and exited: nothing is alive.
    waiting = job_of(state, job["id"])
    assert waiting["status"] == "waiting_for_human", waiting
    run = runs.get_run(state.db, job["run_id"])
    assert run["status"] == "waiting_for_human" and not runs.is_alive(state.redis, job["run_id"])
    first = items(feed)
    assert first and {i["section"] for i in first} == {"quotes"}
    [opened] = interventions.list_interventions(state, status="open")
    assert opened["domain"] == "vip.sandbox.test"

    code, out = cli("interventions", "resolve", str(opened["id"]), "--cookies",
                    str(cookie_file("netscape", "vip.sandbox.test", "vip_pass", "letmein")))
    assert code == 0, out
    assert f"Job {job['id']} queued again" in out
    assert job_of(state, job["id"])["status"] == "queued"
    assert runs.get_run(state.db, job["run_id"])["status"] == "queued"

    again = Worker(hitl_env, tmp_path, burst=True)
    assert again.wait() == 0, again.log()[-4000:]
    done = job_of(state, job["id"])
    assert (done["status"], done["reason"], done["attempts"]) == ("finished", "finished", 2), done
    assert runs.get_run(state.db, job["run_id"])["status"] == "completed"
    every = items(feed)
    quotes = [i for i in every if i["section"] == "quotes"]
    vip = [i for i in every if i["section"] == "vip"]
    assert len(vip) == len(quotes) and len({i["detail_url"] for i in every}) == len(every)  # all, once each
    # Each vip page: the 403 once, then once with the cookie (page 1 resumed from its park,
    # the rest found by the re-run); the quotes pages were not fetched again (JOBDIR).
    for n in range(1, 7):
        sent = [r["cookies"].get("vip_pass") for r in fresh_sandbox.requests(f"/vip/page/{n}")]
        assert sent == ([None, "letmein"] if n == 1 else ["letmein"]), (n, sent)
    assert fresh_sandbox.hits().get("/quotes/page/1") == 1
    kinds = [e.type for e in state.events.read(count=100_000) if e.run_id == job["run_id"]]
    for before, after in [("run.waiting", "run.queued"), ("run.queued", "job.running"),
                          ("job.running", "run.completed")]:
        assert kinds.index(before) < len(kinds) - 1 - kinds[::-1].index(after), (before, after, kinds)
