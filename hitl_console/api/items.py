"""`/api/v1/items`: the quality gate's review queue, the review actions, and run exports.

Everything the review pages do goes through here, and every write through
:mod:`scrapy_hitl.state.items` (the functions a script would call), so the audit trail and
the versions are the same whoever acts. Edits carry the version they were made against
(``expected_version``): two reviewers on one item cannot silently overwrite each other,
the second gets 409 and reloads.

Exports stream the run's delivered and approved items as they are stored (JSON, JSON
lines) or through a temporary file (CSV, XLSX: their columns come from a first pass, and
XLSX is a zip), so memory stays flat whatever the run's size.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request, send_file, stream_with_context

from hitl_console import api
from hitl_console.auth.guard import require
from hitl_console.bounds import MAX_ID
from hitl_console.errors import ApiError
from scrapy_hitl.quality import export
from scrapy_hitl.state import items as service, runs
from scrapy_hitl.state.models import ITEM_STATUSES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

bp = Blueprint("api_items", __name__)

EXPORT_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_NOTE_MAX = 2000


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a state function, turning its refusals into API errors."""
    try:
        return fn(*args, **kwargs)
    except service.ItemNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except service.ItemConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None


def _queue_filters() -> dict[str, Any]:
    """The list's filters; an empty value (``status=``, as a form sends "any") is no filter."""
    return {"status": api.choice_arg("status", ITEM_STATUSES) if request.args.get("status") else None,
            "run_id": request.args.get("run_id") or None,
            "spider": request.args.get("spider") or None,
            "order": api.choice_arg("order", service.ORDERS) or "id"}


def _note(data: dict[str, Any]) -> str:
    note = data.get("note", "")
    if not isinstance(note, str) or len(note) > _NOTE_MAX:
        raise ApiError(422, "invalid", {"note": f"a string of at most {_NOTE_MAX} characters"})
    return note


def _expected_version(data: dict[str, Any]) -> int | None:
    version = data.get("expected_version")
    if version is not None and (type(version) is not int or not 1 <= version <= MAX_ID):
        raise ApiError(422, "invalid", {"expected_version": "the item's version you edited, an integer >= 1"})
    return version


def _fields(data: dict[str, Any], name: str, *, required: bool) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, dict) or (required and not value):
        raise ApiError(422, "invalid", {name: "an object of field name -> new value"})
    return value


@bp.get("/api/v1/items")
@require()
def list_() -> Any:
    """``?run_id=&status=&spider=&order=id|score&limit=&cursor=``; ``order=score`` is the
    review queue's order, lowest confidence first."""
    filters = _queue_filters()
    arity = 2 if filters["order"] == "score" else 1
    limit, key = api.page_args(arity)
    if key is not None and not all(isinstance(k, (int, float)) and not isinstance(k, bool) for k in key):
        raise ApiError(400, "bad_cursor", "cursor must be a next_cursor value from a previous page")
    cursor = (key if arity == 2 else key[0]) if key else None
    rows = service.list_items(api.state().db, **filters, limit=limit + 1, cursor=cursor)
    if filters["order"] == "score":
        return api.page(rows, limit, key=lambda row: [row["score"], row["id"]])
    return api.page(rows, limit, key=lambda row: [row["id"]])


@bp.get("/api/v1/items/queue")
@require()
def queue() -> Any:
    """What waits for a review, per run and spider (the queue page's live counts)."""
    groups = service.queue(api.state().db, run_id=request.args.get("run_id") or None,
                           spider=request.args.get("spider") or None)
    return jsonify({"items": groups,
                    "pending_review": sum(g["pending_review"] for g in groups),
                    "optional_review": sum(g["optional_review"] for g in groups)})


@bp.get("/api/v1/items/<int:item_id>")
@require()
def detail(item_id: int) -> Any:
    return jsonify(_call(service.get, api.state().db, item_id))


@bp.get("/api/v1/items/<int:item_id>/next")
@require()
def next_(item_id: int) -> Any:
    """The item after this one in a queue (``?status=&run_id=&spider=&order=``, default the
    held items, lowest score first): ``{"item": {...} | null}``."""
    filters = _queue_filters()
    if "status" not in request.args:  # ``status=`` (empty) walks every status
        filters["status"] = "pending_review"
    if "order" not in request.args:
        filters["order"] = "score"
    found = _call(service.next_in_queue, api.state().db, item_id, **filters)
    return jsonify({"item": found})


@bp.patch("/api/v1/items/<int:item_id>")
@require()
def edit(item_id: int) -> Any:
    """``{"data": {field: value}, "replace": false, "expected_version": n, "note": ""}``:
    ``data`` merged into the item (all of it with ``replace``) becomes a new version."""
    data = api.json_object({"data", "replace", "expected_version", "note"})
    changes = _fields(data, "data", required=True)
    replace = data.get("replace", False)
    if not isinstance(replace, bool):
        raise ApiError(422, "invalid", {"replace": "true or false"})
    return jsonify(_call(service.edit, api.state(), item_id, changes, actor=api.actor(), note=_note(data),
                         replace=replace, expected_version=_expected_version(data)))


