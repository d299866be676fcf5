"""Crawls as jobs, end to end: `hitl projects` / `hitl jobs` and real `hitl worker` processes
running real `scrapy crawl` children against the sandbox (docs/jobs.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import wait_for
from tests.support.crawl import DEMO_PROJECT, ROOT
from tests.support.processes import die_with_test, running, stop_tree

# A crawl slow enough to be stopped in the middle: one request at a time, 0.1 s apart
# (6 listing pages and 60 quote pages in the sandbox fixture).
SLOW = ("-s", "CONCURRENT_REQUESTS=1", "-s", "DOWNLOAD_DELAY=0.1", "-s", "LOG_LEVEL=DEBUG")


class Worker:
    """`hitl worker --queues crawls` as a real process; start it with the `workers` fixture,
    which stops it (and the crawl it runs) however the test ends."""

    def __init__(self, env: dict[str, str], tmp_path: Path, *, burst: bool = False, **extra: str) -> None:
        self.log_path = tmp_path / f"worker-{os.urandom(3).hex()}.log"
        cmd = [sys.executable, "-m", "hitl_console.cli", "worker", "--queues", "crawls"] + (["--burst"] if burst else [])
        full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "HITL_JOB_LIMIT_CRAWLS": "1",
                    "HITL_JOB_HEARTBEAT": "1", **extra}
        with open(self.log_path, "wb") as log:
            # SIGKILL if this test process dies without its teardown: the crawl's go-between stops the crawl
            self.proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=die_with_test(signal.SIGKILL))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still running after {timeout}s:\n{self.log()[-4000:]}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.wait()


@pytest.fixture
def workers(hitl_env, tmp_path):
    """Starts `hitl worker`s; at teardown, passed or failed, each is drained (SIGTERM), then
    SIGKILLed with what it started (its crawl, in a session of its own), and waited for."""
    started: list[Worker] = []

    def start(*, burst: bool = False, **extra: str) -> Worker:
        started.append(Worker(hitl_env, tmp_path, burst=burst, **extra))
        return started[-1]

    yield start
    for worker in started:
        stop_tree(worker.proc)


@pytest.fixture
def project(cli):
    code, out = cli("projects", "add", str(DEMO_PROJECT), "--json")
    assert code == 0, out
    return json.loads(out)["name"]


def job_of(state, job_id: int) -> dict:
    from scrapy_hitl.state import jobs

    return jobs.get(state.db, job_id)


def log_of(state, job_id: int) -> str:
    from scrapy_hitl.state import jobs

    return "\n".join(jobs.read_log(state.redis, job_id, count=100_000)[0])


def items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_a_job_crawls_the_sandbox_to_the_end(cli, project, state, fresh_sandbox, hitl_env, tmp_path, workers):
    feed = tmp_path / "items.jsonl"
    job = cli.json("jobs", "run", project, "sandbox", "-a", f"base={fresh_sandbox.url}", "-a", "sections=quotes",
                   "-s", f"FEEDS={json.dumps({str(feed): {'format': 'jsonlines'}})}")
    assert job["status"] == "queued" and job["run_id"]
    worker = workers(burst=True)
    assert worker.wait() == 0, worker.log()[-4000:]

    shown = cli.json("jobs", "show", str(job["id"]))
    assert (shown["status"], shown["reason"], shown["attempts"], shown["exit_code"]) == ("finished", "finished", 1, 0)
    assert shown["started_at"] and shown["finished_at"]
    assert len(items(feed)) == 60  # 6 pages of 10 quotes, each with its detail page
    log = cli.json("jobs", "log", str(job["id"]))
    assert any("Spider closed (finished)" in line for line in log)
    code, out = cli("jobs", "log", str(job["id"]), "--follow")  # an ended job: prints it all, then returns
    assert code == 0 and "Spider closed (finished)" in out
    assert (Path(hitl_env["HITL_DATA_DIR"]) / "job-logs" / f"job-{job['id']}.log").exists()
    from scrapy_hitl.state import runs

    run = runs.get_run(state.db, job["run_id"])
    assert (run["status"], run["finish_reason"]) == ("completed", "finished")
    from scrapy_hitl.state import items as stored

    assert len(list(stored.iter_export(state.db, job["run_id"]))) == 60  # the run's items, as the console has them
    assert [j["id"] for j in cli.json("jobs", "list", "--status", "finished")] == [job["id"]]


def test_a_cap_stops_a_job_with_its_reason_and_a_spider_raising_at_start_fails(
        cli, project, state, fresh_sandbox, workers):
    capped = cli.json("jobs", "run", project, "sandbox", "-a", f"base={fresh_sandbox.url}", "-a", "sections=quotes")
    raising = cli.json("jobs", "run", project, "sandbox", "-a", "sections=quotes")  # no base: __init__ raises
    # a 403 parks the vip section; nobody answers within HITL_PAUSE_TIMEOUT
    paused = cli.json("jobs", "run", project, "sandbox", "-a", f"base={fresh_sandbox.url}", "-a", "sections=vip",
                      "-s", "HITL_PAUSE_TIMEOUT=1", "-s", "TEST_ENGINE_HEARTBEAT=0.1", "-s",
                      'EXTENSIONS={"tests.support.heartbeat.EngineHeartbeat": 0}')
    worker = workers(burst=True, HITL_JOB_LIMIT_PAGES="3")
    assert worker.wait() == 0, worker.log()[-4000:]

    job = job_of(state, capped["id"])
    assert (job["status"], job["reason"]) == ("failed", "page_limit"), job
    assert "HITL_JOB_LIMIT_PAGES" in job["message"]
    assert "Spider closed (closespider_pagecount)" in log_of(state, capped["id"])

    job = job_of(state, paused["id"])  # left waiting: a resolve queues it again
    assert (job["status"], job["reason"], job["exit_code"]) == ("waiting_for_human", "hitl_paused", 0), job
    assert job["waiting_at"] and not job["finished_at"]
    code, out = cli("jobs", "cancel", str(paused["id"]))  # no crawler, no worker: ended at once
    assert code == 0 and f"Cancelled job {paused['id']}" in out, out

    job = job_of(state, raising["id"])
    assert (job["status"], job["reason"], job["exit_code"]) == ("failed", "crashed", 1), job
    assert "ValueError: Give the sandbox's address" in job["message"]
    log = log_of(state, raising["id"])
    assert "Traceback (most recent call last)" in log and "raise ValueError(" in log


def test_cancel_stops_a_running_crawl_gracefully(cli, project, state, fresh_sandbox, workers):
    job = cli.json("jobs", "run", project, "sandbox", "-a", f"base={fresh_sandbox.url}", "-a", "sections=quotes",
                   *SLOW)
    workers(HITL_JOB_STOP_GRACE="30")
    wait_for(lambda: "Scraped from" in log_of(state, job["id"]), timeout=60, what="the crawl to scrape")
    pid = job_of(state, job["id"])["pid"]
    code, out = cli("jobs", "cancel", str(job["id"]))
    assert code == 0 and "told to stop" in out, out
    done = wait_for(lambda: (j := job_of(state, job["id"]))["status"] == "cancelled" and j, timeout=60,
                    what="the job to be cancelled")
    # stopped by SIGTERM within the grace, not killed
    assert (done["reason"], done["message"]) == ("cancelled", "stopped on request"), done
    assert "Spider closed (shutdown)" in log_of(state, job["id"])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    code, out = cli("jobs", "cancel", str(job["id"]))  # a job that has ended
    assert code == 1 and "already ended (cancelled)" in out, out


def test_a_killed_or_drained_worker_job_runs_again_and_delivers_every_item_once(
        cli, project, state, fresh_sandbox, hitl_env, tmp_path, workers):
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from hitl_console.jobs.runner import lease_key
    from scrapy_hitl.state import jobs, runs

    feed = tmp_path / "items.jsonl"
    job = cli.json("jobs", "run", project, "sandbox", "-a", f"base={fresh_sandbox.url}", "-a", "sections=quotes",
                   "-s", f"FEEDS={json.dumps({str(feed): {'format': 'jsonlines'}})}", *SLOW)
    worker = workers()
    wait_for(lambda: log_of(state, job["id"]).count("Scraped from") >= 10, timeout=60, what="10 items")
    go_between = job_of(state, job["id"])["pid"]  # it exits once the crawl has (feed file closed)
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait()
    # Its crawl got SIGTERM (PR_SET_PDEATHSIG) and stops gracefully, saving its JOBDIR.
    wait_for(lambda: not running(go_between) and not runs.is_alive(state.redis, job["run_id"]), timeout=60,
             what="the orphan crawl to stop")
    assert job_of(state, job["id"])["status"] == "running"  # nobody ended it
    # Exactly one SIGTERM, however many of the dead worker's threads re-parented the go-between:
    # Scrapy takes a second one as an unclean shutdown (no JOBDIR saved: the job would start over).
    # The lines after the worker died are in the log file only: nobody tailed them into Redis.
    crawl_log = (Path(hitl_env["HITL_DATA_DIR"]) / "job-logs" / f"job-{job['id']}.log").read_text()
    assert crawl_log.count("Received SIGTERM, shutting down gracefully") == 1, crawl_log[-3000:]
    assert "forcing unclean shutdown" not in crawl_log, crawl_log[-3000:]
    first = items(feed)
    assert 10 <= len(first) < 60

    # RQ calls the job abandoned once its execution's heartbeat has lapsed (3 x HITL_JOB_HEARTBEAT).
    registry = StartedJobRegistry(queue=Queue(jobs.QUEUE_NORMAL, connection=state.redis))
    wait_for(lambda: registry.get_expired_job_ids() and not state.redis.exists(lease_key(job["id"])),
             timeout=30, what="the dead worker's execution to expire")
    second = workers()  # its first maintenance pass re-queues the job
    wait_for(lambda: log_of(state, job["id"]).count("Scraped from") >= len(first) + 10, timeout=60,
             what="10 more items")
    second.stop()  # drain: the crawl stops gracefully and the job is queued for another worker
    drained = job_of(state, job["id"])
    assert (drained["status"], drained["reason"], drained["attempts"]) == ("queued", "drained", 2), drained
    assert runs.get_run(state.db, job["run_id"])["status"] == "queued"
    assert 20 <= len(items(feed)) < 60

    third = workers(burst=True)
    assert third.wait() == 0, third.log()[-4000:]
    done = job_of(state, job["id"])
    assert (done["status"], done["attempts"]) == ("finished", 3), done
    log = log_of(state, job["id"])
    assert "attempt 2" in log and "attempt 3" in log
    # Why each attempt ended is in the log: the killed worker's attempt by the next runner's
    # line, right above the next attempt's header; the drained one by the runner that stopped it.
    lost = "--- attempt 1 ended without its worker: the worker stopped (killed or crashed)"
    assert log.index(lost) < log.index("--- job %d attempt 2" % job["id"]), log[-3000:]
    urls = [i["detail_url"] for i in items(feed)]
    assert len(urls) == 60 and len(set(urls)) == 60, (len(first), len(urls), len(set(urls)))
    with redis.Redis.from_url(hitl_env["HITL_REDIS_URL"]) as r:
        assert not r.exists(lease_key(job["id"]))


def test_bad_input_gets_a_message_not_a_traceback(cli, project, tmp_path, monkeypatch):
    cases = [
        (("worker", "--queues", "crawls,mail"), "give crawls, webhooks or crawls,webhooks"),
        (("jobs", "run", "nope", "sandbox"), "no project named 'nope'"),
        (("jobs", "run", project, "nope"), "has no spider 'nope'; its spiders:"),
        (("jobs", "run", project, "sandbox", "-a", "base"), "is not NAME=VALUE"),
        (("jobs", "run", project, "sandbox", "-s", "JOBDIR=/tmp/x"), "chosen by the worker"),
        (("jobs", "run", project, "sandbox", "--priority", "1000"), "priority is an integer from -100 to 100"),
        (("projects", "add", str(tmp_path)), "has no scrapy.cfg"),
        (("projects", "remove", "nope"), "no project named 'nope'"),
        (("jobs", "show", "999"), "no job 999"),
        (("jobs", "cancel", "999"), "no job 999"),
    ]
    for args, message in cases:
        code, out = cli(*args)
        assert code != 0 and message in out and "Traceback" not in out, (args, out)
    monkeypatch.setenv("HITL_MODE", "cloud")
    code, out = cli("worker", "--queues", "crawls", "--burst")
    assert code == 1 and "HITL_MODE must be one of local, production; got 'cloud'" in out, out
    monkeypatch.delenv("HITL_MODE")
    job = cli.json("jobs", "run", project, "sandbox", "-a", "sections=quotes")
    code, out = cli("jobs", "cancel", str(job["id"]))
    assert code == 0 and f"Cancelled job {job['id']}" in out
    code, out = cli("jobs", "cancel", str(job["id"]))
    assert code == 1 and "nothing to cancel" in out


def test_host_slots_cap_the_crawls_of_every_worker_on_a_host(state):
    from hitl_console.jobs.worker import HostSlots

    slots = HostSlots(state.redis, host="h1", limit=2, ttl=30)
    assert [slots.take(w) for w in ("a", "b", "c")] == [True, True, False]
    assert slots.take("a")  # a worker that holds one keeps it
    assert HostSlots(state.redis, host="h2", limit=2, ttl=30).take("c")  # another host has its own
    slots.release("a")
    assert slots.take("c") and slots.held() == 2
    short = HostSlots(state.redis, host="h3", limit=1, ttl=0.05)
    assert short.take("dead")  # its worker is killed: nobody renews it
    wait_for(lambda: short.take("next"), timeout=10, what="the dead worker's slot to expire")
