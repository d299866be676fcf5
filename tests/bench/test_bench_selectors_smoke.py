"""Smoke tests for bench/selector_suggest.py and bench/selector_overhead.py (see
test_bench_smoke.py for what these check: that each runs end to end and writes its result,
never a timing)."""

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


def test_selector_suggest_quick(tmp_path):
    stdout, result = run_bench("selector_suggest", tmp_path)
    assert "RESULT selector_suggest: 3 pages x 5 fields in " in stdout and " s CPU; median of 1" in stdout
    assert result["right"] == {"_rows": True, "name": True, "price": True}


def test_selector_overhead_quick(tmp_path):
    stdout, result = run_bench("selector_overhead", tmp_path)
    assert "RESULT selector_overhead: CPU per page on/off = " in stdout
    pages = result["params"]["pages"]
    assert [(r["on"], r["items"]) for r in result["runs"]] == [(False, pages), (True, pages)]
    assert [r["fingerprinted"] > 0 for r in result["runs"]] == [False, True]
