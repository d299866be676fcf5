"""Tests for scrapy_hitl.state.vault: encrypted sessions in the real database."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from sqlalchemy import inspect, text

from scrapy_hitl.cookies import Cookie
from scrapy_hitl.state import interventions
from scrapy_hitl.state.crypto import fernet_for
from scrapy_hitl.state.vault import VaultKeyError, SessionVault, normalize_domain, parent_domains

SECRET = "s3cr3t-cookie-value-123"
UA_SECRET = "Mozilla/5.0 ua-marker-7781"
PROXY_SECRET = "http://user:pr0xy-pa55@proxy.example.net:8080"
FAR = 4102444800.0  # 2100-01-01
SOON = 4070908800.0  # 2099-01-01


def shop_cookies():
    return [
        Cookie("sid", SECRET, "shop.example.com", "/", FAR, secure=True, http_only=True),
        Cookie("cf_clearance", "clearance-456", ".example.com", "/", SOON),
        Cookie("tracker", "evil-789", ".evil.test", "/"),
        Cookie("other", "other-000", "blog.example.com", "/"),
    ]


@pytest.fixture
def vault(state):
    return state.vault


def test_put_get_roundtrip_keeps_only_the_domains_cookies(vault):
    info = vault.put("https://Shop.Example.com:8443/cart", shop_cookies(), user_agent=UA_SECRET,
                     proxy=PROXY_SECRET, source_format="cookie-editor-json", captured_by="ann")
    assert info["domain"] == "shop.example.com"
    assert info["cookie_names"] == ["cf_clearance", "sid"]
    assert info["health"] == "unknown"
    assert info["source_format"] == "cookie-editor-json"
    assert info["captured_by"] == "ann"
    assert info["last_validated"] is None
    session = vault.get("shop.example.com")
    assert session.domain == "shop.example.com"
    assert session.cookies == tuple(shop_cookies()[:2])
    assert session.user_agent == UA_SECRET
    assert session.proxy == PROXY_SECRET
    assert session.usable
    assert session.scrapy_cookies() == [
        {"name": "sid", "value": SECRET, "domain": "shop.example.com", "path": "/", "secure": True},
        {"name": "cf_clearance", "value": "clearance-456", "domain": ".example.com", "path": "/", "secure": False},
    ]
    # lookups normalise the domain too
    assert vault.get("SHOP.example.com:443").cookies == session.cookies
    assert vault.get("blog.example.com") is None


def test_domainless_cookies_are_kept(vault):
    info = vault.put("a.example", [Cookie("k", "v"), Cookie("x", "y", "b.example")])
    assert info["cookie_names"] == ["k"]
    assert vault.get("a.example").cookies == (Cookie("k", "v"),)


def test_put_replaces_the_previous_session(vault):
    vault.put("a.example", [Cookie("old", "1", "a.example")])
    vault.mark("a.example", "invalid", "403 with session")
    info = vault.put("a.example", [Cookie("new", "2", "a.example")])
    assert info["cookie_names"] == ["new"]
    assert (info["health"], info["health_reason"]) == ("unknown", "")
    assert vault.get("a.example").cookies == (Cookie("new", "2", "a.example"),)
    assert [s["domain"] for s in vault.list()] == ["a.example"]



@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_a_session_stored_meanwhile_is_replaced_not_an_error(state, backend):
    """Two captures of one session at once (two reviewers, a resolve and the CLI): the one
    that looked before the other's INSERT was committed replaces it instead of failing."""
    import threading
    import time

    from sqlalchemy import insert, text

    from scrapy_hitl.state import tables

    errors = []

    def capture():
        try:
            state.vault.put("a.example", [Cookie("new", "2", "a.example")])
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=capture)
    with state.db.begin() as conn:  # the other capture, not committed yet
        conn.execute(insert(tables.sessions).values(domain="a.example", name="default", secret=b"x"))
        thread.start()
        if backend == "postgres":  # until our INSERT waits for this one's
            # AUTOCOMMIT: pg_stat_activity is read once per transaction, each look needs its own
            with state.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
                for _ in range(3000):
                    if watch.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                         "AND datname = current_database()")):
                        break
                    time.sleep(0.01)
                else:  # the race this test is about did not happen: passing would say nothing
                    raise AssertionError("the other capture never waited for this one's lock within 30 s")
    thread.join(timeout=60)
    assert errors == []
    assert state.vault.get("a.example").cookies == (Cookie("new", "2", "a.example"),)

def test_upload_with_no_cookie_for_the_domain_is_refused(vault):
    cookies = [Cookie("a", "1", ".evil.test"), Cookie("b", "2", "blog.example.com"), Cookie("c", "3", ".evil.test")]
    with pytest.raises(ValueError) as excinfo:
        vault.put("shop.example.com", cookies)
    assert str(excinfo.value) == (
        "None of the 3 cookies is for shop.example.com (they are for: .evil.test, "
        "blog.example.com). Export the cookies while on shop.example.com."
    )
    assert vault.get("shop.example.com") is None
    assert vault.list() == []


