"""Smoke tests for bench/session_overhead.py and bench/login_view.py (see test_bench_smoke.py for
what these check: that each runs end to end and writes its result, never a timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(name: str, tmp_path: Path) -> tuple[str, dict]:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout, json.loads(out.read_text())


def test_session_overhead_quick(tmp_path):
    stdout, result = run_bench("session_overhead", tmp_path)
    assert "RESULT session_overhead: CPU per page five sessions / one = " in stdout
    pages = result["params"]["pages"]
    # every page went out with a session, on both sides
    assert all(r["responses"] == pages and r["used"] == pages and not r["log_errors"] for r in result["runs"])
    assert sorted(r["sessions"] for r in result["runs"]) == [1, 5]


def test_login_view_quick(tmp_path):
    stdout, result = run_bench("login_view", tmp_path)
    assert "RESULT login_view: click -> first frame p95 = " in stdout
    assert len(result["samples_s"]) == 3 and result["cold_s"] > 0
