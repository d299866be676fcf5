"""The scored items' buffer: batched writes through the runtime's I/O, retried on failure,
dumped to a file rather than lost when the database stays away."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from twisted.internet import defer

from scrapy_hitl.quality import writer as writer_module
from scrapy_hitl.quality.writer import ItemWriter
from scrapy_hitl.state.items import ROW_FIELDS, scored_row

STATUS, DATA, KEY = (ROW_FIELDS.index(f) for f in ("status", "data", "evidence_key"))


class FakeRuntime:
    """What ItemWriter uses of HitlRuntime; ``io`` fails while ``down``."""

    def __init__(self, tmp_path: Path) -> None:
        self.down = False
        self.calls: list[tuple[list, dict]] = []
        self.events: list[tuple[str, dict]] = []
        self.closed = False
        self.spider = None
        self.run_id = "r1"
        self.state = SimpleNamespace(db=object())
        self.config = SimpleNamespace(data_dir=tmp_path)

    def io(self, fn, db, rows, evidence, **kw):
        if self.down:
            return defer.fail(RuntimeError("database is locked"))
        self.calls.append((rows, evidence))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r[STATUS]] = counts.get(r[STATUS], 0) + 1
        return defer.succeed(counts)

    def emit(self, type_, payload):
        self.events.append((type_, payload))


def make(tmp_path):
    rt = FakeRuntime(tmp_path)
    return rt, ItemWriter(rt, interval=1.0, review_timeout=60, timeout_action="drop")  # type: ignore[arg-type]


def row(status="delivered", n=0, key=None):
    return scored_row(status=status, data=json.dumps({"n": n}), evidence_key=key)


def test_rows_are_written_in_one_batch_with_shared_evidence(tmp_path):
    rt, w = make(tmp_path)
    page = {"kind": "body", "content_type": "text/html", "data": b"<p>", "url": "u", "tier": "static", "size": 3}
    w.add(row("pending_review", 1, "k"), ("k", page))
    w.add(row("optional_review", 2, "k"), ("k", page))
    w.add(row())
    w.flush()
    ((rows, evidence),) = rt.calls
    assert [r[STATUS] for r in rows] == ["pending_review", "optional_review", "delivered"]
    assert [r[KEY] for r in rows] == ["k", "k", None] and list(evidence) == ["k"]
    assert rt.events == [("item.review_required", {"pending_review": 1, "optional_review": 1})]
    assert w.rows == [] and w.written == 3


def test_a_full_batch_is_written_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "BATCH", 3)
    rt, w = make(tmp_path)
    for n in range(7):
        w.add(row(n=n))
    assert [len(rows) for rows, _ in rt.calls] == [3, 3] and len(w.rows) == 1


def test_a_failed_write_keeps_the_rows_in_order_for_the_next_one(tmp_path):
    rt, w = make(tmp_path)
    rt.down = True
    w.add(row(n=1, key="k"), ("k", {"data": b""}))
    w.flush()
    w.add(row(n=2))
    assert [json.loads(r[DATA])["n"] for r in w.rows] == [1, 2] and "k" in w.evidence
    rt.down = False
    w.flush()
    assert [json.loads(r[DATA])["n"] for r in rt.calls[0][0]] == [1, 2]


def test_rows_that_cannot_be_stored_go_to_a_file(tmp_path):
    rt, w = make(tmp_path)
    w.add(row("pending_review", 5, "k"), ("k", {"data": b""}))
    w._dump()
    dumped = (tmp_path / "unsaved-items-r1.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in dumped] == ["pending_review"]
    assert "evidence_key" not in json.loads(dumped[0]) and w.rows == []
