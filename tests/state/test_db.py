"""Tests for scrapy_hitl.state.db: schema creation and checks, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.schema import CreateIndex

from scrapy_hitl.state.crawler_models import OPEN_INTERVENTION_INDEX
from scrapy_hitl.state.db import Database, SchemaError, known_head, normalize_url
from scrapy_hitl.state.models import Base

pytestmark = pytest.mark.postgres

HEAD = known_head()  # the newest migration in state/migrations/versions (files, not Alembic)
QUALITY_TABLES = {"items", "item_versions", "item_events", "item_evidence"}  # 0008
SNAPSHOT_TABLES = {"error_snapshots"}  # 0011
JOB_TABLES = {"projects", "jobs", "job_schedules"}  # 0012
TABLES = {"alembic_version", "runs", "interventions", "intervention_events", "sessions", "domains", "users",
          "domain_samples", "artifacts", "api_keys", "consultations", "consultation_events",
          "webhook_deliveries", "webhook_events"} | QUALITY_TABLES | SNAPSHOT_TABLES | JOB_TABLES
# Tables that migrations after 0012 add: each has its own downgrade test; here they are the
# models' tables not named above, so a new migration does not break the older tests.
LATER_TABLES = set(Base.metadata.tables) - TABLES
TABLES |= LATER_TABLES


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: every test here runs on both databases."""
    return request.param


@pytest.fixture
def db(hitl_env):
    """A Database on the test's own, empty database (no schema yet)."""
    database = Database(hitl_env["HITL_DATABASE_URL"])
    yield database
    database.dispose()


def tables(db):
    with db.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_head_is_the_newest_migration(db):
    assert db.head_revision() == HEAD


def test_known_head_is_alembics_head(db):
    """ensure_schema's fast path reads the head from the migration files, without Alembic:
    it must name the revision Alembic does (a new migration needs no constant updated)."""
    assert known_head() == db.head_revision()


def test_stored_revision_is_one_query_without_alembic(db):
    assert db.stored_revision() is None  # no alembic_version table: the error is not raised
    db.ensure_schema()
    assert db.stored_revision() == db.current_revision() == known_head()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    assert db.stored_revision() == "0001"


def test_ensure_schema_creates_an_empty_database(db):
    assert tables(db) == set()
    assert db.current_revision() is None
    db.ensure_schema()
    assert db.current_revision() == HEAD
    assert tables(db) == TABLES
    db.ensure_schema()  # at head: nothing to do
    assert db.current_revision() == HEAD


def test_migration_matches_the_models(db):
    """What Alembic creates is what the models describe (no autogenerate diff)."""
    db.ensure_schema()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_models_describe_the_partial_index(db):
    """Alembic's comparison ignores an index's WHERE. The open-interventions index is partial
    on both databases, and the models say so for the database a Database opened (its WHERE
    is added per dialect, so a crawl on SQLite does not import the PostgreSQL dialect)."""
    db.ensure_schema()
    dialect = db.engine.dialect
    ddl = str(CreateIndex(OPEN_INTERVENTION_INDEX).compile(dialect=dialect))
    assert ddl.endswith(" WHERE status = 'open'"), ddl
    with db.engine.connect() as conn:
        (reflected,) = [i for i in inspect(conn).get_indexes("interventions") if i["name"] == OPEN_INTERVENTION_INDEX.name]
    assert reflected["unique"]
    assert reflected["dialect_options"][f"{dialect.name}_where"] is not None


def test_empty_database_without_create_is_refused(db):
    with pytest.raises(SchemaError) as excinfo:
        db.ensure_schema(create_if_empty=False)
    assert str(excinfo.value) == (
        f"The database at {db.safe_url} has no scrapy-hitl schema. Run `hitl db upgrade` to create it."
    )
    assert tables(db) == set()


def test_database_of_something_else_is_refused(db):
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO customers (id, name) VALUES (1, 'ann')"))
    with pytest.raises(SchemaError) as excinfo:
        db.ensure_schema()
    assert str(excinfo.value) == (
        f"The database at {db.safe_url} has no scrapy-hitl schema. Run `hitl db upgrade` to create it."
    )
    assert tables(db) == {"customers"}  # never created behind the user's back


def test_upgrade_adds_the_schema_next_to_other_tables(db):
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    assert db.upgrade() == (None, HEAD)
    assert tables(db) == TABLES | {"customers"}
    db.ensure_schema(create_if_empty=False)


def test_unknown_revision_is_refused(db):
    db.ensure_schema()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    assert db.current_revision() == "ffff"
    with pytest.raises(SchemaError) as excinfo:
        db.ensure_schema()
    assert str(excinfo.value) == (
        f"The database at {db.safe_url} is at schema ffff, which this version of scrapy-hitl "
        f"does not know (newest known: {HEAD}). Upgrade scrapy-hitl."
    )


