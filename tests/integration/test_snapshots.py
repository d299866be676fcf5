"""Error snapshots with a real crawl: one per distinct failure per domain, with its page."""

from __future__ import annotations

from hitl_console.server import free_port
from scrapy_hitl.state import snapshots

SPIDER_MODULES = ["demo.spiders", "tests.support.spiders", "tests.support.failing_spiders"]


def test_the_first_failure_of_each_kind_keeps_its_page(crawl, state):
    result = crawl(spider="failing", args={"down": str(free_port(0))},
                   settings={"SPIDER_MODULES": SPIDER_MODULES, "HITL_PAUSE_TIMEOUT": 1}).wait()
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["spider_exceptions/ValueError"] == 2  # each kind happened twice (but KeyError)

    kept = snapshots.list_for_run(state.db, result.stats["hitl/run_id"])
    by_kind = {(s["domain"], s["source"], s["code"]): s for s in kept}
    assert sorted(by_kind) == [
        ("down.sandbox.test", "download_error", "DownloadConnectionRefusedError"),
        ("quotes.sandbox.test", "fail", "http_404"),
        ("quotes.sandbox.test", "spider_error", "KeyError"),
        ("quotes.sandbox.test", "spider_error", "ValueError"),
        ("vip.sandbox.test", "pause", "http_403"),
    ]
    assert result.stats["hitl/snapshots/kept"] == 5
    for kind, snapshot in by_kind.items():
        assert "screenshot" not in snapshot["files"]  # a static tier takes none
        if kind[1] == "download_error":
            assert snapshot["files"] == {} and snapshot["status"] is None  # no response, no page
            continue
        content_type, html = snapshots.load(state.db, snapshot["run_id"], snapshot["id"], "html")
        assert content_type.startswith("text/html") and len(html) == snapshot["files"]["html"]["size"]
    value_error = by_kind[("quotes.sandbox.test", "spider_error", "ValueError")]
    # Pages 1 and 2 both raise it and are fetched concurrently: whichever failed first is kept.
    assert value_error["url"].rsplit("/", 1)[1] in {"1", "2"}, value_error["url"]
    assert value_error["message"] == f"no price on {value_error['url']}"
    _, html = snapshots.load(state.db, value_error["run_id"], value_error["id"], "html")
    assert b"div class=\"quote\"" in html
    _, forbidden = snapshots.load(state.db, value_error["run_id"], by_kind[("vip.sandbox.test", "pause", "http_403")]["id"], "html")
    assert b"403" in forbidden
