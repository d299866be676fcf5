"""Redis goes away for 30 s in the middle of a crawl that parks all along: the crawl backs
off, pauses after HITL_PARK_FLUSH_DEADLINE, goes on when Redis is back, logs a handful of
lines about it, and every request it parked is in Redis at the end."""

from __future__ import annotations

import re
import signal
import stat
import time
from pathlib import Path

import pytest

from scrapy_hitl.state import interventions
from tests.integration.conftest import wait_for

HELD = "held.sandbox.test"
OUTAGE = 30.0  # seconds Redis is stopped (issue 14)
DEADLINE = 5.0  # HITL_PARK_FLUSH_DEADLINE: well inside the outage, so the crawl pauses


@pytest.mark.slow  # a 30-s outage: `make test-slow`
def test_redis_outage_backs_off_pauses_and_loses_nothing(crawl, own_redis, own_state, fresh_sandbox, tmp_path):
    """The crawl's pages go on until the test has brought Redis back (``stop_file``), so it
    parks from before the outage, through the deadline, to after it, however fast it runs:
    no page count to guess, and none crawled once the outage is over but for the last."""
    interventions.open_or_update(own_state, type="manual_access", reason="http_403", domain=HELD)
    stop_file = tmp_path / "stop-paging"
    run = crawl(spider="trickle", args={"count": "1000", "held": HELD, "stop_file": str(stop_file)}, settings={
        "SPIDER_MODULES": ["demo.spiders", "tests.support.trickle"],
        # 5 pages a second at most: parking goes on well past the deadline into the outage
        "DOWNLOAD_DELAY": 0.2,
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "HITL_PARK_FLUSH_DEADLINE": DEADLINE,
        "HITL_RUN_HEARTBEAT": 1.0,  # the heartbeat, too, meets the outage
        "HITL_PAUSE_TIMEOUT": 1,
    })
    wait_for(lambda: own_state.parking.count("trickle", HELD) >= 5, what="the first parks")
    own_redis.shutdown()
    time.sleep(OUTAGE)
    stop_file.touch()  # the crawl is paused: its first page after the outage is its last
    own_redis.start_again()  # same port, its AOF loaded
    result = run.wait(timeout=180)

    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["finish_reason"] == "hitl_paused"  # HELD waits for a human
    pages = sorted(i["n"] for i in result.items if "n" in i)
    assert pages == list(range(1, len(pages) + 1))
    # Every request the crawl parked (one a page) is in Redis, once.
    assert result.stats["hitl/parked"] == len(pages)
    assert own_state.parking.count("trickle", HELD) == len(pages)
    # One outage; long enough that the crawl paused until Redis was back.
    assert result.stats["hitl/redis/outages"] == 1
    assert result.stats["hitl/redis/paused"] == 1
    assert result.stats["hitl/redis/failed_writes"] >= 2

    # A handful of lines about it, not one per try; no tracebacks.
    about_redis = [line for line in result.log.splitlines() if "Redis" in line]
    assert len(about_redis) <= 5, "\n".join(about_redis)
    assert sum("Redis unreachable since" in line for line in about_redis) == 1
    assert sum("pausing the crawl until it is back" in line for line in about_redis) == 1
    (back,) = [line for line in about_redis if "Redis back after" in line]
    assert int(re.search(r"(\d+) parks flushed", back).group(1)) >= 1  # parked during the outage
    assert "Traceback" not in result.log
    assert "Unhandled error" not in result.log


def test_a_close_while_redis_is_away_saves_what_it_could_not_park_for_the_next_crawl(
        crawl, cli, own_redis, own_state, fresh_sandbox, hitl_env):
    """Ctrl-C during an outage: the final write is tried for HITL_PARK_FLUSH_DEADLINE, then
    what is left is saved to the data dir (mode 0600), and the next crawl on this host parks
    it once Redis is back: nothing the crawl accepted is lost."""
    interventions.open_or_update(own_state, type="manual_access", reason="http_403", domain=HELD)
    settings = {
        "SPIDER_MODULES": ["demo.spiders", "tests.support.trickle"],
        "DOWNLOAD_DELAY": 0.05,
        "HITL_PARK_FLUSH_DEADLINE": 1.0,  # the pause, and the final write at close, come after 1 s
        "HITL_PAUSE_TIMEOUT": 1,
    }
    run = crawl(spider="trickle", args={"count": "1000", "held": HELD}, settings=settings)
    wait_for(lambda: own_state.parking.count("trickle", HELD) >= 5, what="the first parks")
    own_redis.shutdown()
    run.wait_for_log("pausing the crawl until it is back")
    run.proc.send_signal(signal.SIGINT)
    result = run.wait(timeout=60)

    assert result.returncode == 0, result.log[-3000:]
    (saved,) = [line for line in result.log.splitlines() if "Redis unreachable at close" in line]
    match = re.search(r": (\d+) parked requests saved to (\S+); the next crawl on this host parks them",
                      saved)
    assert match, saved
    unwritten, path = int(match.group(1)), Path(match.group(2))
    assert unwritten >= 1
    assert f"'hitl/parked/spilled': {unwritten}," in result.log  # Scrapy's final stats
    assert path == Path(hitl_env["HITL_DATA_DIR"]) / "unwritten" / f"{path.stem}.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "hitl/parked/unwritten" not in result.log
    assert "Traceback" not in result.log
    assert "Unhandled error" not in result.log

    own_redis.start_again()
    written = own_state.parking.count("trickle", HELD)
    assert written + unwritten == result.stats["hitl/parked"]
    status = cli.json("status")
    assert [(f["path"], f["parks"]) for f in status["unwritten_files"]] == [(str(path), unwritten)]
    code, out = cli("status")
    assert f"Saved on this host, not yet in Redis: {unwritten} parked requests" in out, out

    # The next crawl on this host (its one park to HELD is page 1, parked already).
    nxt = crawl(spider="trickle", args={"count": "1", "held": HELD}, settings=settings).wait(timeout=60)
    assert nxt.returncode == 0, nxt.log[-3000:]
    assert "Traceback" not in nxt.log
    assert f"Parked {unwritten} requests (0 already parked)" in nxt.log
    assert not path.exists()
    assert own_state.parking.count("trickle", HELD) == result.stats["hitl/parked"]  # every park
    assert cli.json("status")["unwritten_files"] == []
