"""``hitl up`` runs the worker (webhooks and crawl jobs) next to Redis, and stops it with the stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
from rq import Worker

from scrapy_hitl.state.redis_server import EmbeddedRedis
from tests.support.processes import die_with_test, running, stop_tree
from tests.webhooks.conftest import ROOT, wait_for


def test_hitl_up_runs_the_worker_and_stops_it(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "HITL_DATA_DIR": str(data), "HITL_REDIS_URL": "", "HITL_DATABASE_URL": "",
           "HITL_SECRET_KEY": ""}
    # SIGTERM if this test process dies: `hitl up` stops its stack (its worker too)
    proc = subprocess.Popen([sys.executable, "-m", "hitl_console.cli", "up", "--no-console"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=die_with_test(signal.SIGTERM))
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lines and lines[-1].startswith("Ready")):
            lines.append(proc.stdout.readline())
        assert any(line.startswith("Worker    webhooks") for line in lines), lines
        redis = EmbeddedRedis(data).client()
        # the webhook worker, and one crawl worker per HITL_JOB_LIMIT_CRAWLS (2 in local mode)
        workers = wait_for(lambda: len(found := Worker.all(connection=redis)) >= 3 and found,
                           what="the workers to register with RQ")
        served = sorted(q.name for w in workers for q in w.queues)
        assert "hitl-webhooks" in served and served.count("hitl-crawls") == 2, served
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Stopped." in out
        for worker in workers:
            assert not os.path.exists(f"/proc/{worker.pid}"), "a worker outlived the stack"
        assert oct((data / "worker.log").stat().st_mode & 0o777) == oct(0o600)  # it holds request details
    finally:  # a SIGKILL to `hitl up` alone would leave its worker (a session of its own) running
        stop_tree(proc)


def test_the_worker_of_a_killed_hitl_up_stops_too(webhook_env, state, tmp_path):
    """``hitl up`` SIGKILLed (the OOM killer, a closed terminal's session): its worker, in a
    session of its own, gets SIGTERM and drains instead of running on behind a stack that is
    gone."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from hitl_console.webhooks.worker import WorkerProcess\n"
         "w = WorkerProcess(log_path=sys.argv[1]).start()\n"
         "print(w.proc.pid, flush=True)\n"
         "time.sleep(300)\n", str(tmp_path / "worker.log")],
        env={**os.environ, **webhook_env}, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_test())
    worker = None
    try:
        worker = psutil.Process(int(parent.stdout.readline()))
        log = tmp_path / "worker.log"
        # its first maintenance comes after RQ took over SIGTERM (before, SIGTERM just ends it)
        wait_for(lambda: "cleaning registries for queue: hitl-notify" in log.read_text(), what="the worker to listen")
        parent.kill()
        parent.wait()
        wait_for(lambda: not running(worker), timeout=60, what="the orphaned worker to stop")
        assert "warm shut down requested" in log.read_text()  # drained, not killed
    finally:
        stop_tree(parent)
        parent.stdout.close()
        if worker is not None and running(worker):
            worker.kill()
