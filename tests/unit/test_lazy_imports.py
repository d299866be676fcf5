"""A static crawl with the add-on does not import what only other crawls need (issue 14).

The browser (scrapy-playwright, Playwright) is imported by the first browser-tier request,
Alembic only when the schema is not at head, itemadapter (and with it pydantic) by the first
item that is not a dict, the console's modules never, and the public suffix list (6 MB) only
once the crawl has sessions, whose cookies need it. The state layer works on the crawler's Core
tables (``state.tables``): it imports no ORM class and not SQLAlchemy's ORM itself
(``state.crawler_models``, ``sqlalchemy.orm``), not the console's models (``state.models``),
not the ones of interventions and error snapshots before the first block or error
(``state.incident_models``), and not SQLAlchemy's PostgreSQL dialect on SQLite. Nor does it
import the vault's cookie parsers and Fernet before a session is stored or loaded, the
``statistics`` module, or the login-page host before the run's first intervention. Each of them
costs every crawl start-up time and memory. One real crawl, in a fresh interpreter (a
test process has imported everything already): the add-on with its default ladder (the
browser tiers included) fetches one static page from the sandbox, then the process reports
which of those modules it loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

NOT_IMPORTED = ("playwright", "scrapy_playwright", "playwright_stealth", "alembic", "flask", "hitl_console",
                "scrapy_hitl.browser.pool", "scrapy_hitl.live.screencast",
                "pydantic",  # itemadapter imports it, and the quality gate needs neither for dict items
                "sqlalchemy.orm",  # 0.05 s and 5.6 MB; a static crawl's state work is Core statements
                "scrapy_hitl.state.crawler_models",  # the ORM classes of the crawler's tables (0.04 s, 2 MB)
                "scrapy_hitl.state.models",  # every model: the console's too (0.07 s to map them)
                "scrapy_hitl.state.incident_models",  # interventions, snapshots: the first block or error
                "sqlalchemy.dialects.postgresql",  # 0.03 s; a partial index's option loaded it on SQLite
                # the vault's cookie parsers and Fernet: the first session stored or loaded (0.2 MB)
                "scrapy_hitl.cookies", "scrapy_hitl.state.crypto", "cryptography.fernet",
                "statistics",  # (with fractions) 0.2 MB for one median: quality.consistency.median
                # the crawl's login-page host: the run's first intervention (runtime.on_first_intervention)
                "scrapy_hitl.live.login", "scrapy_hitl.live.relay",
                "scrapy_hitl.state.spill",  # what a Redis outage left on disk: only when its folder exists
                "scrapy_hitl.state.redis_binary")  # which redis-server, and its AOF check: the embedded one only

CRAWL = """
import json, sys
import scrapy
from scrapy.crawler import CrawlerProcess

class One(scrapy.Spider):
    name = "one"
    start_urls = [sys.argv[1]]

    def parse(self, response):
        yield {"title": response.css("title::text").get()}

process = CrawlerProcess({"ADDONS": {"scrapy_hitl.Addon": 500}, "LOG_LEVEL": "WARNING",
                          "TELNETCONSOLE_ENABLED": False})
crawler = process.create_crawler(One)
process.crawl(crawler)
process.start()
stats = crawler.stats.get_stats()
cookies = sys.modules.get("scrapy.downloadermiddlewares.cookies")
# tldextract reads the public suffix list on the first lookup, into TLDExtract._extractor
suffix_list = cookies is not None and cookies._split_domain._extractor is not None
print(json.dumps({"suffix_list": suffix_list, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in
                                   ("playwright", "scrapy_playwright", "playwright_stealth", "alembic", "flask",
                                    "hitl_console", "pydantic") or m in {names!r}),
                  "items": stats.get("item_scraped_count", 0), "tiers": crawler.settings.getlist("HITL_TIERS")}))
"""


@pytest.fixture(scope="module")
def one_page_site():
    from sandbox.control import SandboxServer

    with SandboxServer(static_pages=1) as server:
        yield server


@pytest.mark.parametrize("schema", ["at head", "new database"])
def test_a_static_crawl_loads_no_browser_alembic_or_console(hitl_env, hitl_schema, one_page_site, schema):
    if schema == "new database":  # created by the crawl itself: then Alembic has work to do
        Path(hitl_env["HITL_DATABASE_URL"].removeprefix("sqlite:///")).unlink()
    script = CRAWL.replace("{names!r}", repr(set(NOT_IMPORTED)))
    proc = subprocess.run([sys.executable, "-c", script, f"{one_page_site.url}/static/page/1"],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120, cwd=hitl_env["HITL_DATA_DIR"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["items"] == 1
    assert {"browser", "stealth"} <= set(report["tiers"])  # the browser tiers are in the ladder
    assert report["suffix_list"] is False  # only sessions' cookies need it (HitlRuntime._warm_cookie_domains)
    if schema == "at head":
        assert report["loaded"] == []
    else:  # migrations need Alembic (and its env every model; 0001 names PostgreSQL options):
        # still nothing of the browser or the console
        assert "alembic" in report["loaded"]
        assert [m for m in report["loaded"] if m.split(".")[0] != "alembic" and not m.startswith(
            ("scrapy_hitl.state.models", "scrapy_hitl.state.incident_models", "scrapy_hitl.state.crawler_models",
             "sqlalchemy.dialects.postgresql", "sqlalchemy.orm"))] == []


def test_the_spill_folder_the_runtime_looks_for_is_the_one_spill_writes():
    from scrapy_hitl import runtime
    from scrapy_hitl.state import spill

    assert runtime._SPILL_DIRNAME == spill.DIRNAME
