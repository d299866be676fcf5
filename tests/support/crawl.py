"""Run the demo project's spiders as real ``scrapy crawl`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO_PROJECT = ROOT / "projects" / "demo"


@dataclass
class CrawlResult:
    returncode: int
    items: list[dict[str, Any]]
    stats: dict[str, Any]
    log: str
    extra: dict[str, Any] = field(default_factory=dict)

    def items_in(self, section: str) -> list[dict[str, Any]]:
        return [i for i in self.items if i.get("section") == section]


class Crawl:
    """One ``scrapy crawl`` subprocess, with its items (JSON lines) and final stats."""

    def __init__(self, workdir: Path, env: dict[str, str], spider: str = "sandbox",
                 args: dict[str, str] | None = None, settings: dict[str, Any] | None = None,
                 name: str = "crawl") -> None:
        self.workdir = workdir
        self.items_path = workdir / f"{name}-items.jsonl"
        self.stats_path = workdir / f"{name}-stats.json"
        self.log_path = workdir / f"{name}.log"
        cmd = [sys.executable, "-m", "scrapy", "crawl", spider,
               "-o", f"{self.items_path}:jsonlines", "-s", f"TEST_STATS_FILE={self.stats_path}",
               "-s", "LOG_FILE=" + str(self.log_path)]
        settings = {"EXTENSIONS": {"tests.support.statsdump.StatsDump": 900,
                                   "tests.support.heartbeat.EngineHeartbeat": 0},
                    # An idle spider is asked again every 0.1 s, not Scrapy's 5 s
                    # (tests/support/heartbeat.py); 0 keeps Scrapy's own heartbeat.
                    "TEST_ENGINE_HEARTBEAT": 0.1,
                    **(settings or {})}
        for k, v in settings.items():
            # Scrapy parses dict settings from JSON and list settings from commas.
            if isinstance(v, dict):
                v = json.dumps(v)
            elif isinstance(v, list):
                v = ",".join(v)
            cmd += ["-s", f"{k}={v}"]
        for k, v in (args or {}).items():
            cmd += ["-a", f"{k}={v}"]
        full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(DEMO_PROJECT)])}
        self.proc = subprocess.Popen(cmd, cwd=DEMO_PROJECT, env=full_env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_for_log(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"crawl exited ({self.proc.returncode}) before logging {needle!r}:\n"
                                     f"{self.log()[-4000:]}\n{self.proc.stderr.read().decode()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not logged within {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, timeout: float = 10) -> None:
        """End the crawl if it still runs (SIGTERM, Scrapy's graceful stop, then SIGKILL): a
        test that failed half-way must not leave its crawl running beside the next tests."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def wait(self, timeout: float = 120) -> CrawlResult:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"crawl did not finish in {timeout}s:\n{self.log()[-4000:]}") from None
        items = []
        if self.items_path.exists():
            items = [json.loads(line) for line in self.items_path.read_text().splitlines() if line]
        stats = json.loads(self.stats_path.read_text()) if self.stats_path.exists() else {}
        return CrawlResult(self.proc.returncode, items, stats, self.log() + err.decode())
