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
