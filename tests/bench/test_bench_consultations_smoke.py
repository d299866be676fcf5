"""Smoke test for bench/consultations_create.py (see test_bench_smoke.py for what these check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_consultations_create_quick(tmp_path):
    out = tmp_path / "consultations_create.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "consultations_create.py"), "--quick",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "RESULT consultations_create: p95 " in proc.stdout
    result = json.loads(out.read_text())
    # Every create answered 201 and was stored; every phase ran.
    assert result["errors"] == [] and result["stored"] == result["expected"] > 0
    assert all(result["samples_ms"][kind] for kind in result["samples_ms"])
    assert result["sustained_per_s"] > 0
