"""Shared fixtures: a real Redis and PostgreSQL per session, isolated state per test.

``hitl_env`` gives each test its own data dir, database (SQLite by default; the
``backend`` parameter switches to PostgreSQL) and a flushed Redis, and exports them as
HITL_* environment variables, which is what crawls and the CLI read.

The suite runs on pytest-xdist workers (setup.cfg's addopts). Each worker is its own
process with its own session fixtures: its own redis-server, PostgreSQL cluster, sandbox
sites and Playwright driver, on ports the OS picks, in temp dirs of its own. Nothing is
shared between workers but the machine. ``-n 0`` (or ``-p no:xdist``) runs in one process.
"""

from __future__ import annotations

import contextlib
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


def pytest_addoption(parser, pluginmanager):
    """Under ``-p no:xdist`` accept (and ignore) the xdist options of setup.cfg's addopts."""
    if not pluginmanager.has_plugin("xdist"):
        group = parser.getgroup("xdist", "xdist is disabled (-p no:xdist): these are ignored")
        group.addoption("--numprocesses", action="store", default=None)
        group.addoption("--dist", action="store", default="no")


def _uses_postgres(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return "postgres_server" in item.fixturenames or (
        callspec is not None and "postgres" in callspec.params.values())


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which turns the marks into groups
def pytest_collection_modifyitems(config, items):
    """The benchmarks' smoke runs are ``slow`` (``make test-slow``; ``make test`` and CI
    keep under 10 minutes without them). Under ``--dist loadgroup``, keep the PostgreSQL
    tests on one worker: each worker that runs one starts its own cluster (initdb), which
    costs seconds of CPU."""
    for item in items:
        if item.path.parent.name == "bench":
            item.add_marker(pytest.mark.slow)
    if not config.pluginmanager.has_plugin("xdist"):
        return
    for item in items:
        if _uses_postgres(item):
            item.add_marker(pytest.mark.xdist_group("postgres"))


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
        # A test that asks for the schema gets the database as a copy of the migrated
        # template at once (hitl_schema then finds it made): one CREATE, not a CREATE, a
        # DROP and a second CREATE.
        template = (request.getfixturevalue("postgres_schema_template")
                    if "hitl_schema" in request.fixturenames else None)
        db_url = pg.create_database("t_" + uuid.uuid4().hex[:12], template=template)
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


@pytest.fixture(scope="session")
def sqlite_schema_template(tmp_path_factory):
    """An SQLite database at the schema's head, migrated once per session (per worker)."""
    from scrapy_hitl.state.db import Database

    path = tmp_path_factory.mktemp("schema-template") / "hitl.db"
    db = Database(f"sqlite:///{path}")
    db.ensure_schema()
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema_template(postgres_server):
    """A PostgreSQL database at the schema's head, migrated once per session (per worker),
    for CREATE DATABASE ... TEMPLATE. Nothing stays connected to it, as a template needs."""
    from scrapy_hitl.state.db import Database

    name = "hitl_schema_template"
    db = Database(postgres_server.create_database(name))
    db.ensure_schema()
    db.dispose()
    return name


@pytest.fixture
def hitl_schema(hitl_env, backend, request):
    """The test's database, at the schema's head before anything opens it.

    A database that is new (an SQLite file that does not exist yet, a PostgreSQL database
    with no table) becomes a copy of a template migrated once per session: the schema
    ``ensure_schema`` would create, without running every migration again for each test
    (tests/state/test_db.py tests the migrations themselves). A database the test already
    made is left as it is. On PostgreSQL the copy takes 0.06 s, the migrations 0.7 s.
    """
    url = hitl_env["HITL_DATABASE_URL"]
    if backend == "postgres":
        import psycopg

        pg = request.getfixturevalue("postgres_server")
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(url) as conn:
            empty = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
        if empty:
            pg.create_database(name, template=request.getfixturevalue("postgres_schema_template"))
        return hitl_env
    if backend == "sqlite" and url.startswith("sqlite:///"):
        target = Path(url.removeprefix("sqlite:///"))
        if not target.exists():
            import sqlite3

            target.parent.mkdir(parents=True, exist_ok=True)
            template = request.getfixturevalue("sqlite_schema_template")
            with contextlib.closing(sqlite3.connect(template)) as src, \
                    contextlib.closing(sqlite3.connect(target)) as dst:
                src.backup(dst)
    return hitl_env


@pytest.fixture
def state(hitl_env, hitl_schema):
    from scrapy_hitl.config import StateConfig
    from scrapy_hitl.state import HitlState

    st = HitlState.open(StateConfig.from_env())
    yield st
    st.close()


@pytest.fixture
def run_id(state):
    """A run of the spider "shop" in ``state``'s database: items and their exports need one."""
    from scrapy_hitl.state import runs

    rid = runs.new_run_id()
    runs.create_run(state.db, rid, "shop", {}, "/tmp")
    return rid
