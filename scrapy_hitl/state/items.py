"""Scored items: record them (the crawler, in batches), review them (the console, the API),
export them.

Every item the quality pipeline scores is stored, compactly: delivered ones too, so a run's
export holds everything that left it. ``data`` is the current version as JSON text (what
exports stream, without a join); versions are rows of ``item_versions``, written from the
first edit on (version 1, what the crawler extracted, is written with it). Statuses:

| status | in exports | how it gets there |
|---|---|---|
| delivered | yes | confidence >= HITL_QUALITY_DELIVER_SCORE |
| optional_review | yes | delivered, and queued for an optional look |
| pending_review | no | held: low confidence or a critical field missing |
| approved | yes | a reviewer approved it (possibly edited) |
| rejected | no | a reviewer rejected it |
| skipped | per HITL_REVIEW_TIMEOUT_ACTION | nobody reviewed it in time (``skip_overdue``) |

Every human action is in ``item_events`` (the audit trail), with who and when.

Core statements on ``tables`` (``Database.begin``), no ORM: a crawl stores its items here,
and a static crawl never imports SQLAlchemy's ORM.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import datetime, timedelta
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, literal, select, tuple_, update

from scrapy_hitl.state import bulk, tables
from scrapy_hitl.state.tables import ITEM_STATUSES, iso, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from sqlalchemy import Connection, Row

    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.db import Database

REVIEW_STATUSES = ("optional_review", "pending_review")
DELIVERABLE = {"delivered": True, "optional_review": True, "pending_review": False, "approved": True,
               "rejected": False}
_STORED_AS_IS = ("image/png", "image/jpeg", "image/webp")
# The columns ``record`` writes, in the order of its value tuples.
_ITEMS, _EVIDENCE, _VERSIONS, _EVENTS = tables.items, tables.item_evidence, tables.item_versions, tables.item_events
_RECORD_COLUMNS = ("run_id", "spider", "item_type", "url", "status", "deliverable", "score", "breakdown",
                   "failing", "evidence_id", "data", "version", "review_deadline", "on_timeout", "created_at",
                   "updated_at")


class ItemNotFound(LookupError):
    """No item with that id (the API answers 404)."""

    def __init__(self, item_id: Any) -> None:
        super().__init__(f"No item with id {item_id}.")
        self.item_id = item_id


class ItemConflict(ValueError):
    """The action does not apply to the item as it is now (already approved, unknown version,
    edited by someone else meanwhile); the API answers 409."""


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
try:  # the C encoder JSONEncoder.encode builds for each call, built here without the Python around it
    from _json import make_encoder as _make_c_encoder
except ImportError:  # pragma: no cover - CPython always has it
    _make_c_encoder = None


_NONE: dict[str, Any] = {}  # never changed: see record()
_NO_CHECKS: list[dict[str, Any]] = []


def dumps(data: Any) -> str:
    """Item data as stored and exported: compact JSON, non-ASCII kept, unknown types as str.

    Once per scraped item, on the reactor thread: ``_ENCODER.encode(data)`` exactly (a fresh
    circular-reference guard each time, ``default=str``, NaN allowed), minus JSONEncoder's
    Python layers (json.dumps() with options would also build an encoder per call)."""
    if _make_c_encoder is None or isinstance(data, str):
        return _ENCODER.encode(data)
    return "".join(_make_c_encoder({}, str, encode_basestring, None, ":", ",", False, False, True)(data, 0))


# --- the crawler's side -------------------------------------------------------------------------
# One scored item as the quality pipeline hands it to ``record``: a tuple in this order, built
# once per item on the reactor thread and read column by column on the I/O thread.
ROW_FIELDS = ("run_id", "spider", "item_type", "url", "status", "score", "breakdown", "failing", "data",
              "evidence_key")


def scored_row(*, status: str, data: Any, run_id: str | None = None, spider: str = "", item_type: str = "",
               url: str = "", score: float = 1.0, breakdown: dict[str, Any] | None = None,
               failing: list[dict[str, Any]] | None = None, evidence_key: Any = None) -> tuple[Any, ...]:
    """A ``ROW_FIELDS`` tuple, by name (``data``: a dict, or its JSON text as ``dumps`` makes it)."""
    return (run_id, spider, item_type, url, status, score, breakdown or _NONE, failing or _NO_CHECKS,
            data if isinstance(data, str) else dumps(data), evidence_key)


def record(
    db: Database,
    rows: list[tuple[Any, ...]] | list[dict[str, Any]],
    evidence: Mapping[Any, Mapping[str, Any]] | None = None,
    *,
    review_timeout: float = 86400,
    timeout_action: str = "drop",
) -> dict[str, int]:
    """Store a batch of scored items (I/O thread). Returns how many of each status.

    ``rows``: ``ROW_FIELDS`` tuples (``scored_row``), or dicts with those keys (the ones
    ``scored_row`` has defaults for may be left out). ``evidence_key``, when set, is a key of
    ``evidence`` (``kind, content_type, url, tier, data, size``): the page, stored once for
    all the rows that name it.
    """
    if not rows:
        return {}
    if isinstance(rows[0], dict):
        rows = [scored_row(**row) for row in rows]  # type: ignore[arg-type]
    now = utcnow()
    n = len(rows)
    run_ids, spiders, item_types, urls, statuses, scores, breakdowns, failings, datas, keys = zip(*rows)
    counts = dict(Counter(statuses))
    deadline = now + timedelta(seconds=review_timeout)
    with db.begin() as conn:
        evidence_ids: dict[Any, int] = {}
        if evidence:
            run_of = {key: run_id for key, run_id in zip(keys, run_ids) if key is not None}
            for key, ev in evidence.items():
                if key not in run_of:
                    continue
                raw = ev["data"]
                compress = not str(ev["content_type"]).startswith(_STORED_AS_IS)
                evidence_ids[key] = conn.execute(insert(_EVIDENCE).values(
                    run_id=run_of[key], url=ev.get("url", ""), kind=ev.get("kind", "body"),
                    tier=ev.get("tier", "static"), content_type=ev["content_type"],
                    encoding="gzip" if compress else "identity", size=ev.get("size", len(raw)),
                    data=gzip.compress(raw, compresslevel=6) if compress else raw, created_at=now,
                ).returning(_EVIDENCE.c.id)).scalar_one()
        # Column by column, in _RECORD_COLUMNS order: bulk.insert_columns converts a column
        # whose rows share one object (the clean items' breakdown, the batch's timestamps) once.
        bulk.insert_columns(conn, _ITEMS, _RECORD_COLUMNS, [
            run_ids, spiders, item_types, urls, statuses, list(map(DELIVERABLE.__getitem__, statuses)), scores,
            breakdowns, failings, list(map(evidence_ids.get, keys)) if evidence_ids else [None] * n, datas,
            [1] * n,
            [deadline if s in REVIEW_STATUSES else None for s in statuses]
            if not counts.keys().isdisjoint(REVIEW_STATUSES) else [None] * n,
            [timeout_action] * n, [now] * n, [now] * n,
        ])
    return counts


# --- reading ------------------------------------------------------------------------------------
def item_to_dict(row: Row[Any], *, with_data: bool = True) -> dict[str, Any]:
    """An ``items`` row (a Core row, or anything with its columns as attributes) as the API shows it."""
    out = {
        "id": row.id,
        "run_id": row.run_id,
        "spider": row.spider,
        "item_type": row.item_type,
        "url": row.url,
        "status": row.status,
        "deliverable": row.deliverable,
        "score": row.score,
        "breakdown": row.breakdown,
        "failing": row.failing,
        "evidence_id": row.evidence_id,
        "version": row.version,
        "review_deadline": iso(row.review_deadline),
        "on_timeout": row.on_timeout,
        "reviewed_by": row.reviewed_by,
        "reviewed_at": iso(row.reviewed_at),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if with_data:
        out["data"] = json.loads(row.data)
    return out


def _item(conn: Connection, item_id: int, *, for_update: bool = False) -> Row[Any]:
    """The item's row; ``for_update`` locks it (PostgreSQL) for a read-modify-write."""
    q = select(_ITEMS).where(_ITEMS.c.id == item_id)
    row = conn.execute(q.with_for_update() if for_update else q).first()
    if row is None:
        raise ItemNotFound(item_id)
    return row


