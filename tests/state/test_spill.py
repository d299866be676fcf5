"""Tests for scrapy_hitl.state.spill: what a close during a Redis outage saves, and its
return to Redis at the next start (real files, the real Redis of the ``state`` fixture)."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import stat

import pytest
import redis

from scrapy_hitl.state import spill
from scrapy_hitl.state.parking import ParkEntry, ParkingLot
from tests.support.servers import free_port

SPIDER = "shop"


def entry(n, *, fp=None, replaces=""):
    return ParkEntry.build(domain="a.example", fingerprint=f"fp{n}" if fp is None else fp,
                           request={"url": f"https://a.example/{n}", "meta": {"n": n}},
                           reason="captcha", replaces=replaces, run_id="run-1", parked_at=1.0 + n)


def test_round_trip_private_and_atomic(tmp_path):
    data_dir = tmp_path / "data"
    parks = [entry(1), entry(2, fp=""), entry(3, replaces="17")]
    path = spill.write(data_dir, run_id="run-1", spider=SPIDER, parks=parks, acks=["5", "6"])

    assert path == data_dir / "unwritten" / "run-1.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    back = spill.read(path)
    assert (back.parks, back.acks) == (parks, ["5", "6"])
    assert (back.header.run_id, back.header.spider, back.header.parks, back.header.acks) == (
        "run-1", SPIDER, 3, 2)
    assert spill.pending(data_dir) == [path]

    # Written again: a new file renamed over the old one (another inode), never the old one
    # rewritten in place, and no temporary file left behind.
    inode = path.stat().st_ino
    spill.write(data_dir, run_id="run-1", spider=SPIDER, parks=parks[:1], acks=[])
    assert path.stat().st_ino != inode
    assert spill.read(path).parks == parks[:1]
    assert sorted(p.name for p in path.parent.iterdir()) == ["run-1.jsonl"]


@pytest.mark.parametrize(("content", "error"), [
    ("", "not a scrapy-hitl spill file"),
    ('{"hitl_unwritten": {"version": 99}}\n', "not a scrapy-hitl spill file"),
    ("not json\n", "unreadable"),
    ('{"hitl_unwritten": {"version": 1, "run_id": "r", "spider": "s", "parks": 1, "acks": 0, '
     '"written_at": 0}}\n{"domain": "a.example"}\n', "line 2: no 'fp'"),
    ('{"hitl_unwritten": {"version": 1, "run_id": "r", "spider": "s", "parks": 2, "acks": 0, '
     '"written_at": 0}}\n{"domain": "a", "fp": "", "payload": "{}"}\n', "holds 1 parks and 0 acks"),
])
def test_a_bad_file_is_named_with_what_is_wrong(tmp_path, content, error):
    path = tmp_path / "x.jsonl"
    path.write_text(content)
    with pytest.raises(spill.SpillFormatError, match="x.jsonl") as info:
        spill.read(path)
    assert error in str(info.value)


def test_restore_parks_dedups_acks_and_removes_the_file(state, caplog):
    lot = state.parking
    data_dir = state.config.data_dir
    (already,) = lot.park(SPIDER, [entry(1)])
    lot.park(SPIDER, [entry(9)])
    (claim,) = lot.claim(SPIDER, "a.example", 1, "run-1")  # entry 1, claimed by the dead run
    assert claim.park_id == already
    lot.park("other", [entry(7)])
    first = spill.write(data_dir, run_id="run-1", spider=SPIDER,
                        parks=[entry(2), entry(3, fp=""), entry(9)], acks=[claim.park_id])
    second = spill.write(data_dir, run_id="run-2", spider="other", parks=[entry(7), entry(8)], acks=[])
    bad = spill.spill_dir(data_dir) / "run-3.jsonl"
    bad.write_text("garbage\n")
    last_event = state.events.last_id()

    with caplog.at_level(logging.ERROR, logger="scrapy_hitl.state.spill"):
        done = spill.restore(state)

    assert sorted((d.path, d.spider, d.parked, d.duplicates, d.acked) for d in done) == sorted([
        (first, SPIDER, 2, 1, 1), (second, "other", 1, 1, 0)])
    assert not first.exists() and not second.exists()
    assert bad.exists() and "run-3.jsonl" in caplog.text and "move it out" in caplog.text
    assert lot.release_dead_claims(SPIDER, lambda run: False) == 0  # the ack settled run-1's claim
    claimed = lot.claim(SPIDER, "a.example", 10, "run-4")
    assert sorted(c.request["url"] for c in claimed) == [f"https://a.example/{n}" for n in (2, 3, 9)]
    assert lot.count("other", "a.example") == 2
    events = [e for e in state.events.read(last_event) if e.type == "requests.parked"]
    assert sorted((e.spider, e.payload["count"]) for e in events) == [("other", 1), (SPIDER, 2)]

    assert spill.restore(state) == []  # nothing left but the bad file


def test_a_file_another_process_is_restoring_is_left_to_it(state):
    path = spill.write(state.config.data_dir, run_id="run-1", spider=SPIDER, parks=[entry(1)], acks=[])
    with open(path) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert spill.restore(state) == []
    assert path.exists() and state.parking.count(SPIDER, "a.example") == 0


def test_redis_still_down_leaves_the_file(state):
    path = spill.write(state.config.data_dir, run_id="run-1", spider=SPIDER, parks=[entry(1)], acks=["4"])
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        spill.restore(dataclasses.replace(state, redis=down, parking=ParkingLot(down)))
    assert spill.read(path).parks == [entry(1)]
    os.utime(path)
    assert [d.parked for d in spill.restore(state)] == [1]
    assert not path.exists()


def test_describe_for_hitl_status(tmp_path):
    path = spill.write(tmp_path, run_id="run-1", spider=SPIDER, parks=[entry(1), entry(2)], acks=["3"])
    (row,) = spill.describe(tmp_path)
    assert {k: row[k] for k in ("path", "run_id", "spider", "parks", "acks")} == {
        "path": str(path), "run_id": "run-1", "spider": SPIDER, "parks": 2, "acks": 1}
    json.dumps(row)  # goes out as `hitl status --json`
    assert spill.describe(tmp_path / "nowhere") == []
