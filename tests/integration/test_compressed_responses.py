"""Compressed responses are judged on their decompressed body.

Scrapy asks for gzip (and deflate, brotli, zstd) and decompresses in HttpCompressionMiddleware,
at 590 on the way back: after the escalation (660) and block (650) middlewares, which then
read compressed bytes, and a gzip-compressed block page was scraped as content. The add-on
moves the decompression to 670 (scrapy_hitl.addon.COMPRESSION_MW_PRIORITY). A real crawl
against a local server that gzips every page: the block page is recognised, and the content
page matches the spider's ``hitl_expect`` (no selector-drift false alarm).
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PAGES = {
    "/blocked": b"<html><head><title>x</title></head><body><p>Request unsuccessful. Incapsula incident ID: "
                b"1234-5678</p></body></html>",
    "/content": b"<html><head><title>Shoes</title></head><body><p class='content'>Red shoes, "
                b"\xe2\x80\x9cfine\xe2\x80\x9d</p></body></html>",
}

CRAWL = """
import json, sys
import scrapy
from scrapy.crawler import CrawlerProcess

class Gz(scrapy.Spider):
    name = "gz"
    hitl_expect = "p.content"
    start_urls = [sys.argv[1] + "/content", sys.argv[1] + "/blocked"]

    def parse(self, response):
        yield {"text": response.css("p::text").get()}

process = CrawlerProcess({"ADDONS": {"scrapy_hitl.Addon": 500}, "LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False,
                          "HITL_TIERS": "static,human", "HITL_PAUSE_TIMEOUT": 2})
crawler = process.create_crawler(Gz)
process.crawl(crawler)
process.start()
stats = crawler.stats.get_stats()
print(json.dumps({k: v for k, v in stats.items() if isinstance(v, (int, str))}))
"""


class _Gzipping(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = gzip.compress(PAGES[self.path])
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def gzip_site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Gzipping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_gzipped_block_page_is_recognised_and_a_gzipped_page_meets_its_expectation(hitl_env, hitl_schema, gzip_site):
    proc = subprocess.run([sys.executable, "-c", CRAWL, gzip_site],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=180, cwd=hitl_env["HITL_DATA_DIR"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats.get("hitl/blocks/imperva_incident") == 1, stats
    assert stats.get("hitl/interventions/created/captcha_solve") == 1, stats
    assert stats.get("item_scraped_count") == 1, stats  # the content page; the block page was parked
    assert not any(k.startswith("hitl/selectors/") or "selector_fix" in k for k in stats), stats