def get(db: Database, item_id: int) -> dict[str, Any]:
    with db.begin() as conn:
        return item_to_dict(_item(conn, item_id))


ORDERS = ("id", "score")  # list_items: scraped order, or the review queue's lowest score first


def list_items(
    db: Database,
    *,
    run_id: str | None = None,
    status: str | None = None,
    spider: str | None = None,
    order: str = "id",
    limit: int = 50,
    cursor: int | tuple[float, int] | list[Any] | None = None,
    with_data: bool = True,
) -> list[dict[str, Any]]:
    """Keyset-paginated. ``order="id"``: oldest first, ``cursor`` the last id seen.
    ``order="score"``: lowest score first (the review queue), ``cursor`` the last
    ``(score, id)`` seen. Ask for ``limit + 1`` to learn whether another page exists."""
    if status is not None and status not in ITEM_STATUSES:
        raise ValueError(f"Unknown status {status!r}; use one of {', '.join(ITEM_STATUSES)}")
    if order not in ORDERS:
        raise ValueError(f"Unknown order {order!r}; use one of {', '.join(ORDERS)}")
    t = _ITEMS.c
    q = select(_ITEMS).limit(limit)
    q = q.order_by(t.score, t.id) if order == "score" else q.order_by(t.id)
    if run_id:
        q = q.where(t.run_id == run_id)
    if status:
        q = q.where(t.status == status)
    if spider:
        q = q.where(t.spider == spider)
    if cursor is not None:
        if order == "score":
            score, last_id = cursor  # type: ignore[misc]
            q = q.where(tuple_(t.score, t.id) > tuple_(literal(float(score)), literal(int(last_id))))
        else:
            q = q.where(t.id > int(cursor))  # type: ignore[arg-type]
    with db.begin() as conn:
        return [item_to_dict(r, with_data=with_data) for r in conn.execute(q)]


