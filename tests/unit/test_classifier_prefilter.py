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
