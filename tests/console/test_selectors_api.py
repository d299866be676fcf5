"""`/api/v1/selectors` and an intervention's selector fixer: answers, refusals, the sandboxed page."""

from __future__ import annotations

import pytest

from scrapy_hitl.fields import Declaration, FieldSpec
from scrapy_hitl.selectorbook import sample_fingerprints
from scrapy_hitl.state import interventions, selectors
from scrapy_hitl.suggest import elements

D = "drift.example"
OLD = ('<html><head><script>steal()</script></head><body><main><div class="quote"><span class="text">“A”</span>'
       '<small class="author">Ann</small></div><div class="quote"><span class="text">“B”</span>'
       '<small class="author">Bea</small></div></main></body></html>')
NEW = ('<html><head><meta http-equiv="refresh" content="0;url=http://evil.test/"><script>steal()</script></head>'
       '<body onload="steal()"><main><article class="q-card"><p class="q-body">“C”</p><span class="q-author">Cy</span>'
       '</article><article class="q-card"><p class="q-body">“D”</p><span class="q-author">Di</span></article>'
       '</main></body></html>')
DECL = Declaration({"text": FieldSpec.parse("text", "span.text::text"),
                    "author": FieldSpec.parse("author", "small.author::text")}, "div.quote")


@pytest.fixture
def fix(hitl):
    return make_fix(hitl)


def make_fix(hitl) -> int:
    """A selector_fix intervention with two parked pages, a good page and fingerprints."""
    from parsel import Selector

    selectors.publish_declaration(hitl.db, "quotes", {"": DECL.to_dict()})
    selectors.save_page(hitl.db, "quotes", D, "/p/{n}", "good", "http://drift.example/p/1", OLD.encode())
    urls = [f"http://drift.example/p/{n}" for n in (3, 4)]
    for url in urls:
        selectors.save_page(hitl.db, "quotes", D, "/p/{n}", "missed", url, NEW.encode())
    selectors.save_fingerprints(hitl.db, "quotes", D, "/p/{n}", sample_fingerprints(DECL, Selector(text=OLD)))
    data, _ = interventions.open_or_update(hitl, type="selector_fix", reason="selector_missing", domain=D,
                                           spider="quotes", url=urls[-1],
                                           evidence={"pattern": "/p/{n}", "pages": urls})
    return data["id"]


def test_suggestions_rank_the_new_elements_first(client, reviewer, fix):
    found = client.get(f"/api/v1/interventions/{fix}/selector-suggestions", headers=reviewer).json
    assert found["broken"] == ["_rows", "text", "author"]
    assert {k: v[0]["css"] for k, v in found["fields"].items()} == {
        "_rows": "article.q-card", "text": "p.q-body::text", "author": "span.q-author::text"}
    assert found["fields"]["author"][0]["samples"] == ["Cy", "Cy"]


def test_save_preview_pick_and_revert(client, reviewer, fix, hitl):
    bad = client.post("/api/v1/selectors", headers=reviewer, json={
        "spider": "quotes", "domain": D, "field": "_rows", "css": "table.none"})
    assert (bad.status_code, bad.json["error"]) == (422, "matches_nothing")
    saved = client.post("/api/v1/selectors", headers=reviewer, json={
        "spider": "quotes", "domain": D, "field": "_rows", "css": "article.q-card", "intervention_id": fix})
    assert saved.status_code == 201 and saved.json["actor"] == "console:reviewer@example.com"
    shown = client.post(f"/api/v1/interventions/{fix}/selector-preview", headers=reviewer,
                        json={"field": "author", "css": "span.q-author::text"}).json
    assert [p["values"] for p in shown["pages"]] == [["Cy", "Di"], ["Cy", "Di"]]
    _, els = elements(NEW)
    index = next(i for i, e in enumerate(els) if e.get("class") == "q-author")
    page_id = selectors.pages(hitl.db, "quotes", D, "missed")[0]["id"]
    picked = client.post(f"/api/v1/interventions/{fix}/selector-pick", headers=reviewer,
                         json={"field": "author", "page_id": page_id, "index": index}).json
    assert picked["selectors"][0] == "span.q-author::text"
    listed = client.get("/api/v1/selectors?spider=quotes", headers=reviewer).json["items"]
    assert [(r["field"], r["css"], r["version"]) for r in listed] == [("_rows", "article.q-card", 1)]
    back = client.post("/api/v1/selectors/revert", headers=reviewer,
                       json={"spider": "quotes", "domain": D, "field": "_rows", "note": "oops"})
    assert (back.status_code, back.json["css"], back.json["version"]) == (200, None, 2)
    assert client.get("/api/v1/selectors?spider=quotes", headers=reviewer).json["items"] == []