def next_in_queue(db: Database, item_id: int, *, status: str | None = None, run_id: str | None = None,
                  spider: str | None = None, order: str = "score") -> dict[str, Any] | None:
    """The item after ``item_id`` in a queue (the same filters as ``list_items``), or None:
    what a reviewer's "next" opens. The item itself need not be in the queue any more (it
    was just approved, say); its place in the order is what counts."""
    current = get(db, item_id)
    cursor = (current["score"], current["id"]) if order == "score" else current["id"]
    found = list_items(db, run_id=run_id, status=status, spider=spider, order=order, limit=1, cursor=cursor,
                       with_data=False)
    if not found and order == "score":
        # Past the end: wrap to the start, so a queue is worked through whatever the start.
        found = [i for i in list_items(db, run_id=run_id, status=status, spider=spider, order=order, limit=2,
                                       with_data=False) if i["id"] != item_id][:1]
    return found[0] if found else None


def queue(db: Database, *, run_id: str | None = None, spider: str | None = None) -> list[dict[str, Any]]:
    """Items waiting for a review, per run and spider: ``{"run_id", "spider",
    "pending_review", "optional_review", "min_score"}``, the runs with held items first."""
    t = _ITEMS.c
    q = (select(t.run_id, t.spider, t.status, func.count(), func.min(t.score))
         .where(t.status.in_(REVIEW_STATUSES))
         .group_by(t.run_id, t.spider, t.status))
    if run_id:
        q = q.where(t.run_id == run_id)
    if spider:
        q = q.where(t.spider == spider)
    groups: dict[tuple[Any, str], dict[str, Any]] = {}
    with db.begin() as conn:
        for run, spider_name, status, n, low in conn.execute(q).all():
            g = groups.setdefault((run, spider_name), {"run_id": run, "spider": spider_name, "pending_review": 0,
                                                        "optional_review": 0, "min_score": None})
            g[status] = int(n)
            g["min_score"] = low if g["min_score"] is None else min(g["min_score"], low)
    return sorted(groups.values(), key=lambda g: (-g["pending_review"], -g["optional_review"], str(g["run_id"])))


