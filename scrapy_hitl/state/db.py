"""The SQL database: engine, sessions, and schema checks (Alembic).

SQLite (the default, a file in HITL_DATA_DIR) and PostgreSQL (HITL_DATABASE_URL) behave the
same. Every caller opens a short session (ORM) or transaction (Core, ``begin``) per unit of
work, so the crawler can run these functions in Twisted's thread pool. What a static crawl
does goes through ``begin`` with the Core tables (``tables``): the ORM is imported by the
first ``session``, which such a crawl never opens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError

from scrapy_hitl.config import make_private_dir
from scrapy_hitl.state.tables import add_dialect_options

if TYPE_CHECKING:
    from collections.abc import Iterator

    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session, sessionmaker

# Alembic is imported where it is used: it costs a crawl 0.4 s of start-up otherwise.

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*['"]?([^'"\s]+)""", re.MULTILINE)


def known_head() -> str | None:
    """The newest migration's revision id, read from the files in migrations/versions without
    importing Alembic (which costs a crawl ~0.2 s of start-up just to compare two strings).
    None if the files do not name exactly one head; then Alembic decides (``ensure_schema``).
    tests/state/test_db.py checks it against Alembic's own answer."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("[0-9]*.py"):
        fields = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if "revision" in fields:
            revisions.add(fields["revision"])
            parents.add(fields.get("down_revision", ""))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    """A schema *check* is not news; only an actual upgrade should log."""
    log = logging.getLogger("alembic.runtime.migration")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


class SchemaError(RuntimeError):
    """Raised when the database schema is older (or newer) than this code; says what to run."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (psycopg2 is not a dependency)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the console read while a crawler writes; busy_timeout waits out short locks.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: still crash-safe for the
    # process (kill -9 loses nothing committed); a power loss may drop the last commits, the
    # durability of the embedded Redis (appendfsync everysec). FULL costs an fsync per
    # commit, ~10 ms on a busy disk, and SQLite commits one at a time.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file 0600 in a 0700 directory before SQLite would (0644): it holds
    the session vault and the users. SQLite gives its -wal, -shm and -journal files the
    database file's mode; files an older version left 0644 are tightened."""
    make_private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # empty = new db
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):  # absent, or not ours to change
            file = path.with_name(path.name + suffix)
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


class Database:
    """An engine, a session factory and the schema helpers for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        if self.url.startswith("sqlite"):
            path = self.url.split("///", 1)[-1]
            if "///" in self.url and path and not path.startswith((":memory:", "file:")):
                _private_sqlite_file(Path(path))
            self.engine: Engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5)
        add_dialect_options(self.engine.dialect.name)  # the models' partial index, for this database
        self._sessions: sessionmaker[Session] | None = None

    @contextlib.contextmanager
    def session(self, *, locked: bool = False) -> Iterator[Session]:
        """An ORM session that commits on success and rolls back on error.

        ``locked`` is for a read-modify-write (``with_for_update``): on SQLite, which ignores
        FOR UPDATE and reads outside a transaction until the first write, the session takes
        the database's write lock first (``BEGIN IMMEDIATE``, waiting out busy_timeout), so
        two processes adding to one counter cannot both read the old value."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            import scrapy_hitl.state.crawler_models  # noqa: F401  (maps the crawler's classes)

            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self._sessions() as session, session.begin():
            if locked and self.engine.dialect.name == "sqlite":
                session.execute(text("BEGIN IMMEDIATE"))
            yield session

    @contextlib.contextmanager
    def begin(self, *, locked: bool = False) -> Iterator[Connection]:
        """A Core connection in a transaction that commits on success and rolls back on error:
        ``session`` without the ORM, for the Core statements of what every crawl does.
        ``locked`` as for ``session``."""
        with self.engine.begin() as conn:
            if locked and self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    # --- schema --------------------------------------------------------------------------
    def _alembic_config(self) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg

    def head_revision(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn, _quiet_alembic():
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self, revision: str = "head") -> tuple[str | None, str | None]:
        """Create or upgrade the schema (to head by default); returns (before, after)."""
        before = self.current_revision()
        if before == (self.head_revision() if revision == "head" else revision):
            return before, before
        from alembic import command

        cfg = self._alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return before, self.current_revision()

    def stored_revision(self) -> str | None:
        """The revision in ``alembic_version``, in one query and without Alembic; None when the
        table is missing, empty or holds several heads (Alembic tells those apart)."""
        try:
            with self.engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except DBAPIError:  # no such table
            return None
        return rows[0][0] if len(rows) == 1 else None

    def ensure_schema(self, *, create_if_empty: bool = True) -> None:
        """Check the schema is at head; create it in an empty database.

        The usual case (at head) is one query and no Alembic import; anything else goes
        through Alembic. An existing database at an older schema is never migrated behind the
        user's back: they are told to run ``hitl db upgrade``.
        """
        head = known_head()
        if head is not None and self.stored_revision() == head:
            return
        current, head = self.current_revision(), self.head_revision()
        if current == head:
            return
        if current is None and create_if_empty:
            with self.engine.connect() as conn:
                tables = inspect(conn).get_table_names()
            if not tables:
                self.upgrade()
                return
        if current is None:
            raise SchemaError(
                f"The database at {self.safe_url} has no scrapy-hitl schema. "
                "Run `hitl db upgrade` to create it."
            )
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(self._alembic_config())
        known = {rev.revision for rev in scripts.walk_revisions()}
        if current not in known:
            raise SchemaError(
                f"The database at {self.safe_url} is at schema {current}, which this version "
                f"of scrapy-hitl does not know (newest known: {head}). Upgrade scrapy-hitl."
            )
        raise SchemaError(
            f"The database at {self.safe_url} is at an older schema ({current}; this "
            f"version needs {head}). Run `hitl db upgrade`."
        )

    @property
    def safe_url(self) -> str:
        """The URL with any password masked, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()
