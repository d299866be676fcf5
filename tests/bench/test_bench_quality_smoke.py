"""Smoke tests for bench/quality_overhead.py and bench/export.py (see test_bench_smoke.py for what
these check: that each runs end to end and writes its result, never a timing)."""

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


def test_quality_overhead_quick(tmp_path):
    stdout, result = run_bench("quality_overhead", tmp_path)
    assert "RESULT quality_overhead: throughput ratio gate on/off = " in stdout
    pages = result["params"]["pages"]
    assert all(r["items"] == pages and not r["log_errors"] for r in result["runs"])
    assert [r["items_stored"] for r in result["runs"] if r["gate"]] == [pages]  # every item stored


def test_export_quick(tmp_path):
    stdout, result = run_bench("export", tmp_path)
    assert "RESULT export: 3,000 items: csv " in stdout
    assert {r["format"] for r in result["runs"]} == {"read", "csv", "xlsx"}
    assert all(r["stdout"] == "3000" for r in result["runs"] if r["format"] == "read")
    assert all("Exported 3000 items" in r["stderr"] for r in result["runs"] if r["format"] != "read")