def counts(db: Database, run_id: str) -> dict[str, int]:
    """Items of the run per status (every status, 0 included)."""
    t = _ITEMS.c
    q = select(t.status, func.count()).where(t.run_id == run_id).group_by(t.status)
    with db.begin() as conn:
        found = dict(conn.execute(q).all())
    return {status: int(found.get(status, 0)) for status in ITEM_STATUSES}


def discard_unreviewed(db: Database, run_id: str) -> int:
    """Delete the run's items no person has touched (never edited nor decided); returns how
    many. For a job that starts its crawl over (its JOBDIR was lost with a host): the new
    attempt records those pages' items again, and the run must not hold them twice."""
    t = _ITEMS.c
    with db.begin() as conn:
        result = conn.execute(delete(_ITEMS).where(t.run_id == run_id, t.version == 1, t.reviewed_by.is_(None)))
        return int(result.rowcount or 0)


def score_histogram(db: Database, run_id: str) -> list[int]:
    """How many of the run's items scored in each tenth: [0-0.1), ..., [0.9-1.0]."""
    bucket = func.floor(_ITEMS.c.score * 10)
    q = select(bucket, func.count()).where(_ITEMS.c.run_id == run_id).group_by(bucket)
    out = [0] * 10
    with db.begin() as conn:
        for b, n in conn.execute(q).all():
            out[min(9, max(0, int(b)))] += int(n)
    return out


def load_evidence(db: Database, item_id: int) -> tuple[str, bytes, dict[str, Any]]:
    """(content type, bytes, {kind, url, tier, size}) of the page the item came from."""
    with db.begin() as conn:
        item = conn.execute(select(_ITEMS.c.evidence_id).where(_ITEMS.c.id == item_id)).first()
        if item is None:
            raise ItemNotFound(item_id)
        ev = (conn.execute(select(_EVIDENCE).where(_EVIDENCE.c.id == item.evidence_id)).first()
              if item.evidence_id else None)
        if ev is None:
            raise LookupError(f"Item {item_id} has no stored page (only items under review keep one)")
        data = gzip.decompress(ev.data) if ev.encoding == "gzip" else ev.data
        return ev.content_type, data, {"kind": ev.kind, "url": ev.url, "tier": ev.tier, "size": ev.size}


def versions(db: Database, item_id: int) -> list[dict[str, Any]]:
    """Every version, oldest first. An item never edited has one: what the crawler extracted."""
    with db.begin() as conn:
        row = _item(conn, item_id)
        found = list(conn.execute(select(_VERSIONS).where(_VERSIONS.c.item_id == item_id)
                                  .order_by(_VERSIONS.c.version)))
        if not found:
            return [{"version": 1, "data": json.loads(row.data), "actor": "crawler", "diff": [],
                     "note": "", "at": iso(row.created_at)}]
        return [_version_to_dict(v) for v in found]


def history(db: Database, item_id: int) -> list[dict[str, Any]]:
    """The item's audit trail, oldest first."""
    q = select(_EVENTS).where(_EVENTS.c.item_id == item_id).order_by(_EVENTS.c.id)
    with db.begin() as conn:
        return [{"action": e.action, "actor": e.actor, "detail": e.detail, "at": iso(e.at)} for e in conn.execute(q)]


def _version_to_dict(v: Row[Any]) -> dict[str, Any]:
    return {"version": v.version, "data": v.data, "actor": v.actor, "diff": v.diff, "note": v.note,
            "at": iso(v.at)}


def iter_export(db: Database, run_id: str, *, raw: bool = False, batch: int = 1000) -> Iterator[Any]:
    """The run's exportable items (delivered, optional_review, approved, skipped-and-delivered),
    in the order they were scraped, each at its latest version. Streams ``batch`` rows at a
    time (server-side cursor on PostgreSQL), so memory stays flat for any run size. ``raw``
    yields the stored JSON text instead of dicts (JSON lines need nothing else)."""
    t = _ITEMS.c
    q = (select(t.data)
         .where(t.run_id == run_id, t.deliverable.is_(True))
         .order_by(t.id)
         .execution_options(yield_per=batch))
    with db.engine.connect() as conn:
        for text in conn.execute(q).scalars():
            yield text if raw else json.loads(text)


