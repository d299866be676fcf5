"""The body-literal prefilter: the literals it derives, and that it never hides a match."""

from __future__ import annotations

import re

import pytest

from scrapy_hitl.classifier import _body_literals
from scrapy_hitl.signatures import DEFAULT_SIGNATURES


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        pytest.param([r"captcha-delivery\.com/"], ("captcha-delivery.com/",), id="escaped-literal"),
        pytest.param([r"(?i)You are being RATE limited"], ("you are being rate limited",), id="case-folded"),
        pytest.param([r"window\._cf_chl_opt\s*="], ("window._cf_chl_opt",), id="longest-run-before-class"),
        pytest.param([r"/distil_r_(?:captcha|blocked)\.html"], ("/distil_r_",), id="literal-before-group"),
        pytest.param([r"(?:showcaptcha|checkcaptcha)"], ("showcaptcha", "checkcaptcha"), id="branch-any-of"),
        pytest.param([r"(?:abc|checkcaptcha)x"], None, id="branch-with-short-alternative"),
        pytest.param([r"a+b"], None, id="too-short"),
        pytest.param([r"(?:incident){2}"], ("incident",), id="mandatory-repeat"),
        pytest.param([r"x(?:incident)?y"], None, id="optional-group-ignored"),
        pytest.param([r"Вы не робот"], None, id="non-ascii"),
        pytest.param([r"Incapsula incident ID", r"\d+"], None, id="one-pattern-without-literal"),
        pytest.param([], None, id="no-patterns"),
    ],
)
def test_body_literals(patterns, expected):
    assert _body_literals(tuple(re.compile(p) for p in patterns)) == expected


@pytest.mark.parametrize("signature", [s for s in DEFAULT_SIGNATURES if s.body], ids=lambda s: s.name)
def test_every_builtin_body_pattern_has_a_literal(signature):
    """The built-in signatures all get a prefilter; a new one without (a pattern with no
    literal of 4+ ASCII characters) would make every small page pay for its regexes."""
    assert _body_literals(signature.body) is not None


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"(?i)sorry, you have been blocked", "SORRY, YOU HAVE BEEN BLOCKED"),
        (r"(?i)kelvin block", "\u212aELVIN BLOCK"),  # the Kelvin sign matches k under (?i)
        (r"(?i)press hold", "PRESS HOLD"),
        (r"captcha-delivery\.com/", "src='https://geo.captcha-delivery.com/captcha/'"),
    ],
)
def test_a_matching_text_always_contains_a_literal(pattern, text):
    compiled = re.compile(pattern)
    assert compiled.search(text)
    literals = _body_literals((compiled,))
    assert literals is not None
    assert any(literal in text.casefold() for literal in literals)


# --- the per-status screen -------------------------------------------------------------------

def _unscreened(classifier, observation):
    """What the matchers say with the screen out of the way: the reference for the screen."""
    from scrapy_hitl.classifier import _first_match, _Response

    response = _Response(observation)
    matchers = tuple(m for m in classifier._matchers if m.status is None or response.status in m.status)
    return _first_match(matchers, response)


def _all_cases():
    from tests.unit.test_classifier import SIGNATURE_CASES, STATUS_CASES

    for case in SIGNATURE_CASES:
        yield pytest.param(case.values[0], id=f"signature-{case.id}")
    for case in STATUS_CASES:
        yield pytest.param(case.values[0], id=f"status-{case.id}")


@pytest.mark.parametrize("observation", list(_all_cases()))
def test_the_screen_never_hides_a_match(observation):
    """Every realistic page of the classifier's tables: the screened match is the same
    signature the plain per-matcher loop finds (the screen only ever skips the loop)."""
    from scrapy_hitl.classifier import BlockClassifier

    classifier = BlockClassifier()
    assert classifier.match(observation) == _unscreened(classifier, observation)


@pytest.mark.parametrize(
    ("specs", "screened"),
    [
        pytest.param([{"name": "w", "kind": "challenge", "body": "acme-challenge"}], True, id="body-with-literal"),
        pytest.param([{"name": "w", "kind": "challenge", "body": r"\d{6}"}], False, id="body-without-literal"),
        pytest.param([{"name": "w", "kind": "challenge", "headers": {"x-waf": ""}}], True, id="header"),
    ],
)
def test_a_status_gets_no_screen_when_a_body_regex_has_no_literal(specs, screened):
    from scrapy_hitl.classifier import BlockClassifier, Observation
    from scrapy_hitl.signatures import compile_signature

    classifier = BlockClassifier([compile_signature(spec, index=i) for i, spec in enumerate(specs)])
    classifier.match(Observation(url="https://example.com/", status=418, headers={}, body="<p>hi</p>"))
    _matchers, screen = classifier._by_status[418]
    assert (screen is not None) is screened


def test_a_page_without_any_hint_skips_every_matcher():
    from scrapy_hitl.classifier import BlockClassifier, Observation, _Response

    classifier = BlockClassifier()
    clean = Observation(url="https://shop.example.com/p/1", status=200, headers={"content-type": "text/html"},
                        body="<html><head><title>Shoes</title></head><body><p>Red shoes</p></body></html>")
    assert classifier.match(clean) is None
    _matchers, screen = classifier._by_status[200]
    assert screen is not None and not screen.could_match(_Response(clean))


# --- folding the body for the literals ---------------------------------------------------------

