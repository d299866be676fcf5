"""A run's approved and delivered items as JSON, JSON lines, CSV or XLSX, streamed.

Rows come from ``state.items.iter_export`` (a server-side cursor, ``yield_per``), each
written as it arrives, so memory stays flat however big the run.

- **jsonl**: one item per line, exactly as stored (no re-encoding).
- **json**: one array, one item per line.
- **csv** / **xlsx**: one row per item, one column per *flattened* field. Nested objects
  become dotted columns (``{"price": {"amount": 3}}`` -> ``price.amount``); an empty object
  is ``{}`` in its own column; lists, of anything, are one cell holding their JSON
  (``["a","b"]``). Columns are every flattened field of the run, in the order they were
  first seen, so CSV and XLSX need two passes over the items (the first only collects
  column names). Empty cells are missing fields or null. CSV cells: strings as is, numbers
  as Python prints them, ``true`` / ``false``. XLSX cells keep numbers and booleans as such
  (``xlsx.py`` writes the file); a string over Excel's 32,767 characters is cut (ending in
  ``…``); past 1,048,575 items a new sheet (``items-2``, ...) starts with the header again.
"""

from __future__ import annotations

import csv
import json
from typing import IO, TYPE_CHECKING, Any

from scrapy_hitl.quality.xlsx import XlsxTableWriter
from scrapy_hitl.state import items as items_service

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from pathlib import Path

    from scrapy_hitl.state.db import Database

FORMATS = ("json", "jsonl", "csv", "xlsx")


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [1, 2]}`` -> ``{"a.b": 1, "c": "[1,2]"}`` (see the module doc)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if value:
                out.update(flatten(value, name + "."))
            else:
                out[name] = "{}"
        elif isinstance(value, (list, tuple)):
            out[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        else:
            out[name] = value
    return out


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else str(value)


def columns(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every flattened field, in first-seen order."""
    return scan(records)[0]


def scan(records: Iterable[Mapping[str, Any]]) -> tuple[list[str], int]:
    """(every flattened field in first-seen order, how many records)."""
    seen: dict[str, None] = {}
    n = 0
    for record in records:
        n += 1
        _collect(record, "", seen)
    return list(seen), n


def _collect(data: Mapping[str, Any], prefix: str, seen: dict[str, None]) -> None:
    """The names ``flatten`` would give, without building its values (the first pass)."""
    for key, value in data.items():
        if isinstance(value, dict) and value:
            _collect(value, f"{prefix}{key}.", seen)
        else:
            name = f"{prefix}{key}" if prefix else key
            if name not in seen:
                seen[name] = None


def write_jsonl(raw: Iterable[str], out: IO[str]) -> int:
    n = 0
    for text in raw:
        out.write(text)
        out.write("\n")
        n += 1
    return n


def write_json(raw: Iterable[str], out: IO[str]) -> int:
    n = 0
    out.write("[")
    for text in raw:
        out.write(",\n" if n else "\n")
        out.write(text)
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def row_of(record: Mapping[str, Any], index: Mapping[str, int], width: int, *, csv_values: bool = False) -> list[Any]:
    """``[flatten(record).get(name) for name in header]`` without building the flat dict
    (``index``: column name -> position). ``csv_values``: booleans as ``true`` / ``false``
    (csv.writer writes None as an empty cell and everything else with ``str``)."""
    row: list[Any] = [None] * width
    _fill(record, "", row, index, csv_values)
    return row


def _fill(data: Mapping[str, Any], prefix: str, row: list[Any], index: Mapping[str, int], csv_values: bool) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}" if prefix else key
        kind = type(value)
        if kind is dict or isinstance(value, dict):
            if value:
                _fill(value, name + ".", row, index, csv_values)
                continue
            value = "{}"
        elif kind is list or kind is tuple:
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        elif kind is bool and csv_values:
            value = "true" if value else "false"
        col = index.get(name)
        if col is not None:
            row[col] = value


def write_csv(records: Iterable[Mapping[str, Any]], header: list[str], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(header)
    index, width = {name: i for i, name in enumerate(header)}, len(header)
    n = 0
    for record in records:
        writer.writerow(row_of(record, index, width, csv_values=True))
        n += 1
    return n


def write_xlsx(records: Iterable[Mapping[str, Any]], header: list[str], path: str | Path,
               expected_rows: int | None = None) -> int:
    """One sheet ``items`` (``items-2``, ... past Excel's row limit), the header row frozen."""
    index, width = {name: i for i, name in enumerate(header)}, len(header)
    with XlsxTableWriter(path, header, expected_rows=expected_rows) as writer:
        for record in records:
            writer.write(row_of(record, index, width))
        return writer.rows


def export_run(db: Database, run_id: str, fmt: str, out: IO[str] | str | Path) -> int:
    """Write the run's exportable items in ``fmt`` to ``out`` (a text stream for json, jsonl
    and csv; a path for xlsx, which is a zip file). Returns how many were written."""
    return export_records(lambda raw=False: items_service.iter_export(db, run_id, raw=raw), fmt, out)


def export_records(source: Callable[..., Iterator[Any]], fmt: str, out: IO[str] | str | Path) -> int:
    """The writers over any ``source(raw=False)``: an iterable of records (or of their JSON
    text with ``raw=True``) that can be read twice. Used by ``export_run`` and the tests."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        return write_jsonl(source(raw=True), out)  # type: ignore[arg-type]
    if fmt == "json":
        return write_json(source(raw=True), out)  # type: ignore[arg-type]
    header, count = scan(source())
    if fmt == "csv":
        return write_csv(source(), header, out)  # type: ignore[arg-type]
    return write_xlsx(source(), header, out, expected_rows=count)  # type: ignore[arg-type]
