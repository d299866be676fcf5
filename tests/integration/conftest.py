"""Fixtures for real crawls: the sandbox site and a crawl launcher bound to hitl_env."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.crawl import Crawl


@pytest.fixture(scope="session")
def sandbox():
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=6, drift_after=2)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slow_sandbox():
    """The sandbox with a remote site's 300 ms round trip: many requests are in flight at once."""
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=12, latency_ms=300)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fresh_sandbox(sandbox):
    sandbox.reset()
    return sandbox


@pytest.fixture
def crawl(hitl_env, fresh_sandbox, tmp_path):
    """crawl(args=..., settings=..., spider=...) starts a real `scrapy crawl` subprocess; any
    still running when the test ends (it failed, or did not wait) is stopped."""
    counter = iter(range(100))
    started: list[Crawl] = []

    def start(spider: str = "sandbox", args: dict | None = None, settings: dict | None = None,
              site=None) -> Crawl:
        base_settings = {
            "HITL_PAUSE_TIMEOUT": 60,
            "SPIDER_MODULES": ["demo.spiders", "tests.support.spiders"],
            "LOG_LEVEL": "INFO",
            "HITL_STATS_FLUSH_INTERVAL": 0.5,
            "HITL_PARK_FLUSH_INTERVAL": 0.02,
            # Scrapy re-checks an idle spider every 5 s: waiting for a human, and closing
            # after HITL_PAUSE_TIMEOUT, would take that long (tests/support/heartbeat.py).
            "TEST_ENGINE_HEARTBEAT": 0.1,
            # No person's pause between stealth page loads (1-3 s each): no sandbox here
            # watches the pace (tests/unit/test_stealth_pacing.py checks it).
            "HITL_STEALTH_DELAY": "0,0",
        }
        started.append(Crawl(tmp_path, hitl_env, spider=spider,
                             args={"base": (site or fresh_sandbox).url, **(args or {})},
                             settings={**base_settings, **(settings or {})}, name=f"crawl{next(counter)}"))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def cli(hitl_env):
    """Invoke the real `hitl` CLI in-process; returns (exit_code, output)."""
    from hitl_console.cli import main

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    def run_json(*args: str):
        code, out = run(*args, "--json")
        assert code == 0, out
        return json.loads(out)

    run.json = run_json  # type: ignore[attr-defined]
    return run


def wait_for(predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cookie_file(tmp_path):
    """Write cookies for a domain in one of the four formats the vault accepts."""

    def write(fmt: str, domain: str, name: str, value: str) -> Path:
        path = tmp_path / f"cookies-{fmt}"
        if fmt == "netscape":
            path.write_text(f"# Netscape HTTP Cookie File\n{domain}\tFALSE\t/\tFALSE\t0\t{name}\t{value}\n")
        elif fmt == "cookie-editor-json":
            path.write_text(json.dumps([{"domain": domain, "hostOnly": True, "httpOnly": False,
                                         "name": name, "path": "/", "sameSite": "lax", "secure": False,
                                         "session": True, "storeId": "0", "value": value, "id": 1}]))
        elif fmt == "playwright-storage-state":
            path.write_text(json.dumps({"cookies": [{"name": name, "value": value, "domain": domain,
                                                     "path": "/", "expires": -1, "httpOnly": False,
                                                     "secure": False, "sameSite": "Lax"}],
                                        "origins": []}))
        elif fmt == "cookie-header":
            path.write_text(f"Cookie: {name}={value}\n")
        else:
            raise ValueError(fmt)
        return path

    return write


@pytest.fixture
def own_redis(hitl_env, monkeypatch):
    """A redis-server (AOF on) of this test alone, in place of the session's: a test may stop
    it, or read every byte it wrote, without touching other tests."""
    from tests.support.servers import RedisServer

    server = RedisServer().start()
    hitl_env["HITL_REDIS_URL"] = server.url  # the crawl fixture's environment
    monkeypatch.setenv("HITL_REDIS_URL", server.url)  # the CLI's, and StateConfig.from_env()'s
    yield server
    server.stop()


@pytest.fixture
def own_state(own_redis, hitl_schema):
    """``state``, on ``own_redis``."""
    from scrapy_hitl.config import StateConfig
    from scrapy_hitl.state import HitlState

    st = HitlState.open(StateConfig.from_env())
    yield st
    st.close()
