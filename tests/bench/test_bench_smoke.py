"""Smoke tests for the benchmark scripts: each runs with ``--quick`` and prints its result line.

No timing is asserted: the figures of a quick run on a busy machine mean nothing. These only
check that every benchmark still runs end to end against the current code (real Redis,
real sandbox, real crawls) and writes its JSON result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_bench(tmp_path):
    def run(name: str) -> tuple[str, dict]:
        out = tmp_path / f"{name}.json"
        proc = subprocess.run(
            [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick", "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=240,
        )
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        assert out.exists(), f"{name} wrote no JSON result:\n{proc.stdout[-3000:]}"
        return proc.stdout, json.loads(out.read_text())

    return run


def test_overhead_quick(run_bench):
    stdout, result = run_bench("overhead")
    assert "RESULT overhead: throughput ratio with/without add-on = " in stdout
    assert result["ratio"] > 0
    assert all(r["responses"] == result["params"]["pages"] for r in result["runs"])


def test_parking_quick(run_bench):
    stdout, result = run_bench("parking")
    assert "RESULT parking: park " in stdout
    assert result["park_rps"] > 0 and result["claim_ack_rps"] > 0
    n = result["params"]["memory_requests"]
    assert result["fingerprints"]["count"] == n
    assert [r["parked_in_redis"] for r in result["crawl_runs"] if r["mode"] == "paused"] == [n]


def test_resume_latency_quick(run_bench):
    stdout, result = run_bench("resume_latency")
    assert "RESULT resume_latency: p50 " in stdout
    assert all(r["returncode"] == 0 and r["cookie_sent"] and r["resumed"] == 1 for r in result["reps"])


def test_event_latency_quick(run_bench):
    stdout, result = run_bench("event_latency")
    assert "RESULT event_latency: 1 client(s) p50 " in stdout
    assert [r["clients"] for r in result["runs"]] == [1, 3]
    assert all(r["complete"] and not r["errors"] for r in result["runs"])


def test_inbox_quick(run_bench):
    stdout, result = run_bench("inbox")
    assert "RESULT inbox: p95 first paint " in stdout
    assert len(result["samples_ms"]["first paint (sum)"]) == result["params"]["reps"]


def test_list_api_quick(run_bench):
    stdout, result = run_bench("list_api")
    assert "RESULT list_api: p95 page 1 " in stdout
    deep = f"page {result['params']['page']}"
    assert len(result["samples_ms"][deep]) == result["params"]["reps"]


def test_resume_job_quick(run_bench):
    stdout, result = run_bench("resume_job")
    assert "RESULT resume_job: p50 " in stdout
    assert all(r["queued_again"] and r["cookie_sent"] and r["status"] == "finished" for r in result["reps"])


def test_jobs_quick(run_bench):
    stdout, result = run_bench("jobs")
    assert "RESULT jobs: 2 one-page jobs through the queue " in stdout
    assert [b["size"] for b in result["blocks"]] == [2]
    assert result["ratio"] > 0
