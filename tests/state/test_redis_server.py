"""Tests for scrapy_hitl.state.redis_server: connecting, and the embedded redis-server."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

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

    def make(data_dir=None):
        server = EmbeddedRedis(data_dir or tmp_path / "hitl")
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
    assert (deep / "appendonly.aof").exists()
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
