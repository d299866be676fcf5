"""The selector fixer in a real browser, against a real crawl of the sandbox's drift section
(issue 19): a reviewer opens the fixer from the intervention, picks the new row and the new
author element in the parked page, accepts a suggestion for the text, sees the preview on
every parked page, saves, resolves; the waiting crawl reads the parked pages with the new
selectors, no code change. At 390 px too. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import pytest

from tests.support.crawl import Crawl

pytestmark = pytest.mark.browser

DOMAIN = "drift.sandbox.test"
LONG_MS = 180_000  # hang guard for the crawl's own steps


@pytest.fixture(scope="module")
def drift_site():
    from sandbox.control import SandboxServer

    server = SandboxServer(pages=5, drift_after=2)  # pages 3, 4, 5 have the new markup
    server.start()
    yield server
    server.stop()


@pytest.fixture
def crawl(hitl_env, drift_site, tmp_path):
    drift_site.reset()
    run = Crawl(tmp_path, hitl_env, spider="drift_fields", args={"base": drift_site.url},
                settings={"HITL_TIERS": "static,human", "HITL_PAUSE_TIMEOUT": 600, "LOG_LEVEL": "INFO",
                          "SPIDER_MODULES": ["tests.support.field_spiders"], "HITL_STATS_FLUSH_INTERVAL": 0.5,
                          "HITL_PARK_FLUSH_INTERVAL": 0.02})
    yield run
    if run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait(timeout=30)


def field(key: str) -> str:
    return f'.fx-field[data-key="{key}"]'


def pick(page, key: str, target: str) -> None:
    page.click(f"{field(key)} .fx-pick")
    page.wait_for_selector(f'{field(key)}[data-picking="true"]')
    page.frame_locator("#fx-frame").locator(target).first.click()
    page.wait_for_selector(f"{field(key)} .fx-picked")


def test_a_reviewer_fixes_the_selectors_in_the_browser_and_the_crawl_resumes(tab, users, crawl, state):
    from sandbox.content import page_quotes

    from scrapy_hitl.state import interventions

    page = tab.page
    tab.login("reviewer@example.com")
    crawl.wait_for_log("Waiting for a human", timeout=120)
    (i,) = interventions.list_interventions(state, status="open", limit=5)
    assert i["type"] == "selector_fix"
    page.goto(f"{tab.base_url}/interventions/{i['id']}")
    page.click("#open-fixer")
    page.wait_for_selector('#fixer[data-ready="true"]')
    assert page.get_attribute(field("_rows"), "data-broken") == "true"
    page.frame_locator("#fx-frame").locator("article.q-card").first.wait_for()  # the parked page, sandboxed
    assert len(page.query_selector_all("#fx-tabs button")) == 4  # 3 parked pages and the good one

    pick(page, "_rows", "span.q-author")  # a click inside a card picks the card
    assert page.input_value(f"{field('_rows')} .fx-input") == "article.q-card"
    page.wait_for_selector(f'{field("_rows")} .fx-preview tr[data-matched="true"] >> nth=2')
    page.click(f"{field('_rows')} .fx-save")
    page.wait_for_selector(f'{field("_rows")}[data-saved="1"]')

    pick(page, "author", "span.q-author")
    assert page.input_value(f"{field('author')} .fx-input") == "span.q-author::text"
    page.wait_for_selector(f'{field("author")}[data-matches="3"]')  # the preview: every parked page
    page.wait_for_selector('#fx-frame[data-marked="10"]')  # and the 10 authors outlined in the page
    assert page.frame_locator("#fx-frame").locator("span.q-author[data-hitl-mark]").count() == 10
    first_author = page_quotes(3)[0].author
    assert first_author in page.text_content(f'{field("author")} .fx-preview tbody tr >> nth=0')
    page.click(f"{field('author')} .fx-save")
    page.wait_for_selector(f'{field("author")}[data-saved="1"]')

    page.click(f'{field("text")} .fx-suggestion >> nth=0')  # accept the top suggestion
    assert page.input_value(f"{field('text')} .fx-input") == "p.q-body::text"
    page.wait_for_selector(f'{field("text")}[data-matches="3"]')
    page.click(f"{field('text')} .fx-save")
    page.wait_for_selector(f'{field("text")}[data-saved="1"]')
    page.click(f"{field('text')} .fx-revert")  # undo: the declaration is back (v2), then save again (v3)
    page.wait_for_selector(f'{field("text")}[data-saved="2"]')
    assert page.input_value(f"{field('text')} .fx-input") == "span.text::text"
    page.click(f'{field("text")} .fx-suggestion >> nth=0')
    page.wait_for_selector(f'{field("text")}[data-matches="3"]')
    page.click(f"{field('text')} .fx-save")
    page.wait_for_selector(f'{field("text")}[data-saved="3"]')
    for key, css in (("tags", "li.q-tag::text"), ("about", "a.q-link::attr(href)")):  # one click each
        page.click(f'{field(key)} .fx-suggestion >> nth=0')
        assert page.input_value(f"{field(key)} .fx-input") == css
        page.wait_for_selector(f'{field(key)}[data-matches="3"]')
        page.click(f"{field(key)} .fx-save")
        page.wait_for_selector(f'{field(key)}[data-saved="1"]')
    tab.screenshot("selector-fixer")

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    tab.screenshot("selector-fixer-390")

    page.click("#fx-resolve")
    page.wait_for_selector('#fx-resolved[data-resumed="3"]')
    result = crawl.wait(timeout=120)
    assert result.returncode == 0, result.log[-3000:]
    got = {(it["url"].rsplit("/", 1)[1], it["text"], it["author"], tuple(it["tags"]), it["about"]) for it in result.items}
    for n in (1, 3, 5):
        assert {(str(n), q.text, q.author, q.tags, f"/drift/detail/{q.id}") for q in page_quotes(n)} <= got
    assert len(result.items) == 50

    # The Selectors page: the overrides in force, a field's history, a revert (asked once).
    page.goto(f"{tab.base_url}/selectors")
    page.wait_for_selector('#sel-body tr[data-field="_rows"][data-version="1"]')
    assert len(page.query_selector_all("#sel-body tr")) == 5
    page.click('#sel-body tr[data-field="text"] button[data-history]')
    page.wait_for_selector('#hist-list li[data-version="3"]')
    assert [li.get_attribute("data-action") for li in page.query_selector_all("#hist-list li")] == [
        "set", "revert", "set"]
    page.click('#sel-body tr[data-field="author"] button[data-revert]')
    page.click("#confirm-yes")
    page.wait_for_selector('#sel-body tr[data-field="author"]', state="detached")  # back to the spider's own
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    tab.screenshot("selectors-390")
    assert tab.dialogs == [] and tab.errors == []
