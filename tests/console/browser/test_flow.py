"""The reviewer's whole loop in a real browser, against a real crawl of the sandbox site:

log in, start a crawl, see its intervention appear on the dashboard without a reload, open
it, upload a cookies.txt, and watch the run resume and complete. Screenshots of the
dashboard and the intervention page are kept in tests/artifacts/.
"""

from __future__ import annotations

import pytest

from tests.support.crawl import Crawl

pytestmark = pytest.mark.browser

DOMAIN = "vip.sandbox.test"
LONG_MS = 180_000  # hang guard for the crawl's own steps


@pytest.fixture
def start_crawl(hitl_env, sandbox_site, tmp_path):
    sandbox_site.reset()
    started: list[Crawl] = []

    def start() -> Crawl:
        crawl = Crawl(tmp_path, hitl_env, spider="sandbox",
                      args={"base": sandbox_site.url, "sections": "quotes,vip"},
                      settings={"HITL_PAUSE_TIMEOUT": 600, "LOG_LEVEL": "INFO",
                                "HITL_STATS_FLUSH_INTERVAL": 0.5, "HITL_PARK_FLUSH_INTERVAL": 0.02,
                                "HITL_PROGRESS_INTERVAL": 0.2})
        started.append(crawl)
        return crawl

    yield start
    for crawl in started:
        if crawl.proc.poll() is None:
            crawl.proc.kill()
            crawl.proc.wait(timeout=30)


def test_resolve_an_intervention_from_the_browser_and_watch_the_crawl_complete(
        tab, users, start_crawl, tmp_path):
    page = tab.page
    tab.login("reviewer@example.com")
    page.wait_for_selector("#inbox-empty:not([hidden])")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    crawl = start_crawl()
    row = page.wait_for_selector(f'#inbox li[data-domain="{DOMAIN}"]', timeout=LONG_MS)
    page.wait_for_selector('.toast[data-toast-type="intervention.created"]')
    run_row = '#runs-body tr[data-spider="sandbox"]'
    page.wait_for_selector(f'{run_row}[data-run-status="waiting_for_human"]', timeout=LONG_MS)
    page.wait_for_selector(f'#inbox li[data-domain="{DOMAIN}"] [data-field="parked"]:text-is("1 parked")')
    # in words, the codes in small type
    assert "403 Forbidden on vip.sandbox.test" in page.text_content(f'#inbox li[data-domain="{DOMAIN}"] .title')
    assert page.evaluate("window.__sameDocument") is True
    assert row.get_attribute("data-type") == "manual_access"
    tab.screenshot("dashboard")

    page.click(f'#inbox li[data-domain="{DOMAIN}"] .title a')
    page.wait_for_selector('#i-status[data-status="open"]')
    page.frame_locator("#evidence-frame").locator("h1").wait_for()  # the scraped 403 page
    assert page.text_content("#i-domain") == DOMAIN
    assert page.text_content("#i-response-status") == "403"
    tab.screenshot("intervention")

    # A broken export is refused inline, with the line and the fix.
    bad = tmp_path / "broken-cookies.txt"
    bad.write_text(f"# Netscape HTTP Cookie File\n{DOMAIN}\tFALSE\t/\n")
    page.set_input_files("#cookies-file", str(bad))
    page.click("#resolve-cookies")
    error = page.wait_for_selector("#resolve-error:not([hidden])")
    assert "line 2" in error.text_content() and "Fix:" in error.text_content()
    assert page.get_attribute("#i-status", "data-status") == "open"

    good = tmp_path / "cookies.txt"
    good.write_text(f"# Netscape HTTP Cookie File\n{DOMAIN}\tFALSE\t/\tFALSE\t0\tvip_pass\tletmein\n")
    page.set_input_files("#cookies-file", str(good))
    page.fill("#cookies-note", "logged in as the vip tester")
    page.click("#resolve-cookies")
    page.wait_for_selector('#i-status[data-status="resolved"]')
    page.wait_for_selector('#resumed-count:not([data-resumed="0"])', timeout=LONG_MS)
    page.wait_for_selector('#run-status[data-run-status="completed"]', timeout=LONG_MS)
    assert int(page.get_attribute("#resumed-count", "data-resumed")) >= 1
    assert page.is_hidden("#actions")
    assert page.query_selector('#history li[data-action="resolved"]') is not None
    tab.screenshot("intervention-resolved")

    result = crawl.wait(timeout=120)
    assert result.returncode == 0, result.log[-3000:]
    assert result.stats["finish_reason"] == "finished"
    assert len(result.items_in("vip")) == 30  # every vip page, fetched with the cookie
    assert tab.dialogs == [] and tab.errors == []
