"""The repository root is a Scrapy project (the top-level scrapy.cfg): the demo project's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scrapy_list_works_from_the_repository_root():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SCRAPY_SETTINGS_MODULE")}
    done = subprocess.run([sys.executable, "-m", "scrapy", "list"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "sandbox" in done.stdout.split()


def test_the_cli_counts_in_words(cli, state, tmp_path):
    """"1 cookie", "1 parked request": not "1 cookies", not "request(s)"."""
    from scrapy_hitl.state import interventions
    from scrapy_hitl.state.parking import ParkEntry

    found, _ = interventions.open_or_update(state, type="manual_access", reason="http_403", domain="one.test")
    state.parking.park("s", [ParkEntry.build(domain="one.test", fingerprint="f1", request={"url": "http://one.test/"})])
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\none.test\tFALSE\t/\tFALSE\t0\tsid\tx\n")
    code, out = cli("interventions", "resolve", str(found["id"]), "--cookies", str(cookies))
    assert code == 0, out
    assert "with 1 cookie." in out and "1 parked request will resume." in out
