"""Export writers: flattening, CSV / JSON / JSON lines / XLSX of the same records (XLSX read back
with openpyxl), streaming sources, Excel's limits."""

from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook

from scrapy_hitl.quality import export, xlsx
from scrapy_hitl.quality.export import flatten

RECORDS = [
    {"sku": "A", "price": 12.5, "stock": True, "tags": ["x", "y"],
     "specs": {"weight": {"value": 1.2, "unit": "kg"}, "color": "red"}, "note": None},
    {"sku": "B", "price": 3, "stock": False, "tags": [], "specs": {}, "extra": "  padded  "},
    {"sku": "C & <D>", "name": "Théière \x01 bell", "specs": {"weight": {"value": 2}}, "rows": [{"a": 1}]},
]


@pytest.mark.parametrize(("data", "flat"), [
    ({"a": 1}, {"a": 1}),
    ({"a": {"b": {"c": 1}, "d": None}}, {"a.b.c": 1, "a.d": None}),
    ({"a": {}}, {"a": "{}"}),
    ({"a": [1, "é", {"b": 2}]}, {"a": '[1,"é",{"b":2}]'}),
    ({"a": (1, 2)}, {"a": "[1,2]"}),
    ({"a.b": 1, "a": {"b": 2}}, {"a.b": 2}),  # a dotted key and a nested one collide: the later wins
])
def test_flatten(data, flat):
    assert flatten(data) == flat


def test_columns_are_every_flattened_field_in_first_seen_order():
    assert export.columns(RECORDS) == ["sku", "price", "stock", "tags", "specs.weight.value", "specs.weight.unit",
                                       "specs.color", "note", "specs", "extra", "name", "rows"]


def source(records):
    def read(raw=False):
        return (json.dumps(r, ensure_ascii=False, separators=(",", ":")) if raw else r for r in records)
    return read


def test_every_format_holds_the_same_records(tmp_path):
    out = {}
    for fmt in ("json", "jsonl", "csv"):
        buf = io.StringIO()
        assert export.export_records(source(RECORDS), fmt, buf) == len(RECORDS)
        out[fmt] = buf.getvalue()
    assert export.export_records(source(RECORDS), "xlsx", tmp_path / "t.xlsx") == len(RECORDS)
    assert json.loads(out["json"]) == RECORDS
    assert [json.loads(line) for line in out["jsonl"].splitlines()] == RECORDS

    header = export.columns(RECORDS)
    flat = [flatten(r) for r in RECORDS]
    rows = list(csv.reader(io.StringIO(out["csv"], newline="")))
    assert rows[0] == header
    assert rows[1][:4] == ["A", "12.5", "true", '["x","y"]']
    assert rows[1:] == [[export.csv_cell(f.get(name)) for name in header] for f in flat]

    book = load_workbook(tmp_path / "t.xlsx", read_only=True)
    assert book.sheetnames == ["items"]
    values = list(book["items"].iter_rows(values_only=True))
    assert list(values[0]) == header
    expected = [[f.get(name) for name in header] for f in flat]
    expected[2][header.index("name")] = "Théière  bell"  # a control character XML cannot hold is dropped
    assert [list(v) for v in values[1:]] == expected
    assert values[2][header.index("extra")] == "  padded  "  # spaces kept


def test_empty_run_gives_valid_empty_files(tmp_path):
    for fmt in ("json", "jsonl", "csv"):
        buf = io.StringIO()
        assert export.export_records(source([]), fmt, buf) == 0
    assert json.loads(_export(source([]), "json")) == []
    assert export.export_records(source([]), "xlsx", tmp_path / "e.xlsx") == 0
    assert list(load_workbook(tmp_path / "e.xlsx", read_only=True)["items"].iter_rows(values_only=True)) in ([], [()],
                                                                                                        [(None,)])


def _export(src, fmt):
    buf = io.StringIO()
    export.export_records(src, fmt, buf)
    return buf.getvalue()


def test_sources_are_streamed_not_collected():
    pulled = []

    def read(raw=False):
        for n in range(5):
            pulled.append(n)
            yield json.dumps({"n": n}) if raw else {"n": n}

    buf = io.StringIO()
    gen = read(raw=True)
    export.write_jsonl(gen, buf)
    assert pulled == list(range(5)) and buf.getvalue().count("\n") == 5


def test_xlsx_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 3)  # header + 2 rows per sheet
    long = "x" * (xlsx.MAX_CELL + 10)
    records = [{"n": n, "text": long if n == 0 else str(n), "f": float("nan") if n == 1 else 1.5} for n in range(5)]
    path = tmp_path / "big.xlsx"
    assert export.export_records(source(records), "xlsx", path) == 5
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["items", "items-2", "items-3"]
    rows = [row for name in book.sheetnames for row in book[name].iter_rows(values_only=True)]
    assert rows.count(("n", "text", "f")) == 3
    data = [r for r in rows if r != ("n", "text", "f")]
    assert [r[0] for r in data] == [0, 1, 2, 3, 4]
    assert len(data[0][1]) == xlsx.MAX_CELL and data[0][1].endswith("…")
    assert data[1][2] == "nan"


def test_unknown_format():
    with pytest.raises(ValueError, match="Unknown export format 'xml'"):
        export.export_records(source([]), "xml", io.StringIO())


@pytest.mark.parametrize(("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")])
def test_column_letters(index, letters):
    assert xlsx.column_letter(index) == letters
