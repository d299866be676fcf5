"""Selector suggestions (scrapy_hitl.suggest, scrapy_hitl.fingerprints): from the fingerprints
of a good page, the right element of a changed page ranks first."""

from __future__ import annotations

import pytest
from parsel import Selector

from scrapy_hitl.fields import Declaration, FieldSpec
from scrapy_hitl.fingerprints import class_words, fingerprint, similarity, text_shape
from scrapy_hitl.selectorbook import sample_fingerprints
from scrapy_hitl.suggest import suggest

# (name, before, after, field selector, expected value on the after page)
PAIRS = [
    ("class-renamed", '<div><span class="price">£12.50</span><span class="stock">In stock</span></div>',
     '<div><span class="product-price">£14.00</span><span class="stock">In stock</span></div>',
     "span.price::text", "£14.00"),
    ("class-renamed-prefix", '<p><small class="author">Jane Austen</small> <a href="/x">about</a></p>',
     '<p><small class="q-author">Mark Twain</small> <a href="/y">about</a></p>', "small.author::text", "Mark Twain"),
    ("tag-and-class-changed", '<main><h1 class="title">A lamp</h1><p class="desc">Bright and small.</p></main>',
     '<main><h2 class="product-title">A desk</h2><p class="desc">Wide and oak.</p></main>',
     "h1.title::text", "A desk"),
    ("wrapper-added", '<main><span class="price">£3.10</span><p>Some text here.</p></main>',
     '<main><div class="box"><span class="price-now">£4.20</span></div><p>Some text here.</p></main>',
     "span.price::text", "£4.20"),
    ("wrapper-added-keeps-class", '<section><b class="sku">SKU-0001</b><i>note</i></section>',
     '<section><div class="wrap"><b class="sku">SKU-0002</b></div><i>note</i></section>', "section > b.sku::text",
     "SKU-0002"),
    ("attribute-moved-to-itemprop", '<div><span class="author">Ada Lovelace</span><span class="date">1843</span></div>',
     '<div><span itemprop="author">Alan Turing</span><span class="date">1950</span></div>',
     "span.author::text", "Alan Turing"),
    ("class-moved-to-data", '<ul><li class="rating">4.5</li><li class="count">120 reviews</li></ul>',
     '<ul><li data-rating="1">3.9</li><li class="count">98 reviews</li></ul>', "li.rating::text", "3.9"),
    ("sibling-reordered", '<div><span class="name">Lamp</span><span class="price">£9.99</span><em>new</em></div>',
     '<div><em>new</em><span class="cost">£7.49</span><span class="name">Desk</span></div>',
     "span.price::text", "£7.49"),
    ("sibling-reordered-date", '<article><time class="when">2024-01-02</time><h3 class="t">Hello</h3></article>',
     '<article><h3 class="t">World</h3><span class="stamp">2025-03-04</span></article>',
     "time.when::text", "2025-03-04"),
    ("id-to-class", '<div><span id="total">£100.00</span><span>tax</span></div>',
     '<div><span class="total-amount">£120.00</span><span>tax</span></div>', "span#total::text", "£120.00"),
    ("link-attribute", '<nav><a class="next" href="/p/2">Next</a><a class="prev" href="/p/0">Prev</a></nav>',
     '<nav><a class="pager-prev" href="/p/1">Previous</a><a class="pager-next" href="/p/3">Next page</a></nav>',
     "a.next::attr(href)", "/p/3"),
    ("deeper-nesting", '<div class="card"><p class="body">Long text of a quote here.</p></div>',
     '<div class="card"><div class="inner"><div><p class="card-body">Another long quote text.</p></div></div></div>',
     "p.body::text", "Another long quote text."),
]


def page(body: str) -> str:
    return f"<html><body><header><a href='/'>Home</a></header>{body}<footer>© shop</footer></body></html>"


def test_the_right_element_ranks_first_in_at_least_90_percent_of_changed_pages():
    right, wrong = 0, []
    for name, before, after, css, expected in PAIRS:
        decl = Declaration({"f": FieldSpec.parse("f", css)})
        known = sample_fingerprints(decl, Selector(text=page(before)))
        assert "f" in known, name
        found = suggest(decl, [page(after)], known)
        assert found["broken"] == ["f"], name
        top = found["fields"]["f"][0] if found["fields"]["f"] else None
        if top is not None and top["samples"] == [expected]:
            right += 1
        else:
            wrong.append((name, top))
    assert right / len(PAIRS) >= 0.9, wrong


def test_sandbox_drift_section_top_candidates_are_the_right_selectors():
    from sandbox.content import page_quotes
    from sandbox.pages import quote_list_page

    from tests.support.field_spiders import DriftFieldsSpider  # the spider the real crawls use

    decl = Declaration({k: FieldSpec.parse(k, v) for k, v in DriftFieldsSpider.hitl_fields.items()}, "div.quote")
    known = sample_fingerprints(decl, Selector(text=quote_list_page("drift", 1, 6, 2).decode()))
    parked = [quote_list_page("drift", n, 6, 2).decode() for n in (3, 4, 5)]
    found = suggest(decl, parked, known, good=quote_list_page("drift", 1, 6, 2).decode())
    assert found["broken"] == ["_rows", "text", "author", "tags", "about"]  # every field of the section
    top = {key: found["fields"][key][0] for key in found["broken"]}
    assert {key: t["css"] for key, t in top.items()} == {
        "_rows": "article.q-card", "text": "p.q-body::text", "author": "span.q-author::text",
        "tags": "li.q-tag::text", "about": "a.q-link::attr(href)"}
    assert top["_rows"]["samples"] == [10, 10, 10]
    assert top["tags"]["samples"][0] == list(page_quotes(3)[0].tags)
    rows = Selector(text=parked[0]).css("article.q-card")
    assert top["author"]["samples"][0] == rows[0].css("span.q-author::text").get()
    assert "xpath" in top["text"] and top["text"]["xpath"].endswith("/text()")


@pytest.mark.parametrize(("value", "shape"), [
    ("£12.34", "£9.9"), ("In stock", "Aa a"), ("  2024-01-02 ", "9-9-9"), ("", ""),
])
def test_text_shape(value, shape):
    assert text_shape(value) == shape


@pytest.mark.parametrize(("classes", "words"), [
    ("q-author big", ["author", "big", "q"]), (None, []), ("productPrice2", ["productprice"]),
])
def test_class_words(classes, words):
    assert class_words(classes) == words


def test_similarity_is_one_for_the_same_element_and_lower_for_another():
    sel = Selector(text=page('<div><span class="price">£1.00</span><span class="stock">In stock</span></div>'))
    price, stock = (fingerprint(s.root) for s in sel.css("span"))
    assert similarity(price, price) == pytest.approx(1.0)
    assert similarity(price, stock) < 0.8
