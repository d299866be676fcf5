"""scrapy_hitl.cookies on hostile input: CookieFormatError, or cookies, and nothing else.

The table holds what a security pass found escaping the parsers (ValueError from urlsplit,
OverflowError from math.isfinite, RecursionError from json, ValueError from int()'s digit
limit). The hypothesis tests then throw generated exports at every entry point.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrapy_hitl.cookies import (
    FORMATS,
    MAX_EXPIRES,
    Cookie,
    CookieFormatError,
    ParsedCookies,
    parse_cookie_list,
    parse_cookies,
)

HUGE = 10**400  # past float's range: float() and math.isfinite() raise OverflowError
TOO_LONG = "1" * 4301  # past int()'s and str()'s default limit of 4,300 digits
TOO_LONG_INT = 10**4300  # as many digits, built without int()


def entry(**fields: object) -> dict[str, object]:
    return {"name": "sid", "value": "v", "domain": "shop.example", **fields}


@pytest.mark.parametrize(
    ("parse", "problem"),
    [
        pytest.param(lambda: parse_cookie_list([{"name": "sid", "value": "v", "url": "http://[::1"}]),
                     "entry 1 has \"url\": 'http://[::1', which is not a URL", id="url-unclosed-ipv6"),
        pytest.param(lambda: parse_cookie_list([{"name": "sid", "value": "v", "url": "http://[zz]/"}]),
                     "which is not a URL", id="url-bad-ipv6"),
        pytest.param(lambda: parse_cookies("[" * 100_000), "nested too deep", id="json-100000-brackets"),
        pytest.param(lambda: parse_cookies('{"cookies": ' + "[" * 5000), "nested too deep",
                     id="storage-state-deep"),
        pytest.param(lambda: parse_cookies(f'[{{"name": "a", "value": {TOO_LONG}}}]'), "a number too long",
                     id="json-4301-digit-int"),
        pytest.param(lambda: parse_cookie_list([{"name": "a", "value": TOO_LONG_INT}]), "more digits",
                     id="list-4301-digit-value"),
        pytest.param(lambda: parse_cookie_list([entry(expires=-math.inf)]),
                     '"expires": -inf', id="expires-minus-infinity"),
        pytest.param(lambda: parse_cookie_list([entry(secure=TOO_LONG_INT)]),
                     '"secure": a number too long to show', id="flag-4301-digit-int"),
        pytest.param(lambda: parse_cookie_list([entry(expiry=[[[[]]]] * 100)]),
                     '"expiry": a JSON array, which is not a number', id="expiry-list"),
        pytest.param(lambda: parse_cookie_list([entry(httpOnly="x" * 1000)]),
                     "'" + "x" * 36 + "...", id="long-value-shortened"),
        pytest.param(lambda: parse_cookie_list([entry(expirationDate=HUGE)]),
                     '"expirationDate": 1000000000000000000000000000000000000...', id="expiry-int-past-float"),
        pytest.param(lambda: parse_cookie_list([entry(expires=-HUGE)]), "which is not a number",
                     id="expiry-negative-int-past-float"),
        pytest.param(lambda: parse_cookies(f"shop.example\tFALSE\t/\tFALSE\t{'9' * 400}\tsid\tv"),
                     'the expiry field (5th) is "999', id="netscape-400-digit-expiry"),
    ],
)
def test_hostile_input_is_a_cookie_format_error(parse, problem: str) -> None:
    with pytest.raises(CookieFormatError) as caught:
        parse()
    assert problem in caught.value.problem
    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize(
    ("parse", "expires"),
    [
        pytest.param(lambda: parse_cookie_list([entry(expires=1e300)]), MAX_EXPIRES, id="float-past-9999"),
        pytest.param(lambda: parse_cookie_list([entry(expiry=1_700_000_000_000)]), MAX_EXPIRES,
                     id="milliseconds"),
        pytest.param(lambda: parse_cookie_list([entry(expires=-1e300)]), None, id="huge-negative-is-session"),
        pytest.param(lambda: parse_cookie_list([entry(expires=MAX_EXPIRES)]), MAX_EXPIRES, id="year-9999-kept"),
        pytest.param(lambda: parse_cookies(f"shop.example\tFALSE\t/\tFALSE\t{'9' * 300}\tsid\tv"), MAX_EXPIRES,
                     id="netscape-300-digits"),
    ],
)
def test_an_expiry_past_the_year_9999_is_kept_as_9999(parse, expires: float | None) -> None:
    """As a browser caps a cookie's lifetime; the vault stores it as a datetime. (Past
    float's range it is refused: see the table above.)"""
    (cookie,) = parse().cookies
    assert cookie.expires == expires