# --- the reviewers' side --------------------------------------------------------------------------
def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field-level changes from ``old`` to ``new``, in the new data's field order:
    ``{"field", "op": added|changed|removed, "old", "new"}``. Nested values compare whole."""
    out = []
    for key, value in new.items():
        if key not in old:
            out.append({"field": key, "op": "added", "old": None, "new": value})
        elif old[key] != value:
            out.append({"field": key, "op": "changed", "old": old[key], "new": value})
    for key, value in old.items():
        if key not in new:
            out.append({"field": key, "op": "removed", "old": value, "new": None})
    return out


def _new_version(conn: Connection, row: Row[Any], data: dict[str, Any], *, actor: str, note: str,
                 at: datetime) -> dict[str, Any] | None:
    """Write ``data`` as the item's next version (``row``: the item, read locked); None when
    it changes nothing."""
    current = json.loads(row.data)
    data = json.loads(dumps(data))  # what will be stored, so the diff is of stored values
    changes = diff(current, data)
    if not changes:
        return None
    v = _VERSIONS.c
    if row.version == 1 and not conn.scalar(select(v.id).where(v.item_id == row.id).limit(1)):
        conn.execute(insert(_VERSIONS).values(item_id=row.id, version=1, data=current, actor="crawler", diff=[],
                                              note="", at=row.created_at))
    version = row.version + 1
    conn.execute(update(_ITEMS).where(_ITEMS.c.id == row.id).values(version=version, data=dumps(data), updated_at=at))
    conn.execute(insert(_VERSIONS).values(item_id=row.id, version=version, data=data, actor=actor, diff=changes,
                                          note=note, at=at))
    return {"version": version, "diff": changes}


def _event(conn: Connection, item_id: int, action: str, actor: str, detail: dict[str, Any], at: datetime) -> None:
    conn.execute(insert(_EVENTS).values(item_id=item_id, action=action, actor=actor, detail=detail, at=at))


def _emit(state: HitlState, row: dict[str, Any], action: str, was: str | None = None) -> None:
    """``item.reviewed``; ``was`` (the status before a decision) tells a running crawl that a
    held item it kept out of its feed was approved (quality/late.py)."""
    payload = {"item_id": row["id"], "action": action, "status": row["status"], "version": row["version"]}
    if was is not None:
        payload["was"] = was
    state.events.emit("item.reviewed", payload, run_id=row["run_id"], spider=row["spider"] or None)


def edit(state: HitlState, item_id: int, changes: Mapping[str, Any], *, actor: str, note: str = "",
         replace: bool = False, expected_version: int | None = None) -> dict[str, Any]:
    """Apply ``changes`` (merged into the current data; the whole data with ``replace``) as a
    new version. ``expected_version`` guards against overwriting someone else's edit."""
    now = utcnow()
    with state.db.begin(locked=True) as conn:
        row = _item(conn, item_id, for_update=True)
        if expected_version is not None and row.version != expected_version:
            raise ItemConflict(f"Item {item_id} is at version {row.version}, not {expected_version}: "
                               "someone edited it meanwhile; reload it")
        data = dict(changes) if replace else {**json.loads(row.data), **changes}
        made = _new_version(conn, row, data, actor=actor, note=note, at=now)
        if made:
            _event(conn, row.id, "edited", actor, {"version": made["version"],
                                                   "fields": [c["field"] for c in made["diff"]], "note": note}, now)
            row = _item(conn, item_id)
        out = item_to_dict(row)
    if made:
        _emit(state, out, "edited")
    return out


