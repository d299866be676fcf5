"""Shared fixtures: a real Redis and PostgreSQL per session, isolated state per test.

``hitl_env`` gives each test its own data dir, database (SQLite by default; the
``backend`` parameter switches to PostgreSQL) and a flushed Redis, and exports them as
HITL_* environment variables, which is what crawls and the CLI read.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest
import redis

from tests.support.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "projects" / "sandbox", ROOT / "projects" / "demo"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = PostgresServer().start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            raise  # CI installs PostgreSQL: missing there is a failure, not a skip
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server
    server.stop()


def find_chromium() -> str | None:
    """The system Chromium (Debian's ``chromium`` package), or None."""
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def playwright():
    """One sync Playwright driver for the whole session, with ``.executable`` set.

    Playwright's sync API runs its own event loop in this thread, so a second
    ``sync_playwright()`` while one is alive fails: every browser test shares this one.
    """
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: scripts/bootstrap.sh installs it with apt-get")
        pytest.skip("needs the system Chromium (scripts/bootstrap.sh installs it)")
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    driver.executable = executable  # type: ignore[attr-defined]
    yield driver
    driver.stop()


@pytest.fixture(params=["sqlite"])
def backend(request):
    return request.param


@pytest.fixture
def hitl_env(request, backend, tmp_path, redis_server, monkeypatch):
    """Environment variables for an isolated scrapy-hitl state, exported for subprocesses."""
    redis.Redis.from_url(redis_server.url).flushall()
    data_dir = tmp_path / "hitl"
    if backend == "postgres":
        pg = request.getfixturevalue("postgres_server")
        db_url = pg.create_database("t_" + uuid.uuid4().hex[:12])
    else:
        db_url = f"sqlite:///{data_dir / 'hitl.db'}"
    env = {
        "HITL_DATA_DIR": str(data_dir),
        "HITL_DATABASE_URL": db_url,
        "HITL_REDIS_URL": redis_server.url,
        "HITL_SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def state(hitl_env):
    from scrapy_hitl.config import StateConfig
    from scrapy_hitl.state import HitlState

    st = HitlState.open(StateConfig.from_env())
    yield st
    st.close()