def test_expiry_is_the_earliest_cookie_expiry(vault):
    info = vault.put("shop.example.com", shop_cookies())
    assert info["expires_at"] == "2099-01-01T00:00:00+00:00"
    assert vault.get("shop.example.com").expires_at == datetime(2099, 1, 1, tzinfo=timezone.utc)


def test_session_cookies_only_never_expire(vault):
    info = vault.put("a.example", [Cookie("k", "v", "a.example")])
    assert info["expires_at"] is None
    assert vault.get("a.example").expires_at is None
    assert vault.get("a.example").usable


def test_load_usable_skips_invalid_and_expired(vault):
    vault.put("fresh.example", [Cookie("k", "v", "fresh.example", expires=FAR)])
    vault.put("valid.example", [Cookie("k", "v", "valid.example")])
    vault.put("expired.example", [Cookie("k", "v", "expired.example", expires=time.time() - 60)])
    vault.put("invalid.example", [Cookie("k", "v", "invalid.example", expires=FAR)])
    vault.put("marked-expired.example", [Cookie("k", "v", "marked-expired.example")])
    assert vault.mark("valid.example", "valid") is True
    assert vault.mark("invalid.example", "invalid", "login page with session") is True
    assert vault.mark("marked-expired.example", "expired") is True
    usable = vault.load_usable()
    assert sorted(usable) == ["fresh.example", "valid.example"]
    assert [s.health for s in usable["valid.example"]] == ["valid"]
    by_domain = {s["domain"]: s for s in vault.list()}
    assert by_domain["expired.example"]["health"] == "expired"  # computed from expires_at
    assert by_domain["invalid.example"]["health"] == "invalid"
    assert by_domain["invalid.example"]["health_reason"] == "login page with session"


def test_mark_valid_then_invalid(vault):
    vault.put("a.example", [Cookie("k", "v", "a.example")])
    before = datetime.now(timezone.utc)
    vault.mark("a.example", "valid")
    (info,) = vault.list()
    assert info["health"] == "valid"
    assert datetime.fromisoformat(info["last_validated"]) >= before.replace(microsecond=0)
    assert vault.get("a.example").usable
    vault.mark("a.example", "invalid", "403")
    assert not vault.get("a.example").usable
    assert vault.load_usable() == {}
    assert vault.mark("unknown.example", "valid") is False


def test_delete(vault):
    vault.put("a.example", [Cookie("k", "v", "a.example")])
    assert vault.delete("A.example") is True
    assert vault.get("a.example") is None
    assert vault.delete("a.example") is False


def test_list_never_contains_values(vault):
    vault.put("shop.example.com", shop_cookies(), user_agent=UA_SECRET, proxy=PROXY_SECRET)
    vault.put("a.example", [Cookie("k", "value-a-42", "a.example")])
    listed = vault.list()
    assert [s["domain"] for s in listed] == ["a.example", "shop.example.com"]
    assert set(listed[0]) == {"domain", "name", "health", "health_reason", "cookie_names", "origins",
                              "source_format", "captured_at", "age_seconds", "last_validated", "expires_at",
                              "captured_by", "uses", "errors", "error_score", "last_used", "retired_at"}
    dumped = repr(listed)
    for secret in (SECRET, "clearance-456", "value-a-42", UA_SECRET, "pr0xy-pa55"):
        assert secret not in dumped


def _all_rows(db):
    """Every column of every row of every table, read with raw SQL."""
    rows = []
    with db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                rows.append((table, tuple(row)))
    return rows


def _as_bytes(value):
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, bytes):
        return value
    return str(value).encode()