def test_upgrade_is_idempotent_and_keeps_data(db):
    assert db.upgrade() == (None, HEAD)
    with db.session() as s:
        s.execute(text("INSERT INTO domains (domain, attempts, successes, blocked_403, blocked_401, "
                       "captchas, hard_blocks, engine_stats, access_class, requires_session, updated_at) "
                       "VALUES ('a.example', 3, 1, 2, 0, 0, 0, '{}', 'public', 'unknown', CURRENT_TIMESTAMP)"))
    assert db.upgrade() == (HEAD, HEAD)
    assert db.upgrade() == (HEAD, HEAD)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT domain, attempts FROM domains")).all() == [("a.example", 3)]


def test_session_rolls_back_on_error(db):
    db.ensure_schema()
    with pytest.raises(RuntimeError, match="boom"):
        with db.session() as s:
            s.execute(text("INSERT INTO runs (id, spider, status, args, project_dir, host, pid, stats, "
                           "created_at, updated_at) VALUES ('r1', 's', 'running', '{}', '', '', 0, '{}', "
                           "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
            raise RuntimeError("boom")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar() == 0


def test_ping(db):
    db.ping()


def test_sqlite_pragmas(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'hitl.db'}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("postgresql://u@h/db", "postgresql+psycopg://u@h/db", id="postgresql"),
        pytest.param("postgres://u@h/db", "postgresql+psycopg://u@h/db", id="postgres-alias"),
        pytest.param("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db", id="explicit-driver"),
        pytest.param("sqlite:////tmp/x.db", "sqlite:////tmp/x.db", id="sqlite"),
    ],
)
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected


def test_safe_url_masks_the_password():
    db = Database("postgresql://hitl:hunter2@db.internal:5432/hitl")
    try:
        assert db.safe_url == "postgresql+psycopg://hitl:***@db.internal:5432/hitl"
    finally:
        db.dispose()


def test_sqlite_creates_the_parent_directory(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'deep' / 'er' / 'hitl.db'}")
    try:
        db.ensure_schema()
        assert (tmp_path / "deep" / "er" / "hitl.db").exists()
    finally:
        db.dispose()


def test_an_older_schema_is_refused_until_hitl_db_upgrade(db):
    assert db.upgrade("0001") == (None, "0001")
    with pytest.raises(SchemaError) as excinfo:
        db.ensure_schema()
    assert str(excinfo.value).endswith(
        f"is at an older schema (0001; this version needs {HEAD}). Run `hitl db upgrade`."
    )
    assert db.upgrade() == ("0001", HEAD)
    db.ensure_schema()


def test_0004_adds_domain_tiers_to_existing_rows_and_downgrades(db):
    """Existing domains get tiers {}; the downgrade drops the column and keeps the samples
    (on SQLite, copying the table would cascade-delete them)."""
    from alembic import command

    def downgrade(revision):
        cfg = db._alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def columns():
        with db.engine.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns("domains")}

    db.upgrade("0003")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO domains (domain, attempts, successes, blocked_403, blocked_401, "
                          "captchas, hard_blocks, engine_stats, access_class, requires_session, updated_at) "
                          "VALUES ('a.example', 3, 1, 2, 0, 0, 0, '{}', 'public', 'unknown', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO domain_samples (domain, at, attempts, successes, blocked_403, "
                          "blocked_401, captchas, hard_blocks) "
                          "VALUES ('a.example', CURRENT_TIMESTAMP, 3, 1, 2, 0, 0, 0)"))
    assert db.upgrade("0004") == ("0003", "0004")
    from scrapy_hitl.state import domains

    assert domains.get(db, "a.example")["tiers"] == {"patterns": {}, "floor": None}
    downgrade("0003")
    assert db.current_revision() == "0003"
    assert "tiers" not in columns()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT domain, attempts FROM domains")).all() == [("a.example", 3)]
        assert conn.execute(text("SELECT count(*) FROM domain_samples")).scalar() == 1
    assert db.upgrade("0004") == ("0003", "0004")
    assert "tiers" in columns()


def test_0006_consultations_downgrade_and_upgrade_again(db):
    """0006 adds the consultations tables and its downgrade removes exactly them."""
    from alembic import command

    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (name, prefix, key_hash, webhook_secret, created_by, created_at) "
                          "VALUES ('bot', 'hitl_live_abc', 'h', :s, 'cli', CURRENT_TIMESTAMP)"), {"s": b"x"})
    cfg = db._alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    assert db.current_revision() == "0005"
    assert tables(db) == TABLES - {"api_keys", "consultations", "consultation_events", "webhook_deliveries",
                                   "webhook_events"} - QUALITY_TABLES - SNAPSHOT_TABLES - JOB_TABLES - LATER_TABLES
    assert db.upgrade() == ("0005", HEAD)
    assert tables(db) == TABLES


