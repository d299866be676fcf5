"""Smoke test for bench/escalation.py (see test_bench_smoke.py for what these check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.browser
def test_escalation_quick(tmp_path):
    out = tmp_path / "escalation.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "escalation.py"), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "RESULT escalation: rendered/js-only " in proc.stdout
    result = json.loads(out.read_text())
    mixed = result["mixed"]
    # Both sides collected every item; the ladder rendered at least every JS-only page.
    assert all(r["items"] == mixed["items"] for r in mixed["runs"])
    assert all(r["browser_rendered"] >= mixed["js_pages"] for r in mixed["runs"])
    assert result["js_domain"]["learned"]["items"] == result["js_domain"]["learn"]["items"] > 0
    assert result["memory"]["peak_pss_mb"] > 0 and result["memory"]["browser_rendered"] >= 11