SECRETS = (SECRET, "clearance-456", UA_SECRET, "pr0xy-pa55")


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_no_secret_in_a_dump_of_the_database_or_redis(request, state, hitl_env, backend):
    """Capture a session the way a human does (resolve with cookies), then look everywhere."""
    data, _ = interventions.open_or_update(state, type="manual_access", reason="forbidden",
                                           domain="shop.example.com", spider="shop")
    interventions.resolve(state, data["id"], cookies=shop_cookies(), user_agent=UA_SECRET,
                          proxy=PROXY_SECRET, source_format="cookie-editor-json", actor="ann")

    # 1. the sessions table, column by column
    with state.db.engine.connect() as conn:
        session_rows = list(conn.execute(text("SELECT * FROM sessions")))
    assert len(session_rows) == 1
    row = session_rows[0]._mapping
    assert set(row) >= {"domain", "secret", "cookie_names"}
    for column, value in row.items():
        for secret in SECRETS:
            assert secret.encode() not in _as_bytes(value), (column, secret)

    # 2. every other table too (intervention history and resolution carry names only)
    rows = _all_rows(state.db)
    assert {t for t, _ in rows} >= {"sessions", "interventions", "intervention_events", "alembic_version"}
    for table, values in rows:
        for value in values:
            for secret in SECRETS:
                assert secret.encode() not in _as_bytes(value), (table, secret)

    # 3. the database's own dump (and for SQLite, the raw files, WAL included)
    if backend == "sqlite":
        db_path = Path(hitl_env["HITL_DATABASE_URL"].removeprefix("sqlite:///"))
        conn = sqlite3.connect(db_path)
        try:
            dump = "\n".join(conn.iterdump())
        finally:
            conn.close()
        raw_files = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
        assert b"cf_clearance" in raw_files
        for secret in SECRETS:
            assert secret.encode() not in raw_files
    else:
        pg = request.getfixturevalue("postgres_server")
        dump = subprocess.run(
            [str(pg.bindir / "pg_dump"), "--dbname", hitl_env["HITL_DATABASE_URL"]],
            check=True, capture_output=True, text=True,
        ).stdout
    assert "sessions" in dump and "cf_clearance" in dump  # names are in clear
    for secret in SECRETS:
        assert secret not in dump

    # 4. Redis: every key and value (the event stream says a session was captured, by name)
    client = redis.Redis.from_url(hitl_env["HITL_REDIS_URL"])
    try:
        everything = b""
        for key in client.scan_iter("*"):
            kind = client.type(key)
            if kind == b"string":
                everything += client.get(key) or b""
            elif kind == b"hash":
                everything += repr(client.hgetall(key)).encode()
            elif kind == b"set":
                everything += repr(client.smembers(key)).encode()
            elif kind == b"zset":
                everything += repr(client.zrange(key, 0, -1)).encode()
            elif kind == b"stream":
                everything += repr(client.xrange(key)).encode()
            elif kind == b"list":
                everything += repr(client.lrange(key, 0, -1)).encode()
            everything += key
    finally:
        client.close()
    assert b"session.captured" in everything and b"cf_clearance" in everything
    for secret in SECRETS:
        assert secret.encode() not in everything


def test_a_different_secret_key_cannot_decrypt(state, vault):
    vault.put("shop.example.com", shop_cookies())
    other = SessionVault(state.db, fernet_for("not-the-" + state.config.secret_key))
    with pytest.raises(VaultKeyError, match="stored with another HITL_SECRET_KEY"):
        other.get("shop.example.com")
    with pytest.raises(VaultKeyError, match="hitl sessions delete shop.example.com"):
        other.load_usable()
    # the right key still works, and listing needs no key at all
    assert vault.get("shop.example.com").cookies[0].value == SECRET
    assert other.list()[0]["cookie_names"] == ["cf_clearance", "sid"]


def test_check_key_refuses_a_key_that_cannot_decrypt_the_vault(state, vault):
    from scrapy_hitl.state.vault import check_key

    url, key = state.config.database_url, state.config.secret_key
    check_key(url, "any key")  # an empty vault: nothing to check yet
    vault.put("shop.example.com", shop_cookies())
    check_key(url, key)
    with pytest.raises(VaultKeyError, match="Every host and process sharing this database must use the same"):
        check_key(url, "not-the-" + key)


def test_same_secret_key_decrypts_from_another_process(state, vault):
    vault.put("a.example", [Cookie("k", SECRET, "a.example")])
    again = SessionVault(state.db, fernet_for(state.config.secret_key))
    assert again.get("a.example").cookies == (Cookie("k", SECRET, "a.example"),)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("https://Shop.Example.com:8443/x", "shop.example.com", id="url"),
        pytest.param("shop.example.com:8080", "shop.example.com", id="host-port"),
        pytest.param(".example.com", "example.com", id="leading-dot"),
        pytest.param("  EXAMPLE.com/path ", "example.com", id="spaces-and-path"),
        pytest.param("http://[::1]:8080/", "::1", id="ipv6-url"),
        pytest.param("127.0.0.1:5000", "127.0.0.1", id="ipv4-port"),
    ],
)
def test_normalize_domain(given, expected):
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("a.b.example.com", ["a.b.example.com", "b.example.com", "example.com"], id="subdomain"),
        pytest.param("example.com", ["example.com"], id="registrable"),
        pytest.param("localhost", ["localhost"], id="single-label"),
        pytest.param("127.0.0.1", ["127.0.0.1"], id="ipv4"),
        pytest.param("::1", ["::1"], id="ipv6"),
    ],
)
def test_parent_domains(host, expected):
    assert parent_domains(host) == expected
