"""SelectorBook (scrapy_hitl.selectorbook): overrides applied from events, per domain."""

from __future__ import annotations

import pytest
from scrapy.http import HtmlResponse

from scrapy_hitl.fields import Declaration, FieldSpec
from scrapy_hitl.selectorbook import SelectorBook
from scrapy_hitl.state.events import make_event

OLD = b'<html><body><div class="q"><b class="a">Ann</b></div><div class="q"><b class="a">Bo</b></div></body></html>'
NEW = b'<html><body><article class="c"><i class="au">Cy</i></article></body></html>'


def page(body: bytes, host: str = "a.test") -> HtmlResponse:
    return HtmlResponse(f"http://{host}/p/1", body=body, encoding="utf-8")


def event(field, css, *, spider="s", domain="a.test", version=1):
    return make_event("selector.overridden", {"field": field, "css": css, "xpath": None, "version": version},
                      spider=spider, domain=domain)


@pytest.mark.parametrize(("events", "host", "body", "expected"), [
    pytest.param([], "a.test", OLD, [{"author": "Ann"}, {"author": "Bo"}], id="declared"),
    pytest.param([event("_rows", "article.c"), event("author", "i.au::text")], "a.test", NEW, [{"author": "Cy"}],
                 id="overridden"),
    pytest.param([event("_rows", "article.c")], "b.test", OLD, [{"author": "Ann"}, {"author": "Bo"}],
                 id="other-domain-untouched"),
    pytest.param([event("_rows", "article.c", spider="other")], "a.test", OLD, [{"author": "Ann"}, {"author": "Bo"}],
                 id="other-spider-ignored"),
    pytest.param([event("_rows", "article.c"), event("_rows", None, version=2)], "a.test", OLD,
                 [{"author": "Ann"}, {"author": "Bo"}], id="reverted-to-declaration"),
])
def test_events_change_what_the_next_pages_are_read_with(events, host, body, expected):
    book = SelectorBook(None, "s", {}, Declaration({"author": FieldSpec.parse("author", "b.a::text")}, "div.q"))
    book.extract(page(OLD, host), None, None)  # cached before the events: they must invalidate it
    for ev in events:
        book.on_event(ev)
    assert book.extract(page(body, host), None, None) == expected


def test_the_page_expectation_follows_the_rows_override():
    from scrapy import Request

    book = SelectorBook(None, "s", {"a.test": {"_rows": {"css": "article.c", "xpath": None, "version": 3}}},
                        Declaration({"author": FieldSpec.parse("author", "b.a::text")}, "div.q"))
    assert book.expects
    assert book.expect_for(Request("http://a.test/p/2")) == "article.c"
    assert book.expect_for(Request("http://b.test/p/2")) == "div.q"
    assert not SelectorBook(None, "s", {}, None).expects