@pytest.mark.parametrize(
    "body",
    [
        pytest.param("<p>Please complete the CAPTCHA</p>", id="ascii"),
        pytest.param("<p>“Please complete the CAPTCHA”</p>", id="curly-quotes"),
        pytest.param("<p>Пожалуйста, CAPTCHA — 😀</p>", id="cyrillic-and-emoji"),
        pytest.param("<p>CAPTCHA ſolved by \u212aelvin at İkea for ıbm</p>", id="the-four-ascii-alikes"),
        pytest.param("<p>ﬁnal Straße ǅ</p>", id="ligatures-and-titlecase"),
    ],
)
@pytest.mark.parametrize("literal", ["captcha", "solved", "kelvin", "ikea", "ibm", "final", "strasse", "please"])
@pytest.mark.parametrize("raw", [
    pytest.param(None, id="text"),
    pytest.param(lambda body: body.encode("utf-8"), id="utf8-bytes"),
    pytest.param(lambda body: body.encode("utf-8") + "<p>more CAPTCHA after the cut</p>".encode(), id="utf8-longer"),
    pytest.param(lambda body: body.encode("utf-16"), id="utf16-bytes-declared-utf8"),  # NULs: not used
])
def test_a_literal_is_in_the_folded_body_wherever_a_case_insensitive_regex_matches(body, literal, raw):
    from scrapy_hitl.classifier import fold_for_literals

    if re.search(re.escape(literal), body, re.IGNORECASE):
        assert literal.encode("ascii") in fold_for_literals(body, raw(body) if raw else None)


def test_the_undecoded_utf8_body_is_lowered_as_it_is():
    from scrapy_hitl.classifier import fold_for_literals

    body = "<p>“Please complete the CAPTCHA”</p>"
    raw = body.encode("utf-8")
    assert fold_for_literals(body, raw) == raw.lower() == fold_for_literals(body)
    assert fold_for_literals(body, raw + b"<p>TAIL</p>") == (raw + b"<p>TAIL</p>").lower()  # (only more to search)


# --- the screen's joined patterns ----------------------------------------------------------------

_TEXTS = ("", "Access Denied", "access denied", "Just a moment...", "Robot Check", "shoes and socks",
          "aa", "abab", "x-1-1", "cloudflare-nginx", "AKAMAI GHost", "Sucuri/Cloudproxy", "line\nAccess denied")


@pytest.mark.parametrize(
    ("patterns", "searches"),
    [
        pytest.param([r"(?i)^access denied$", r"(?i)^(?:amazon\.[a-z.]+)$", r"(?i)^robot"], 1,
                     id="anchored-same-flags-one-search"),
        pytest.param([r"(?i)robot check", r"(?i)shoes", r"(?i)x-\d"], 1, id="unanchored-same-flags-one-search"),
        pytest.param([r"(?i)^access denied$", r"(?i)robot check", r"(?i)^(?:amazon\.[a-z.]+)$"], 2,
                     id="anchored-apart-from-unanchored"),
        pytest.param([r"(?i)^access denied$", r"^Just a moment\.\.\.$"], 2, id="two-flag-sets"),
        pytest.param([r"(?i)^cloudflare", r"(?i)akamai", r"(?i)^sucuri"], 2, id="leading-flags-dropped"),
        pytest.param([r"^shoes|access", r"^robot"], 2, id="caret-in-one-branch-is-not-anchored"),
        pytest.param([r"(?:^shoes)", r"^robot", r"\^a"], 2, id="caret-in-a-group-or-escaped"),
        pytest.param([r"(a)\1", r"(?i)^access"], 2, id="numbered-backreference-alone"),
        pytest.param([r"(?P<x>a)b(?P=x)", r"shoes"], 2, id="named-backreference-alone"),
        pytest.param([r"(?P<x>a)", r"(?P<x>b)"], 2, id="duplicate-group-names-do-not-compile"),
        pytest.param([r"(?x) access \s denied  # a comment", r"(?x) robot"], 2, id="verbose-alone"),
        pytest.param([r"(?m)^access denied$", r"(?m)^never$"], 1, id="multiline-kept"),
        pytest.param([r"", r"(?i)^x"], 2, id="presence-and-pattern"),
        pytest.param([r"shoes"], 1, id="one-pattern"),
        pytest.param([], 0, id="none"),
    ],
)
def test_joined_patterns_find_what_any_of_them_finds(patterns, searches):
    from scrapy_hitl.classifier import _joined

    compiled = [re.compile(p) for p in patterns]
    joined = _joined(compiled)
    assert len(joined) == searches
    for text in _TEXTS:
        assert any(p.search(text) for p in joined) == any(p.search(text) for p in compiled), text


def test_the_literal_screen_finds_a_literal_wherever_one_occurs():
    """The screen searches leftmost-first (the fast search): a body holds a match exactly when
    it holds any literal, also where literals overlap, nest or share a start."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from scrapy_hitl.classifier import _Screen

    literals = ("captcha", "captcha-delivery", "delivery", "_incapsula_resource", "pcha-d", "incap")
    screen = _Screen((), (), (), (), literals)
    pieces = st.sampled_from([*literals, "capt", "cha", "-", "deliver", "x", "incapsul", " ", "a_resource"])

    @settings(max_examples=500, deadline=None)
    @given(st.lists(pieces, max_size=8).map("".join))
    def check(body: str) -> None:
        found = screen._any_literal.find_matches_as_indexes(body.encode())
        assert bool(found) == any(lit in body for lit in literals)

    check()
