"""The job runner's pure decisions: caps as Scrapy settings, the command line, the outcome of
an exited crawl, and the jobs settings (hitl_console/jobs/runner.py, config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitl_console.jobs.config import JobsConfig
from hitl_console.jobs.runner import build_command, finish_reason_in, limit_settings, outcome, setting_text

PROD = JobsConfig.from_env({"HITL_MODE": "production"})
LOCAL = JobsConfig.from_env({})


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {"mode": "local", "crawls": 2, "browser_pages": 4, "memory_mb": 0, "pages": 0, "time": 0}),
    ({"HITL_MODE": "production"},
     {"mode": "production", "crawls": 4, "browser_pages": 4, "memory_mb": 2048, "pages": 100_000, "time": 86_400}),
    ({"HITL_MODE": "Production ", "HITL_JOB_LIMIT_PAGES": "0"}, {"mode": "production", "pages": 0}),
    ({"HITL_JOB_LIMIT_CRAWLS": "1", "HITL_JOB_LIMIT_TIME": "90.5"}, {"crawls": 1, "time": 90.5}),
    ({"HITL_JOB_STOP_GRACE": "5", "HITL_JOB_HEARTBEAT": "1", "HITL_JOB_MAX_ATTEMPTS": "2"},
     {"stop_grace": 5.0, "heartbeat": 1.0, "max_attempts": 2}),
])
def test_config_from_env(env, expected):
    config = JobsConfig.from_env(env)
    assert {k: getattr(config, k) for k in expected} == expected


@pytest.mark.parametrize(("env", "names"), [
    ({"HITL_MODE": "cloud"}, "HITL_MODE"),
    ({"HITL_JOB_LIMIT_PAGES": "many"}, "HITL_JOB_LIMIT_PAGES"),
    ({"HITL_JOB_LIMIT_MEMORY_MB": "-1"}, "HITL_JOB_LIMIT_MEMORY_MB"),
    ({"HITL_JOB_LIMIT_CRAWLS": "0"}, "HITL_JOB_LIMIT_CRAWLS"),
    ({"HITL_JOB_MAX_ATTEMPTS": "50"}, "HITL_JOB_MAX_ATTEMPTS"),
])
def test_config_names_the_bad_setting(env, names):
    with pytest.raises(ValueError, match=names):
        JobsConfig.from_env(env)


@pytest.mark.parametrize(("job_settings", "config", "settings", "capped"), [
    ({}, LOCAL, {"HITL_BROWSER_MAX_PAGES": 4}, {}),
    ({}, PROD, {"CLOSESPIDER_PAGECOUNT": 100_000, "CLOSESPIDER_TIMEOUT": 86_400, "MEMUSAGE_LIMIT_MB": 2048,
                "MEMUSAGE_ENABLED": True, "HITL_BROWSER_MAX_PAGES": 4},
     {"closespider_pagecount": "page_limit", "closespider_timeout": "time_limit",
      "memusage_exceeded": "memory_limit"}),
    # the job's own lower cap stays, and its finish reason is then the job's, not a cap's
    ({"CLOSESPIDER_PAGECOUNT": "10", "HITL_BROWSER_MAX_PAGES": 2}, PROD,
     {"CLOSESPIDER_TIMEOUT": 86_400, "MEMUSAGE_LIMIT_MB": 2048, "MEMUSAGE_ENABLED": True},
     {"closespider_timeout": "time_limit", "memusage_exceeded": "memory_limit"}),
    # a higher one is lowered to the cap; 0 (Scrapy's "no limit") too
    ({"CLOSESPIDER_PAGECOUNT": 10**9, "CLOSESPIDER_TIMEOUT": 0}, JobsConfig(pages=5, time=60.5),
     {"CLOSESPIDER_PAGECOUNT": 5, "CLOSESPIDER_TIMEOUT": 60.5, "HITL_BROWSER_MAX_PAGES": 4},
     {"closespider_pagecount": "page_limit", "closespider_timeout": "time_limit"}),
    # values Scrapy reads as no limit at all are no lower cap: -1 pages is never reached, 0.5 is 0
    ({"CLOSESPIDER_PAGECOUNT": -1, "MEMUSAGE_LIMIT_MB": 0.5, "CLOSESPIDER_TIMEOUT": -5},
     JobsConfig(pages=5, time=60, memory_mb=100),
     {"CLOSESPIDER_PAGECOUNT": 5, "CLOSESPIDER_TIMEOUT": 60, "MEMUSAGE_LIMIT_MB": 100, "MEMUSAGE_ENABLED": True,
      "HITL_BROWSER_MAX_PAGES": 4},
     {"closespider_pagecount": "page_limit", "closespider_timeout": "time_limit",
      "memusage_exceeded": "memory_limit"}),
    ({"CLOSESPIDER_TIMEOUT": 0.5}, JobsConfig(time=60), {"HITL_BROWSER_MAX_PAGES": 4}, {}),
])
def test_limit_settings(job_settings, config, settings, capped):
    assert limit_settings(job_settings, config) == (settings, capped)


def test_build_command_passes_args_settings_run_and_jobdir():
    job = {"spider": "shop", "args": {"category": "a b"}, "run_id": "r1",
           "settings": {"FEEDS": {"/x.jsonl": {"format": "jsonlines"}}, "DOWNLOAD_DELAY": 0.5}}
    cmd, capped = build_command(job, JobsConfig(pages=3), Path("/data/jobs/r1"))
    assert cmd[1:5] == ["-m", "scrapy", "crawl", "shop"]
    pairs = list(zip(cmd[5::2], cmd[6::2], strict=True))
    assert pairs == [("-a", "category=a b"), ("-s", "TELNETCONSOLE_ENABLED=False"),
                     ("-s", 'FEEDS={"/x.jsonl": {"format": "jsonlines"}}'),
                     ("-s", "DOWNLOAD_DELAY=0.5"), ("-s", "CLOSESPIDER_PAGECOUNT=3"),
                     ("-s", "HITL_BROWSER_MAX_PAGES=4"), ("-s", "HITL_RUN_ID=r1"), ("-s", "JOBDIR=/data/jobs/r1")]
    assert capped == {"closespider_pagecount": "page_limit"}


@pytest.mark.parametrize(("value", "text"), [
    ("x", "x"), (True, "True"), (False, "False"), (3, "3"), (0.25, "0.25"), (None, "null"),
    ({"a": 1}, '{"a": 1}'), (["a", "b"], "a,b"),
])
def test_setting_text(value, text):
    assert setting_text(value) == text


TRACEBACK = ["2026-01-01 [scrapy.utils.log] INFO: Scrapy started", "Traceback (most recent call last):",
             '  File "x.py", line 1, in <module>', "    raise ValueError('no base')",
             "ValueError: no base"]


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"finish_reason": "finished", "exit_code": 0}, ("finished", "finished", "")),
    ({"finish_reason": None, "exit_code": 0}, ("finished", "finished", "")),  # a project without the add-on
    ({"finish_reason": "closespider_itemcount", "exit_code": 0},
     ("finished", "closespider_itemcount", "")),  # the job's own limit
    ({"finish_reason": "closespider_pagecount", "exit_code": 0, "capped": {"closespider_pagecount": "page_limit"}},
     ("failed", "page_limit", "stopped at the page cap (3 pages, HITL_JOB_LIMIT_PAGES)")),
    ({"finish_reason": "memusage_exceeded", "exit_code": 0, "capped": {"memusage_exceeded": "memory_limit"}},
     ("failed", "memory_limit", "stopped at the memory cap (0 MB, HITL_JOB_LIMIT_MEMORY_MB)")),
    ({"finish_reason": "hitl_paused", "exit_code": 0},
     ("waiting_for_human", "hitl_paused", "requests wait for a human; resolving them queues this job again")),
    ({"finish_reason": None, "exit_code": 1, "tail": TRACEBACK},
     ("failed", "crashed", "scrapy crawl exited with code 1: ValueError: no base")),
    ({"finish_reason": "shutdown", "exit_code": 0},
     ("failed", "shutdown", "the crawl closed with finish reason 'shutdown'")),
    ({"finish_reason": "finished", "exit_code": -9}, ("failed", "killed", "scrapy crawl was killed by signal 9")),
    ({"finish_reason": "shutdown", "exit_code": 0, "cancelled": True}, ("cancelled", "cancelled", "stopped on request")),
    ({"finish_reason": None, "exit_code": -9, "cancelled": True},
     ("cancelled", "cancelled", "stopped on request (killed after HITL_JOB_STOP_GRACE)")),
    ({"finish_reason": "shutdown", "exit_code": 0, "drained": True},
     ("queued", "drained", "its worker shut down; queued again to continue from its JOBDIR")),
])
def test_outcome(kwargs, expected):
    assert outcome(**{"capped": {}, "config": JobsConfig(pages=3), **kwargs}) == expected


@pytest.mark.parametrize(("line", "reason"), [
    ("2026-12-06 05:21:12 [scrapy.core.engine] INFO: Spider closed (finished)", "finished"),
    ("2026-12-06 05:21:12 [scrapy.core.engine] INFO: Spider closed (closespider_pagecount)\n",
     "closespider_pagecount"),
    ("2026-12-06 05:21:12 [scrapy.core.engine] INFO: Closing spider (finished)", None),
    ("Spider closed (", None),
])
def test_finish_reason_in(line, reason):
    assert finish_reason_in(line) == reason


def test_the_go_between_kills_a_crawl_that_ignores_its_stop_after_the_grace():
    """Its worker gone, the go-between sends the crawl SIGTERM; a crawl that hangs in its
    stop is killed after HITL_JOB_STOP_GRACE instead of running on for ever, unwatched, with
    its heartbeat keeping the job's re-run out."""
    import os
    import subprocess
    import sys
    import time

    from hitl_console.jobs.runner import CHILD

    hangs = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
             "print(os.getpid(), flush=True); time.sleep(120)")
    worker = (f"import os, subprocess, sys; p = subprocess.Popen([sys.executable, '-I', '-S', {CHILD!r}, "
              f"str(os.getpid()), '0.2', '--', sys.executable, '-c', {hangs!r}], stdout=subprocess.PIPE); "
              f"print(p.stdout.readline().decode().strip(), flush=True); os._exit(0)")  # dies once the crawl hangs
    crawl_pid = int(subprocess.run([sys.executable, "-c", worker], capture_output=True, check=True,
                                   timeout=60).stdout)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(crawl_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(crawl_pid, 9)
    raise AssertionError("the crawl outlived its dead worker and its go-between's grace")


def test_the_go_between_sends_the_crawl_one_sigterm_whoever_asks_and_however_often(tmp_path):
    """A worker with many threads SIGKILLed (Linux signals the go-between again each time it is
    re-parented to another dying thread), a cancel and a Ctrl-C besides: the crawl gets one
    SIGTERM, never the second one Scrapy takes as "force an unclean shutdown"."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from hitl_console.jobs.runner import CHILD

    ready, counted = tmp_path / "ready", tmp_path / "sigterms"
    crawl = ("import os, signal, time\n"
             "got = []\n"
             "signal.signal(signal.SIGTERM, lambda *_: got.append(1))\n"
             f"open({str(ready)!r}, 'w').close()\n"
             "while not got: time.sleep(0.01)\n"
             "time.sleep(1)\n"  # a second SIGTERM would come meanwhile
             f"open({str(counted)!r} + '.new', 'w').write(str(len(got)))\n"
             f"os.replace({str(counted)!r} + '.new', {str(counted)!r})\n")
    worker = ("import os, subprocess, sys, threading, time\n"
              "for _ in range(20): threading.Thread(target=time.sleep, args=(300,), daemon=True).start()\n"
              f"p = subprocess.Popen([sys.executable, '-I', '-S', {CHILD!r}, str(os.getpid()), '30', '--', "
              f"sys.executable, '-c', {crawl!r}])\n"
              "print(p.pid, flush=True)\n"
              "time.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-c", worker], stdout=subprocess.PIPE)
    try:
        go_between = int(proc.stdout.readline())
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline, "the crawl did not start"
            time.sleep(0.01)
        proc.kill()  # the worker dies: SIGUSR1 from each of its threads that was the parent
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):  # a cancel, Ctrl-C, the death again
            time.sleep(0.1)  # apart: signals sent at once would merge into one pending signal
            os.kill(go_between, sig)
        while not counted.exists():
            assert time.monotonic() < deadline, "the crawl did not stop"
            time.sleep(0.05)
        assert counted.read_text() == "1"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # or its pipe is reported unclosed in whichever test collects it


@pytest.mark.parametrize("sig", [9, 15])  # SIGKILL (the OOM killer, the grace) cannot be handled; SIGTERM can
def test_the_go_between_dies_of_the_signal_that_killed_the_crawl(sig):
    """The worker reads "killed by signal N" from the go-between's exit (outcome()), not a
    crash with the go-between's own traceback."""
    import os
    import subprocess
    import sys

    from hitl_console.jobs.runner import CHILD

    dies = f"import os; os.kill(os.getpid(), {sig})"
    proc = subprocess.run([sys.executable, "-I", "-S", CHILD, str(os.getpid()), "--", sys.executable, "-c", dies],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -sig, proc.stderr[-2000:]
    assert proc.stderr == ""


@pytest.mark.parametrize(("heartbeat", "maintenance"), [
    (1.0, 3),  # the multi-host tests' beat: a dead host's job is queued again within ~3 s, not 25
    (2.5, 9),  # whole seconds: three beats of 3 s
    (10.0, 30),  # the default (RQ blocked 31 s)
    (30.0, 90),
])
def test_an_idle_crawl_worker_blocks_no_longer_than_its_maintenance_interval(redis_server, heartbeat, maintenance):
    """An idle RQ worker runs its maintenance (which re-queues the job of a worker that stopped
    beating) only between two blocking dequeues, and RQ blocks ``worker_ttl - 15`` s: 25 s at a
    1 s beat delayed a dead host's job by that much (hitl_console/jobs/worker.py)."""
    import redis
    from rq import Queue

    from hitl_console.jobs.worker import new_crawl_worker

    connection = redis.Redis.from_url(redis_server.url)
    worker = new_crawl_worker([Queue("hitl-crawls", connection=connection)], connection, heartbeat)
    assert (worker.maintenance_interval, worker.dequeue_timeout) == (maintenance, maintenance)
    assert worker.beat_seconds == heartbeat
