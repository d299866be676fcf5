"""Ctrl-C in the middle of resuming loses nothing; `hitl up` and `hitl demo` work as the
README says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hitl_console.server import free_port
from tests.integration.conftest import wait_for
from tests.support.processes import die_with_test, stop_tree

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_mid_resume_releases_claims_and_the_next_run_finishes(crawl, cli, cookie_file, slow_sandbox):
    slow_sandbox.reset()
    first = crawl(spider="vip_fanout", args={"pages": "12"}, site=slow_sandbox,
                  settings={"CONCURRENT_REQUESTS_PER_DOMAIN": 2, "CONCURRENT_REQUESTS": 2})
    (i,) = wait_for(lambda: cli.json("interventions", "list"), what="an intervention")
    first.wait_for_log("Waiting for a human")
    parked = cli.json("status")["parked_total"]
    assert parked >= 10
    code, out = cli("interventions", "resolve", str(i["id"]), "--cookies",
                    str(cookie_file("netscape", "vip.sandbox.test", "vip_pass", "letmein")))
    assert code == 0, out
    first.wait_for_log("Resumed")
    # Two at a time with a 300 ms round trip: stop while most are claimed but not fetched.
    time.sleep(0.4)
    first.proc.send_signal(signal.SIGINT)
    stopped = first.wait()
    assert stopped.stats["finish_reason"] == "shutdown"
    done_first = len(stopped.items)
    assert done_first < 12

    second = crawl(spider="vip_fanout", args={"pages": "12"}, site=slow_sandbox).wait()
    assert second.stats["finish_reason"] == "finished"
    pages = {item["url"] for item in stopped.items + second.items}
    assert len(pages) == 12  # every page collected, across the two runs
    assert cli.json("status")["parked_total"] == 0


def test_hitl_up_runs_the_stack_until_ctrl_c(tmp_path):
    env = {**os.environ, "HITL_DATA_DIR": str(tmp_path / "data"), "HITL_REDIS_URL": "",
           "HITL_DATABASE_URL": "", "HITL_SECRET_KEY": ""}
    port = free_port(0)
    # SIGTERM if this test process dies: `hitl up` stops its stack (its worker too)
    proc = subprocess.Popen([sys.executable, "-m", "hitl_console.cli", "up", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=die_with_test(signal.SIGTERM))
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Ready"):
                break
        assert any("upgraded from empty" in x for x in lines), lines
        assert any(f"Console   http://127.0.0.1:{port}/" in x for x in lines), lines
        assert any(x.startswith("Project   demo (") and "spiders: sandbox" in x for x in lines), lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        assert (tmp_path / "data" / "redis.sock").exists()
        status = subprocess.run([sys.executable, "-m", "hitl_console.cli", "status", "--json"],
                                env=env, capture_output=True, text=True)
        assert status.returncode == 0, status.stderr
        assert '"ok": true' in status.stdout
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "Stopped." in out
        with pytest.raises(OSError):  # the console went down with the stack
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:  # passed or failed: no `hitl up`, nor the worker it started, outlives the test
        stop_tree(proc)
    assert not (tmp_path / "data" / "redis.sock").exists()
    assert (tmp_path / "data" / "appendonlydir").exists() or list((tmp_path / "data").glob("*.aof"))


def test_hitl_demo_shows_the_whole_loop(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    out = subprocess.run([sys.executable, "-m", "hitl_console.cli", "demo", "--auto"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for needle in ("BLOCKED  vip.sandbox.test", "Intervention #1 opened", "interventions resolve 1 --cookies",
                   "resumed 1 request to vip.sandbox.test", "quotes   50 / 50 items  ok",
                   "vip      50 / 50 items  ok", "Console on http://127.0.0.1:",
                   "log in as demo@example.com / ", "Project   demo (", "/interventions/1/resolve (cookies from cookies.txt): 1 parked request released"):
        assert needle in text, text
    assert not (tmp_path / ".hitl-demo" / "redis.sock").exists()  # its Redis was stopped
