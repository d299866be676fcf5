"""Scored items wait here and are written in batches by the runtime's I/O thread.

Every ``HITL_QUALITY_FLUSH_INTERVAL`` (or at ``BATCH`` items) the buffer is handed to
``state.items.record`` on the one I/O thread that also writes parked requests, so per item
the reactor only appends to a list; JSON encoding, compression and SQL happen off it. A
failed write is put back and retried on the next tick. At close the buffer is written before
the runtime stops; if the database is still unreachable then, the items go to
``<HITL_DATA_DIR>/unsaved-items-<run id>.jsonl`` (logged) rather than being lost.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from twisted.internet import task
from twisted.internet.defer import succeed
from scrapy.utils.defer import maybe_deferred_to_future

from scrapy_hitl.state import items as items_service

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

    from scrapy_hitl.runtime import HitlRuntime

logger = logging.getLogger(__name__)

BATCH = 1000  # items per write; more waiting than this triggers a write at once
CLOSE_ATTEMPTS = 3


class ItemWriter:
    def __init__(self, runtime: HitlRuntime, *, interval: float, review_timeout: float,
                 timeout_action: str) -> None:
        self.rt = runtime
        self.interval = interval
        self.review_timeout = review_timeout
        self.timeout_action = timeout_action
        self.rows: list[tuple[Any, ...]] = []  # items_service.ROW_FIELDS
        self.evidence: dict[Any, dict[str, Any]] = {}
        self.written = 0
        self._flushing: Deferred[Any] | None = None
        self._loop: task.LoopingCall | None = None

    def start(self) -> None:
        self._loop = task.LoopingCall(self.flush)
        self._loop.start(self.interval, now=False)

    def add(self, row: tuple[Any, ...], evidence: tuple[Any, dict[str, Any]] | None = None) -> None:
        """``row``: ``items_service.ROW_FIELDS``; its ``evidence_key`` is ``evidence``'s key."""
        if evidence is not None:
            key, ev = evidence
            self.evidence.setdefault(key, ev)
        self.rows.append(row)
        if len(self.rows) >= BATCH and self._flushing is None:
            self.flush()

    def flush(self) -> Deferred[Any]:
        if self._flushing is not None:
            return self._flushing
        if not self.rows or self.rt.closed:
            return succeed(None)
        rows, self.rows = self.rows, []
        evidence, self.evidence = self.evidence, {}
        d = self.rt.io(items_service.record, self.rt.state.db, rows, evidence,
                       review_timeout=self.review_timeout, timeout_action=self.timeout_action)

        def _written(counts: dict[str, int]) -> None:
            self.written += len(rows)
            held, optional = counts.get("pending_review", 0), counts.get("optional_review", 0)
            if held or optional:
                self.rt.emit("item.review_required", {"pending_review": held, "optional_review": optional})

        def _failed(failure: Any) -> None:
            logger.warning("Could not store %d scored items, will retry: %s", len(rows),
                           failure.getErrorMessage(), extra={"spider": self.rt.spider})
            self.rows[:0] = rows
            for key, ev in evidence.items():
                self.evidence.setdefault(key, ev)

        def _done(result: Any) -> Any:
            self._flushing = None
            return result

        self._flushing = d  # before the callbacks: a deferred that already fired runs them now
        d.addCallbacks(_written, _failed)
        d.addBoth(_done)
        return d

    async def close(self) -> None:
        """Write everything still buffered; called from the pipeline's close_spider."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        for _ in range(CLOSE_ATTEMPTS):
            if self._flushing is not None:
                await maybe_deferred_to_future(self._flushing)
            if not self.rows or self.rt.closed:
                break
            await maybe_deferred_to_future(self.flush())
        if self.rows:
            self._dump()

    def _dump(self) -> None:
        path = self.rt.config.data_dir / f"unsaved-items-{self.rt.run_id}.jsonl"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data dir
        with path.open("a", encoding="utf-8") as fh:
            for values in self.rows:
                row = dict(zip(items_service.ROW_FIELDS[:-1], values))  # without the evidence key
                fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        logger.error("%d scored items could not be stored; they are in %s", len(self.rows), path,
                     extra={"spider": self.rt.spider})
        self.rows = []