@bp.post("/api/v1/items/<int:item_id>/approve")
@require()
def approve(item_id: int) -> Any:
    """Optional ``{"data": {...}, "expected_version": n, "note": ""}``: edit and approve in one step."""
    data = api.json_object({"data", "expected_version", "note"}, optional=True)
    changes = _fields(data, "data", required=False)
    return jsonify(_call(service.approve, api.state(), item_id, actor=api.actor(), note=_note(data),
                         changes=changes, expected_version=_expected_version(data)))


@bp.post("/api/v1/items/<int:item_id>/reject")
@require()
def reject(item_id: int) -> Any:
    data = api.json_object({"note"}, optional=True)
    return jsonify(_call(service.reject, api.state(), item_id, actor=api.actor(), note=_note(data)))


@bp.post("/api/v1/items/<int:item_id>/restore")
@require()
def restore(item_id: int) -> Any:
    """``{"version": n, "note": ""}``: that version's data becomes the newest version."""
    data = api.json_object({"version", "note"})
    version = data.get("version")
    if type(version) is not int or not 1 <= version <= MAX_ID:  # past MAX_ID: the column overflows
        raise ApiError(422, "invalid", {"version": "the version to restore, an integer >= 1"})
    return jsonify(_call(service.restore, api.state(), item_id, version, actor=api.actor(), note=_note(data)))


@bp.get("/api/v1/items/<int:item_id>/versions")
@require()
def versions(item_id: int) -> Any:
    """Every version, oldest first, each with who, when and its field-level diff."""
    return jsonify({"items": _call(service.versions, api.state().db, item_id)})


@bp.get("/api/v1/items/<int:item_id>/history")
@require()
def history(item_id: int) -> Any:
    """The audit trail: edited, restored, approved, rejected, skipped."""
    _call(service.get, api.state().db, item_id)
    return jsonify({"items": service.history(api.state().db, item_id)})


@bp.get("/api/v1/runs/<run_id>/quality")
@require()
def run_quality(run_id: str) -> Any:
    """The run's items per status and the histogram of their scores (tenths, 0.0-0.1 first)."""
    db = api.state().db
    if runs.get_run(db, run_id) is None:
        raise ApiError(404, "not_found", f"no run {run_id}")
    return jsonify({"run_id": run_id, "counts": service.counts(db, run_id),
                    "score_histogram": service.score_histogram(db, run_id)})


@bp.get("/api/v1/runs/<run_id>/items.<fmt>")
@require()
def run_export(run_id: str, fmt: str) -> Any:
    """The run's delivered and approved items, at their latest version, as a download."""
    if fmt not in EXPORT_TYPES:
        raise ApiError(404, "not_found", f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_TYPES)}")
    db = api.state().db
    if runs.get_run(db, run_id) is None:
        raise ApiError(404, "not_found", f"no run {run_id}")
    name = f"{run_id}.{fmt}"
    if fmt in ("json", "jsonl"):
        response = Response(stream_with_context(_stream_json(db, run_id, fmt)), mimetype=EXPORT_TYPES[fmt])
    else:
        response = _from_temp_file(db, run_id, fmt)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _stream_json(db: Any, run_id: str, fmt: str) -> Iterator[bytes]:
    """The same bytes ``export.write_json``/``write_jsonl`` write, a batch at a time."""
    chunk: list[str] = []
    first = True
    if fmt == "json":
        chunk.append("[")
    for text in service.iter_export(db, run_id, raw=True):
        if fmt == "jsonl":
            chunk.append(text + "\n")
        else:
            chunk.append(("\n" if first else ",\n") + text)
        first = False
        if len(chunk) >= 500:
            yield "".join(chunk).encode()
            chunk = []
    if fmt == "json":
        chunk.append("\n]\n" if not first else "]\n")
    yield "".join(chunk).encode()


def _from_temp_file(db: Any, run_id: str, fmt: str) -> Response:
    """CSV and XLSX are written to a temporary file first (two passes; a zip), then sent
    from it; the file is deleted as soon as it is open (POSIX keeps it readable)."""
    fd, path = tempfile.mkstemp(prefix="hitl-export-", suffix=f".{fmt}")
    try:
        if fmt == "csv":
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                export.export_run(db, run_id, fmt, out)
        else:
            os.close(fd)
            export.export_run(db, run_id, fmt, path)
        handle = open(path, "rb")  # noqa: SIM115 -- send_file closes it
    finally:
        os.unlink(path)
    return send_file(handle, mimetype=EXPORT_TYPES[fmt], max_age=0)
