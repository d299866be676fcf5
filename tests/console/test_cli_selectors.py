"""``hitl selectors`` on the real state layer (in process, CliRunner): list, show, set, revert,
export, and the refusals (exit 1, nothing saved)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hitl_console.cli import main
from scrapy_hitl.state import selectors
from tests.console.test_selectors_api import D, make_fix


def hitl(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_the_whole_life_of_an_override(state):
    make_fix(state)
    code, out = hitl("selectors", "list")
    assert (code, out.strip()) == (0, "No selector overrides in force.")
    code, out = hitl("selectors", "set", "quotes", D, "author", "--css", "span.nothing::text")
    assert code == 1 and "extracts nothing from any of the 2 parked pages" in out and "force" in out
    code, out = hitl("selectors", "set", "quotes", D, "price", "--css", "b")
    assert code == 1 and "declared: _rows, text, author" in out
    code, out = hitl("selectors", "set", "quotes", D, "_rows", "--css", "article.q-card", "--note", "redesign")
    assert (code, out.strip()) == (0, f"_rows of quotes on {D}: v1 article.q-card")
    code, out = hitl("selectors", "set", "quotes", D, "author", "--css", "span.q-author::text")
    assert code == 0, out
    rows = json.loads(hitl("selectors", "list", "--spider", "quotes", "--json")[1])
    assert [(r["field"], r["css"], r["actor"]) for r in rows] == [
        ("_rows", "article.q-card", "cli"), ("author", "span.q-author::text", "cli")]
    code, out = hitl("selectors", "export", "quotes")
    assert code == 0 and f"'{D}': {{" in out and "'author': {'css': 'span.q-author::text'},  # v1" in out
    code, out = hitl("selectors", "revert", "quotes", D, "_rows", "--note", "too early")
    assert (code, out.strip()) == (0, f"_rows of quotes on {D}: v2 (back to the spider declaration)")
    code, out = hitl("selectors", "show", "quotes", D, "_rows")
    assert code == 0 and out.splitlines()[0].startswith("v2 revert article.q-card -> (declared)  by cli at ")
    assert out.splitlines()[1].startswith("v1 set    (declared) -> article.q-card  by cli at ")
    code, out = hitl("selectors", "show", "quotes", D, "text")
    assert code == 1 and "No override of 'text'" in out
    assert list(selectors.in_force(state.db, "quotes")[D]) == ["author"]