def test_0007_webhook_events_downgrade_and_upgrade_again(db):
    """0007 adds the webhook outbox and its downgrade removes exactly it (whatever comes after)."""
    from alembic import command

    db.upgrade()
    cfg = db._alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    assert db.current_revision() == "0006"
    at_0006 = tables(db)
    assert "webhook_events" not in at_0006 and "webhook_deliveries" in at_0006
    assert db.upgrade("0007") == ("0006", "0007")
    assert tables(db) == at_0006 | {"webhook_events"}


def test_0008_quality_downgrade_and_upgrade_again(db):
    """0008 adds the quality gate's tables and its downgrade removes exactly them."""
    from alembic import command

    db.upgrade()
    cfg = db._alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    assert tables(db) == TABLES - QUALITY_TABLES - SNAPSHOT_TABLES - JOB_TABLES - LATER_TABLES
    assert db.upgrade() == ("0007", HEAD)
    assert tables(db) == TABLES


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing-0644"])
def test_sqlite_files_are_private(tmp_path, existing):
    """The database holds the session vault and the users: 0600 files (the WAL and shared
    memory too) in a 0700 directory, also for a database an older version left 0644."""
    import contextlib
    import sqlite3
    import stat

    data_dir = tmp_path / "hitl"
    path = data_dir / "hitl.db"
    if existing:
        data_dir.mkdir()
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("CREATE TABLE t (x)")
            conn.commit()
        path.chmod(0o644)
    db = Database(f"sqlite:///{path}")
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data_dir.iterdir()}
        assert modes == {"hitl.db": 0o600, "hitl.db-wal": 0o600, "hitl.db-shm": 0o600}
        if not existing:  # a directory the user made is theirs
            assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    finally:
        db.dispose()


def test_0011_error_snapshots_downgrade_and_upgrade_again(db):
    """0011 adds the error snapshots' table and its downgrade removes exactly it."""
    from alembic import command

    db.upgrade()
    cfg = db._alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
    assert tables(db) == TABLES - SNAPSHOT_TABLES - JOB_TABLES - LATER_TABLES
    assert db.upgrade() == ("0010", HEAD)
    assert tables(db) == TABLES


def test_0012_jobs_downgrade_and_upgrade_again(db):
    """0012 adds the projects, jobs and schedules tables; its downgrade removes exactly them."""
    from alembic import command

    db.upgrade()
    cfg = db._alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011")
    assert tables(db) == TABLES - JOB_TABLES - LATER_TABLES
    assert db.upgrade() == ("0011", HEAD)
    assert tables(db) == TABLES


def test_0010_gives_existing_users_token_version_0_and_downgrades(db):
    """Existing accounts get token_version 0; the downgrade drops the column, keeps them."""
    from alembic import command

    def user_columns():
        with db.engine.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns("users")}

    db.upgrade("0009")
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO users (email, password_hash, role, active, created_at) "
                          "VALUES ('a@example.com', 'x', 'admin', TRUE, CURRENT_TIMESTAMP)"))
    assert db.upgrade("0010") == ("0009", "0010")
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT token_version FROM users")).scalar_one() == 0
    cfg = db._alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
    assert "token_version" not in user_columns()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT email FROM users")).scalar_one() == "a@example.com"


NOTIFY_TABLES = {"notify_channels", "notify_rules", "notifications", "notification_attempts", "notify_escalations"}


def test_0014_notifications_downgrade_and_upgrade_again(db):
    """0014 adds the notification tables and the owner columns of interventions and
    consultations; its downgrade removes exactly them and keeps the rows."""
    from alembic import command

    db.upgrade()
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO interventions (type, reason, domain, spider, status, priority, parked_count,"
                          " url, response_headers, evidence, note, resolution, created_at, updated_at, owner)"
                          " VALUES ('manual_access', 'http_403', 'a.test', '', 'open', 0, 0, '', '{}', '{}', '',"
                          " '{}', '2026-01-01', '2026-01-01', 'ann@example.com')"))
    cfg = db._alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    assert tables(db) & NOTIFY_TABLES == set()
    with db.engine.connect() as conn:
        for table in ("interventions", "consultations"):
            assert not {"owner", "owned_at"} & {c["name"] for c in inspect(conn).get_columns(table)}
        assert conn.execute(text("SELECT domain FROM interventions")).scalars().all() == ["a.test"]
    assert db.upgrade() == ("0013", HEAD)
    assert NOTIFY_TABLES <= tables(db)
