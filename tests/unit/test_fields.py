"""Declared fields (scrapy_hitl.fields): parsing, extraction, overrides, bad declarations."""

from __future__ import annotations

import pytest
import scrapy
from scrapy.http import HtmlResponse, Request

from scrapy_hitl import hitl_extract
from scrapy_hitl.fields import Declaration, FieldSpec, FieldsError, declaration_of

LIST_PAGE = b"""<html><body>
<div class="product" data-sku="A1"><h2 class="name">Lamp</h2><span class="price">\xc2\xa312.50</span>
  <a class="tag">home</a><a class="tag">light</a></div>
<div class="product" data-sku="B2"><h2 class="name">Desk</h2><span class="price">\xc2\xa399.00</span></div>
</body></html>"""
DETAIL_PAGE = b"""<html><body><h1 class="title">Lamp</h1><p class="price">Price: 12.50 EUR</p>
<a class="buy" href="/buy/1">buy</a></body></html>"""


def response(body: bytes, url: str = "http://shop.test/list/1", callback=None) -> HtmlResponse:
    return HtmlResponse(url, body=body, encoding="utf-8", request=Request(url, callback=callback))


@pytest.mark.parametrize(("declared", "body", "expected"), [
    pytest.param({"title": "h1.title::text"}, DETAIL_PAGE, {"title": "Lamp"}, id="css-text"),
    pytest.param({"price": {"css": "p.price::text", "re": r"[\d.]+"}}, DETAIL_PAGE, {"price": "12.50"}, id="regex"),
    pytest.param({"buy": "a.buy::attr(href)"}, DETAIL_PAGE, {"buy": "/buy/1"}, id="attribute"),
    pytest.param({"buy": {"xpath": "//a[@class='buy']/@href"}}, DETAIL_PAGE, {"buy": "/buy/1"}, id="xpath"),
    pytest.param({"title": "h1.gone::text"}, DETAIL_PAGE, {"title": None}, id="missing-is-none"),
    pytest.param({"tags": {"css": "a::text", "many": True}}, DETAIL_PAGE, {"tags": ["buy"]}, id="many"),
])
def test_spider_fields_extract_one_dict(declared, body, expected):
    decl = declaration_of(type("S", (), {"hitl_fields": declared}))
    assert decl is not None
    assert decl.extract(response(body).selector) == expected


def test_rows_give_one_dict_per_row_with_relative_fields():
    decl = declaration_of(type("S", (), {"hitl_rows": "div.product", "hitl_fields": {
        "name": "h2.name::text", "price": {"css": ".price::text", "re": r"[\d.]+"},
        "sku": "::attr(data-sku)", "tags": {"css": "a.tag::text", "many": True}}}))
    assert decl.extract(response(LIST_PAGE).selector) == [
        {"name": "Lamp", "price": "12.50", "sku": "A1", "tags": ["home", "light"]},
        {"name": "Desk", "price": "99.00", "sku": "B2", "tags": []},
    ]


@pytest.mark.parametrize(("overrides", "expected"), [
    pytest.param({}, [{"name": "Lamp"}, {"name": "Desk"}], id="none"),
    pytest.param({"name": {"css": "span.price::text"}}, [{"name": "£12.50"}, {"name": "£99.00"}], id="field"),
    pytest.param({"_rows": {"css": "div.product[data-sku=B2]"}}, [{"name": "Desk"}], id="rows"),
    pytest.param({"name": {"css": None, "xpath": ".//@data-sku"}}, [{"name": "A1"}, {"name": "B2"}], id="xpath"),
    pytest.param({"Product.name": {"css": "span.price::text"}}, [{"name": "Lamp"}, {"name": "Desk"}],
                 id="another-declarations-key"),
    pytest.param({"name": {"css": None, "xpath": None}}, [{"name": "Lamp"}, {"name": "Desk"}], id="cleared"),
])
def test_overrides_replace_declared_selectors(overrides, expected):
    decl = Declaration({"name": FieldSpec.parse("name", "h2.name::text")}, "div.product")
    assert decl.with_overrides(overrides).extract(response(LIST_PAGE).selector) == expected


def test_an_override_keeps_the_fields_regex():
    spec = FieldSpec.parse("price", {"css": "p.price::text", "re": r"[\d.]+"})
    moved = spec.with_selector("span.cost::text")
    assert (moved.css, moved.re) == ("span.cost::text", r"[\d.]+")


@pytest.mark.parametrize(("declared", "rows", "message"), [
    pytest.param({"a": 3}, None, "hitl_fields['a'] must be a CSS selector string or a dict", id="not-a-selector"),
    pytest.param({"a": {"css": "x", "xpath": "//x"}}, None, "needs exactly one of 'css' or 'xpath'", id="both"),
    pytest.param({"a": {"cs": "x"}}, None, "unknown keys ['cs']", id="typo"),
    pytest.param({"a": "div[[["}, None, "hitl_fields['a']: CSS selector 'div[[[' does not parse", id="bad-css"),
    pytest.param({"a": {"css": "b", "re": "("}}, None, "'re' does not compile", id="bad-regex"),
    pytest.param({"a": "b"}, "div[", "CSS selector 'div[' does not parse", id="bad-rows"),
    pytest.param(["a"], None, "hitl_fields must be a dict", id="list"),
])
def test_bad_declarations_name_the_field_and_the_fix(declared, rows, message):
    with pytest.raises(FieldsError, match=None) as excinfo:
        declaration_of(type("S", (), {"hitl_fields": declared, "hitl_rows": rows}))
    assert message in str(excinfo.value)


def test_expectation_is_the_rows_else_the_first_css_field():
    assert Declaration({"a": FieldSpec.parse("a", "h1::text")}, "div.row").expectation() == "div.row"
    assert Declaration({"a": FieldSpec.parse("a", "h1.t::text")}).expectation() == "h1.t"
    assert Declaration({"a": FieldSpec.parse("a", {"xpath": "//h1"})}).expectation() is None


class Product(scrapy.Item):
    hitl_rows = "div.product"
    hitl_fields = {"name": "h2.name::text"}
    name = scrapy.Field()


class DeclaringSpider(scrapy.Spider):
    name = "declaring"
    hitl_fields = {"title": "h1.title::text"}

    def parse(self, response):
        return hitl_extract(response)

    def parse_list(self, response):
        return hitl_extract(response, Product)


def test_hitl_extract_finds_the_spider_through_the_callback_without_the_addon():
    spider = DeclaringSpider()
    assert spider.parse(response(DETAIL_PAGE, callback=spider.parse)) == {"title": "Lamp"}
    assert spider.parse_list(response(LIST_PAGE, callback=spider.parse_list)) == [{"name": "Lamp"}, {"name": "Desk"}]


def test_hitl_extract_without_a_spider_or_declaration_says_what_to_do():
    with pytest.raises(FieldsError, match="pass spider=self"):
        hitl_extract(response(DETAIL_PAGE))
    with pytest.raises(FieldsError, match="declares no hitl_fields"):
        hitl_extract(response(DETAIL_PAGE), spider=scrapy.Spider(name="plain"))
    with pytest.raises(FieldsError, match="'dict' declares no hitl_fields"):
        hitl_extract(response(DETAIL_PAGE), dict, spider=DeclaringSpider())
