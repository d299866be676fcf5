"""Smoke test for bench/live_view.py (see test_bench_smoke.py for what these check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


def test_live_view_quick(tmp_path):
    out = tmp_path / "live_view.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "live_view.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "RESULT live_view: frame shown p50 " in proc.stdout
    result = json.loads(out.read_text())
    samples = result["params"]["samples"]
    for run in result["runs"]:  # every change was seen, every move arrived, on both sides
        assert len(run["shown_ms"]) == len(run["cdp_ms"]) == samples
        assert len(run["console_ms"]) == len(run["direct_ms"]) == samples