def restore(state: HitlState, item_id: int, version: int, *, actor: str, note: str = "") -> dict[str, Any]:
    """Make an earlier version's data current again, as a new version (history is never rewritten)."""
    now = utcnow()
    v = _VERSIONS.c
    with state.db.begin(locked=True) as conn:
        row = _item(conn, item_id, for_update=True)
        if version == 1 and row.version == 1:
            return item_to_dict(row)
        old = conn.execute(select(v.data).where(v.item_id == item_id, v.version == version)).first()
        if old is None:
            raise ItemConflict(f"Item {item_id} has no version {version} (it is at version {row.version})")
        made = _new_version(conn, row, dict(old.data), actor=actor, note=note or f"restored version {version}", at=now)
        if made:
            _event(conn, row.id, "restored", actor, {"from_version": version, "version": made["version"],
                                                     "note": note}, now)
            row = _item(conn, item_id)
        out = item_to_dict(row)
    if made:
        _emit(state, out, "restored")
    return out


def _decide(state: HitlState, item_id: int, status: str, *, actor: str, note: str,
            changes: Mapping[str, Any] | None, expected_version: int | None = None) -> dict[str, Any]:
    now = utcnow()
    with state.db.begin(locked=True) as conn:
        row = _item(conn, item_id, for_update=True)
        if row.status == status:
            raise ItemConflict(f"Item {item_id} is already {status}")
        if expected_version is not None and row.version != expected_version:
            raise ItemConflict(f"Item {item_id} is at version {row.version}, not {expected_version}: "
                               "someone edited it meanwhile; reload it")
        detail: dict[str, Any] = {"from": row.status, "note": note}
        if changes:
            made = _new_version(conn, row, {**json.loads(row.data), **changes}, actor=actor, note=note, at=now)
            if made:
                detail["version"] = made["version"]
                detail["fields"] = [c["field"] for c in made["diff"]]
        conn.execute(update(_ITEMS).where(_ITEMS.c.id == item_id).values(
            status=status, deliverable=DELIVERABLE[status], reviewed_by=actor, reviewed_at=now, updated_at=now))
        _event(conn, item_id, status, actor, detail, now)
        out = item_to_dict(_item(conn, item_id))
    _emit(state, out, status, was=detail["from"])
    return out


def approve(state: HitlState, item_id: int, *, actor: str, note: str = "",
            changes: Mapping[str, Any] | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Approve (after applying ``changes`` as a new version, if any): exports include it.
    ``expected_version`` refuses to approve data the reviewer has not seen (``ItemConflict``)."""
    return _decide(state, item_id, "approved", actor=actor, note=note, changes=changes,
                   expected_version=expected_version)


def reject(state: HitlState, item_id: int, *, actor: str, note: str = "") -> dict[str, Any]:
    """Reject: exports leave it out."""
    return _decide(state, item_id, "rejected", actor=actor, note=note, changes=None)


def skip_overdue(state: HitlState, *, now: datetime | None = None, limit: int = 1000) -> int:
    """Skip items whose review deadline passed, in batches of ``limit``; returns how many.

    A held item (``pending_review``) is delivered or dropped as its spider's
    HITL_REVIEW_TIMEOUT_ACTION said when it was stored; an ``optional_review`` one was
    delivered already and stays in exports. The action is in each item's audit trail.
    """
    now = now or utcnow()
    t = _ITEMS.c
    total = 0
    while True:
        with state.db.begin() as conn:
            q = (select(t.id, t.status, t.review_deadline, t.on_timeout)
                 .where(t.status.in_(REVIEW_STATUSES), t.review_deadline < now)
                 .order_by(t.id).limit(limit))
            rows = list(conn.execute(q))
            for row in rows:
                was, deadline = row.status, iso(row.review_deadline)
                action = row.on_timeout if was == "pending_review" else "deliver"
                won = conn.execute(
                    update(_ITEMS)
                    .where(t.id == row.id, t.status == was)
                    .values(status="skipped", deliverable=action == "deliver", updated_at=now)
                ).rowcount
                if won:
                    _event(conn, row.id, "skipped", "system", {"from": was, "action": action, "deadline": deadline},
                           now)
                    total += 1
        if len(rows) < limit:
            break
    if total:
        state.events.emit("item.reviewed", {"action": "skipped", "count": total})
    return total
