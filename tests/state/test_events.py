"""Tests for scrapy_hitl.state.events: the capped Redis Stream every process shares."""

from __future__ import annotations

import json
import threading
import time

import pytest

from scrapy_hitl.state.events import EVENT_TYPES, STREAM_KEY, Event, EventStream, make_event


@pytest.fixture
def stream(state):
    return state.events


def test_emit_and_read_back(stream):
    before = time.time()
    sid = stream.emit("intervention.created", {"type": "captcha_solve", "n": 1},
                      intervention_id=7, domain="a.example", spider="shop", run_id="r1")
    (ev,) = stream.read()
    assert ev.id == sid
    assert (ev.type, ev.intervention_id, ev.domain, ev.spider, ev.run_id) == (
        "intervention.created", 7, "a.example", "shop", "r1")
    assert ev.payload == {"type": "captcha_solve", "n": 1}
    assert before <= ev.timestamp <= time.time()
    assert ev.to_dict() == {"id": sid, "type": "intervention.created", "timestamp": ev.timestamp,
                            "run_id": "r1", "intervention_id": 7, "spider": "shop",
                            "domain": "a.example", "payload": {"type": "captcha_solve", "n": 1}}


def test_missing_ids_are_none(stream):
    stream.emit("run.progress")
    (ev,) = stream.read()
    assert (ev.run_id, ev.intervention_id, ev.spider, ev.domain, ev.payload) == (None, None, None, None, {})


def test_stored_as_json_in_the_stream(stream, state):
    stream.emit("domain.paused", {"interventions": [1]}, domain="a.example")
    ((_sid, fields),) = state.redis.xrange(STREAM_KEY)
    data = json.loads(fields[b"data"])
    assert data["type"] == "domain.paused"
    assert data["payload"] == {"interventions": [1]}
    assert "id" not in data


def test_append_writes_in_order(stream):
    evs = [make_event("run.progress", {"i": i}, run_id="r") for i in range(5)]
    ids = stream.append(evs)
    assert len(ids) == 5 and ids == sorted(ids, key=lambda s: tuple(map(int, s.split("-"))))
    assert [e.payload["i"] for e in stream.read()] == [0, 1, 2, 3, 4]


def test_read_after_an_id_replays_only_newer_events(stream):
    ids = [stream.emit("run.progress", {"i": i}) for i in range(6)]
    assert [e.payload["i"] for e in stream.read(after=ids[2])] == [3, 4, 5]
    assert [e.id for e in stream.read(after=ids[2])] == ids[3:]
    assert stream.read(after=ids[-1]) == []
    assert [e.payload["i"] for e in stream.read(count=2)] == [0, 1]


def test_last_id(stream):
    assert stream.last_id() == "0-0"
    assert stream.last_event_age() is None
    stream.emit("run.started")
    last = stream.emit("run.completed")
    assert stream.last_id() == last
    assert 0 <= stream.last_event_age() < 5
    stream.emit("run.failed")
    assert [e.type for e in stream.read(after=last)] == ["run.failed"]


def test_blocking_read_wakes_on_a_new_event(stream):
    start = stream.last_id()
    got = []
    reader = threading.Thread(target=lambda: got.extend(stream.read(start, block_ms=5000)))
    reader.start()
    time.sleep(0.1)
    stream.emit("spider.paused", spider="shop")
    reader.join(timeout=5)
    assert [e.type for e in got] == ["spider.paused"]


def test_wake_ends_a_blocking_read_with_no_events(stream, state):
    """What the crawler's close does to its event listener, instead of waiting out the block."""
    got = []
    reader = threading.Thread(target=lambda: got.append(stream.read("$", block_ms=60_000, wake_key="hitl:wake:t")))
    reader.start()
    time.sleep(0.1)
    stream.wake("hitl:wake:t")
    reader.join(timeout=30)
    assert not reader.is_alive() and got == [[]]
    assert not state.redis.exists("hitl:wake:t")  # the read that saw it took it
    stream.wake("hitl:wake:t")  # and one nobody read expires by itself
    assert 0 < state.redis.ttl("hitl:wake:t") <= 60
    stream.emit("spider.paused", spider="shop")  # the wake key's entries never read as events
    assert [e.type for e in stream.read("0-0", wake_key="hitl:wake:t")] == ["spider.paused"]


def test_a_wake_left_by_the_previous_process_of_a_run_ends_one_read_only(stream, state):
    """A job's run continues in a new process (a drained worker's job, queued again) with the
    same run id, so the same wake key, which the last one's close woke within the minute:
    the new listener's first read finds that wake. Left there, every read of the listener
    would end at once, thousands a second, until the key expired."""
    stream.wake("hitl:wake:r")  # the previous process's close
    assert stream.read("$", block_ms=5000, wake_key="hitl:wake:r") == []  # ends at once, once
    assert not state.redis.exists("hitl:wake:r")  # so the next read blocks again


def test_blocking_read_times_out_empty(stream):
    t0 = time.monotonic()
    assert stream.read("$", block_ms=100) == []
    assert time.monotonic() - t0 >= 0.09


def test_stream_is_capped(state):
    """Trimming is approximate (XADD MAXLEN ~): Redis drops whole stream nodes of
    ``stream-node-max-entries`` events, so the stream holds at most maxlen plus one node."""
    node = int(state.redis.config_get("stream-node-max-entries")["stream-node-max-entries"])
    small = EventStream(state.redis, maxlen=10)
    total = 3 * node + 7
    for i in range(total):
        small.emit("run.progress", {"i": i})
    length = state.redis.xlen(STREAM_KEY)
    assert 10 <= length <= 10 + node
    events = small.read(count=total)
    assert len(events) == length
    # the oldest are gone, the newest are all there, in order
    assert [e.payload["i"] for e in events] == list(range(total - length, total))


def test_unknown_event_type_is_refused(stream, state):
    with pytest.raises(ValueError) as excinfo:
        stream.emit("intervention.exploded", {})
    assert str(excinfo.value) == (
        "Unknown event type 'intervention.exploded'; add it to EVENT_TYPES and docs/events.md"
    )
    assert state.redis.exists(STREAM_KEY) == 0


def test_unknown_id_field_is_refused():
    with pytest.raises(TypeError, match=r"Unknown event id fields: \['item_id'\]"):
        make_event("run.started", item_id=3)


def test_event_types_include_the_documented_names():
    for name in ("run.started", "run.progress", "run.waiting", "run.completed", "run.failed",
                 "intervention.created", "intervention.resolved", "requests.parked",
                 "requests.resumed", "domain.paused", "domain.resumed"):
        assert name in EVENT_TYPES
    assert len(set(EVENT_TYPES)) == len(EVENT_TYPES)


def test_event_encode_decode_roundtrip():
    ev = make_event("requests.parked", {"count": 3}, spider="shop", domain="a.example")
    back = Event.decode("5-0", ev.encode())
    assert back.to_dict() == {**ev.to_dict(), "id": "5-0"}
