"""Smoke test for bench/webhook_latency.py (see test_bench_smoke.py for what these check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_webhook_latency_quick(tmp_path):
    out = tmp_path / "webhook_latency.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "webhook_latency.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "RESULT webhook_latency: p50 " in proc.stdout
    result = json.loads(out.read_text())
    summary = result["summary"]
    assert summary["missing"] == 0 and summary["verified"] == summary["received"] > 0
    assert [r["kind"] for r in result["runs"]] == ["webhook", "baseline"]
    assert all(len(r["ms"]) == result["params"]["consultations"] for r in result["runs"])