# --- properties ----------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=10)
# Each field mostly gets its own type, with the values that broke the parsers mixed in, so a
# generated cookie gets past its first field often enough to reach the later ones.
texts = st.one_of(st.none(), st.text(max_size=30), json_values,
                  st.sampled_from(["http://[::1", "http://[zz]/", "https://a\uff03b/", "//x", "", ".", "[::1]",
                                   "http://shop.example:99999/", "HTTP://[v1.x]/"]))
numbers = st.one_of(st.none(), st.integers(), st.floats(), json_values,
                    st.sampled_from([HUGE, -HUGE, 2**63, 1e300, -1e300, 1.7e12, 253402300800, -1, 0]))
flags = st.one_of(st.none(), st.booleans(), st.integers(-1, 2), json_values, st.sampled_from([HUGE, "true"]))
FIELDS = {"domain": texts, "path": texts, "url": texts, "expires": numbers, "expirationDate": numbers,
          "expiry": numbers, "session": flags, "hostOnly": flags, "secure": flags, "httpOnly": flags,
          "http_only": flags, "sameSite": texts, "same_site": texts}
cookie_objects = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=8), "value": st.one_of(st.text(max_size=8), st.integers())},
    optional=FIELDS,
)
entries = st.one_of(cookie_objects, json_values)
brackets = st.builds(lambda n, c: c * n, st.integers(1, 3000), st.sampled_from(["[", "{", '{"cookies":[', "[{"]))


def _json_text(value: object) -> str:
    return json.dumps(value)


netscape_lines = st.lists(st.one_of(st.text(max_size=15), st.sampled_from(
    ["TRUE", "FALSE", "#HttpOnly_x", "1e400", "nan", "-0", TOO_LONG, "9" * 400])), min_size=1, max_size=8)
cookie_texts = st.one_of(
    st.text(),
    st.builds(_json_text, st.lists(entries, max_size=4)),
    st.builds(lambda cookies: _json_text({"cookies": cookies}), st.lists(entries, max_size=4)),
    st.builds(lambda lines: "\t".join(lines), netscape_lines),
    st.builds(lambda text: f"Cookie: {text}", st.text()),
    brackets,
    st.sampled_from([f'[{{"name": "a", "value": {TOO_LONG}}}]', f'[{{"name": "a", "value": "v", "expiry": {TOO_LONG}}}]']),
)
PROPERTY = settings(max_examples=200, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _check(parse) -> None:
    """Either cookies a datetime can hold (the vault stores ``expires`` as one), or
    CookieFormatError with a message; any other exception fails the test."""
    try:
        parsed = parse()
    except CookieFormatError as exc:
        assert str(exc)
        return
    assert isinstance(parsed, ParsedCookies)
    for cookie in parsed.cookies:
        assert isinstance(cookie, Cookie)
        if cookie.expires is not None:
            datetime.fromtimestamp(cookie.expires, timezone.utc)


@PROPERTY
@given(text=st.one_of(cookie_texts, st.binary()), fmt=st.sampled_from([None, *FORMATS]),
       default_domain=st.one_of(st.none(), st.text(max_size=10)))
def test_parse_cookies_raises_only_cookie_format_error(text: str | bytes, fmt: str | None,
                                                       default_domain: str | None) -> None:
    _check(lambda: parse_cookies(text, fmt=fmt, default_domain=default_domain))


@PROPERTY
@given(items=st.one_of(st.lists(entries, max_size=4), json_values))
def test_parse_cookie_list_raises_only_cookie_format_error(items: object) -> None:
    _check(lambda: parse_cookie_list(items))  # type: ignore[arg-type]


@PROPERTY
@given(data=cookie_objects)
def test_from_dict_raises_only_cookie_format_error(data: dict[str, object]) -> None:
    _check(lambda: ParsedCookies(cookies=(Cookie.from_dict(data),), format="cookie-editor-json"))