@pytest.mark.parametrize(("body", "status", "error"), [
    pytest.param({"spider": "quotes", "domain": D, "field": "price", "css": "b"}, 422, "unknown_field", id="unknown-field"),
    pytest.param({"spider": "quotes", "domain": D, "field": "text", "css": "p[["}, 422, "invalid_selector", id="no-parse"),
    pytest.param({"spider": "quotes", "domain": D, "field": "text"}, 422, "invalid", id="no-selector"),
    pytest.param({"spider": "quotes", "domain": D, "css": "b"}, 422, "invalid", id="no-field"),
    pytest.param({"spider": "quotes", "domain": D, "field": "text", "css": "b", "force": "yes"}, 422, "invalid",
                 id="force-not-bool"),
    pytest.param({"spider": "quotes", "domain": D, "field": "text", "css": "b", "colour": 1}, 422, "invalid",
                 id="unknown-key"),
    pytest.param([], 400, "bad_request", id="not-an-object"),
])
def test_bad_overrides_are_refused_with_the_reason(client, reviewer, fix, body, status, error):
    response = client.post("/api/v1/selectors", headers=reviewer, json=body)
    assert (response.status_code, response.json["error"]) == (status, error)
    if error == "unknown_field":
        assert response.json["detail"]["declared"] == ["_rows", "text", "author"]
    if error == "invalid_selector":
        assert "does not parse" in response.json["detail"]["message"]


def test_fixer_of_another_kind_of_intervention_is_a_409(client, reviewer, hitl):
    data, _ = interventions.open_or_update(hitl, type="captcha_solve", reason="recaptcha", domain="x.test")
    response = client.get(f"/api/v1/interventions/{data['id']}/selector-suggestions", headers=reviewer)
    assert (response.status_code, response.json["error"]) == (409, "not_selector_fix")
    assert client.get("/api/v1/interventions/999999/selector-fixer", headers=reviewer).status_code == 404


def test_the_parked_page_is_served_sandboxed_with_only_the_pickers_script(client, auth, fix, hitl):
    auth.login("reviewer@example.com")
    page_id = selectors.pages(hitl.db, "quotes", D, "missed")[0]["id"]
    response = client.get(f"/interventions/{fix}/fixer/pages/{page_id}")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox allow-scripts; default-src 'none'; script-src 'nonce-")
    assert "allow-same-origin" not in csp
    html = response.get_data(as_text=True)
    assert "steal()" not in html and "http-equiv" not in html and "onload" not in html
    assert html.count("<script") == 1 and 'data-hitl-i="0"' in html
    assert client.get(f"/interventions/{fix}/fixer/pages/999999").status_code == 404
    assert 'id="open-fixer"' in client.get(f"/interventions/{fix}").get_data(as_text=True)


def test_a_spider_without_declared_fields_gets_the_page_and_the_expected_selector(client, auth, reviewer, hitl):
    data, _ = interventions.open_or_update(hitl, type="selector_fix", reason="selector_missing", domain="old.test",
                                           spider="legacy", url="http://old.test/p/3",
                                           evidence={"expect": "div.quote", "body_excerpt": "<p>new markup</p>"})
    fixer = client.get(f"/api/v1/interventions/{data['id']}/selector-fixer", headers=reviewer).json
    assert (fixer["declared"], fixer["fields"], fixer["pages"]) == (False, [], [])
    assert client.get(f"/api/v1/interventions/{data['id']}/selector-suggestions", headers=reviewer).json["fields"] == {}
    auth.login("reviewer@example.com")
    assert '<code id="fixer-expect">div.quote</code>' in client.get(f"/interventions/{data['id']}").text
    page = client.get(f"/interventions/{data['id']}/fixer").text
    assert '<code id="fx-expect">div.quote</code>' in page and 'id="fx-evidence"' in page
