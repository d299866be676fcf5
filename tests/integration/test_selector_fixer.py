"""The selector fixer end to end, on real crawls of the sandbox's drift section (issue 19):
a spider with declared fields meets the redesign, its top candidates are the right
selectors, overrides saved and the intervention resolved make the waiting crawl read the
parked pages with them (no code change), and a revert brings the old selector back for the
next pages."""

from __future__ import annotations

from sandbox.content import page_quotes

from tests.integration.conftest import wait_for

SETTINGS = {"HITL_TIERS": "static,human", "HITL_PAUSE_TIMEOUT": 60,
            "SPIDER_MODULES": ["tests.support.field_spiders"]}
FIXES = {"_rows": "article.q-card", "text": "p.q-body::text", "author": "span.q-author::text",
         "tags": "li.q-tag::text", "about": "a.q-link::attr(href)"}


def test_overrides_resume_the_waiting_crawl_and_a_revert_brings_the_old_selector_back(crawl, cli, fresh_sandbox):
    run = crawl(spider="drift_fields", settings=SETTINGS)
    run.wait_for_log("Waiting for a human")
    (i,) = wait_for(lambda: cli.json("interventions", "list"), what="the selector_fix")
    assert (i["type"], i["domain"]) == ("selector_fix", "drift.sandbox.test")
    wait_for(lambda: cli.json("interventions", "list")[0]["parked_count"] == 3, what="pages 3-5 parked")

    found = cli.json("selectors", "suggest", str(i["id"]))
    assert found["broken"] == list(FIXES)
    assert {key: found["fields"][key][0]["css"] for key in found["broken"]} == FIXES
    assert found["fields"]["_rows"][0]["samples"] == [10, 10, 10]  # pages 3, 4, 5: the parked ones

    code, out = cli("selectors", "set", "drift_fields", "drift.sandbox.test", "text", "--css", "p.nothing::text")
    assert code == 1 and "extracts nothing from any of the 3 parked pages" in out  # nothing saved
    for field, css in FIXES.items():
        code, out = cli("selectors", "set", "drift_fields", "drift.sandbox.test", field, "--css", css)
        assert code == 0, out
    code, out = cli("interventions", "resolve", str(i["id"]), "--note", "selectors fixed in the console")
    assert code == 0, out
    result = run.wait()
    assert result.stats["hitl/selectors/applied"] == 5
    assert sorted(result.stats["hitl/selectors/in_force"].split(", ")) == sorted(  # what the run page shows
        f"drift.sandbox.test {field} v1" for field in FIXES)
    by_page: dict[str, list[dict]] = {}
    for item in result.items:
        by_page.setdefault(item["url"].rsplit("/", 1)[1], []).append(item)
    assert sorted(by_page) == ["1", "2", "3", "4", "5", "6"]
    assert all(len(items) == 10 and all(it["text"] and it["author"] for it in items) for items in by_page.values())
    for n in ("3", "6"):  # read with the overrides: the sandbox's own quotes of those pages
        assert [(it["text"], it["author"], it["tags"], it["about"]) for it in by_page[n]] == [
            (q.text, q.author, list(q.tags), f"/drift/detail/{q.id}") for q in page_quotes(int(n))]
    assert result.stats["hitl/selectors/fingerprinted"] >= 1

    code, out = cli("selectors", "revert", "drift_fields", "drift.sandbox.test", "_rows", "--note", "wrong")
    assert code == 0, out
    again = crawl(spider="drift_fields", args={"first": "6", "follow": "0"},
                  settings={**SETTINGS, "HITL_PAUSE_TIMEOUT": 1}).wait()
    assert sorted(again.stats["hitl/selectors/in_force"].split(", ")) == sorted(  # _rows v2: the declaration
        f"drift.sandbox.test {field} v1" for field in FIXES if field != "_rows")
    assert not again.items  # div.quote again: page 6 misses, and waits for a fix
    (j,) = cli.json("interventions", "list")
    assert j["type"] == "selector_fix" and j["id"] != i["id"]
