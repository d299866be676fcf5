"""A command that starts the embedded Redis does not leave it running behind the user's back:
it stops it again, or, when others use it by then, says so and how to stop it."""

from __future__ import annotations

import os
import subprocess
import sys

from hitl_console.embedded import StartedHere
from scrapy_hitl.config import StateConfig
from scrapy_hitl.state.redis_server import EmbeddedRedis


def hitl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hitl_console.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def local_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    return {**env, "HITL_DATA_DIR": str(tmp_path / "data")}


def test_hitl_status_stops_the_embedded_redis_it_started(tmp_path):
    env = local_env(tmp_path)
    done = hitl(env, "status")
    assert done.returncode == 0, done.stderr
    assert "Redis     ok" in done.stdout
    assert not EmbeddedRedis(tmp_path / "data").is_running()
    assert done.stderr == ""


def test_a_redis_that_was_running_before_is_left_running_silently(tmp_path):
    embedded = EmbeddedRedis(tmp_path / "data")
    embedded.ensure_started()
    try:
        done = hitl(local_env(tmp_path), "status")
        assert done.returncode == 0 and done.stderr == ""
        assert embedded.is_running()
    finally:
        embedded.stop()


def test_a_redis_others_use_by_the_end_keeps_running_and_the_command_says_how_to_stop_it(tmp_path):
    config = StateConfig.from_env({"HITL_DATA_DIR": str(tmp_path / "data")})
    started = StartedHere(config)  # before the command: not running
    embedded = EmbeddedRedis(tmp_path / "data")
    embedded.ensure_started()  # the command starts it...
    crawl = embedded.client()  # ...and a crawl connects meanwhile
    try:
        crawl.ping()
        note = started.finish()
        assert note is not None and "`hitl down` stops it" in note and str(tmp_path / "data") in note
        assert embedded.is_running()
        crawl.close()
        assert StartedHere(config).finish() is None  # running before this one: not its business
    finally:
        crawl.close()
        embedded.stop()
