"""Smoke test for bench/notify.py (see test_bench_smoke.py for what these check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_notify_quick(tmp_path):
    out = tmp_path / "notify.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "notify.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "RESULT notify: email p50 " in proc.stdout
    result = json.loads(out.read_text())
    summary = result["summary"]
    assert summary["missing"] == 0 and summary["screenshots_inline"] == summary["emails"] > 0
    assert [r["kind"] for r in result["runs"]] == ["worker", "baseline"]
    assert all(len(r["mail_ms"]) == len(r["json_ms"]) == result["params"]["blocks"] for r in result["runs"])
