"""Tests for scrapy_hitl.cookies: every export format, the helpers, and every error message."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from scrapy_hitl.cookies import (
    FORMATS,
    Cookie,
    CookieFormatError,
    ParsedCookies,
    cookie_names,
    cookies_for_domain,
    earliest_expiry,
    parse_cookie_list,
    parse_cookies,
    to_scrapy_cookies,
)

SAMPLES = Path(__file__).parent / "cookie_samples"
SID = "8f14e45fceea167a5a36dedd4bea2543"
GA = "GA1.1.1234567890.1700000000"
CF = "Xq3v9LkP2mZ0yT8wRb5nJ4hG7cD1sA6eF-1700000000-1.0.1.1-abcDEF123ghiJKL456"
VIP = Cookie(
    "vip_pass", "letmein", "127.0.0.1", "/", 1893456000.0, http_only=True, same_site="Lax"
)

# What each sample file holds, field by field.
EXPECTED = {
    "cookie-editor.json": (
        "cookie-editor-json",
        (
            VIP,
            Cookie("sessionid", SID, "127.0.0.1", http_only=True, same_site="Strict"),
            Cookie("_ga", GA, ".example.com", "/", 1924992000.0),
            Cookie("cf_clearance", CF, ".example.com", "/", 1861920000.5, True, True, "None"),
        ),
    ),
    "cookies.txt": (
        "netscape",
        (
            Cookie("vip_pass", "letmein", "127.0.0.1", "/", 1893456000.0, http_only=True),
            Cookie("sessionid", SID, "127.0.0.1", http_only=True),
            Cookie("_ga", GA, ".example.com", "/", 1924992000.0),
            Cookie("cf_clearance", CF, ".example.com", "/", 1861920000.0, True, True),
        ),
    ),
    "storage_state.json": (
        "playwright-storage-state",
        (
            VIP,
            Cookie("sessionid", SID, "127.0.0.1", http_only=True, same_site="Strict"),
            Cookie("_ga", GA, ".example.com", "/", 1924992000.0, same_site="Lax"),
            Cookie("cf_clearance", CF, ".example.com", "/", 1861920000.5, True, True, "None"),
        ),
    ),
    "header.txt": (
        "cookie-header",
        tuple(
            Cookie(name, value, "127.0.0.1")
            for name, value in [("vip_pass", "letmein"), ("sessionid", SID), ("_ga", GA),
                                ("cf_clearance", CF)]
        ),
    ),
}


# storage_state's localStorage is kept (the sample's origins, values and all)
ORIGINS = ({"origin": "http://127.0.0.1:8000", "localStorage": [{"name": "theme", "value": "dark"}]},)


def parse_sample(name: str, **kwargs: str) -> ParsedCookies:
    return parse_cookies((SAMPLES / name).read_bytes(), source=name, **kwargs)


# --- the sample exports -------------------------------------------------------------------


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_is_detected_and_parsed(sample: str) -> None:
    fmt, cookies = EXPECTED[sample]
    parsed = parse_sample(sample, default_domain="127.0.0.1")
    origins = ORIGINS if sample == "storage_state.json" else ()
    assert parsed == ParsedCookies(cookies=cookies, format=fmt, origins=origins)


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_with_explicit_format_and_as_str(sample: str) -> None:
    fmt, cookies = EXPECTED[sample]
    text = (SAMPLES / sample).read_text(encoding="utf-8")
    parsed = parse_cookies(text, fmt=fmt, default_domain="127.0.0.1")
    assert parsed.cookies == cookies


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_every_sample_has_vip_pass_for_127_0_0_1(sample: str) -> None:
    parsed = parse_sample(sample, default_domain="127.0.0.1")
    local = cookies_for_domain(parsed.cookies, "127.0.0.1")
    assert {"name": "vip_pass", "value": "letmein", "domain": "127.0.0.1", "path": "/",
            "secure": False} in to_scrapy_cookies(local)


def test_header_sample_without_default_domain_has_no_domain() -> None:
    parsed = parse_sample("header.txt")
    assert {c.domain for c in parsed.cookies} == {""}
    assert to_scrapy_cookies(parsed.cookies)[0] == {
        "name": "vip_pass", "value": "letmein", "path": "/", "secure": False
    }


# --- format details -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("no_restriction", "None"),
        ("lax", "Lax"),
        ("strict", "Strict"),
        ("unspecified", None),
        (None, None),
        ("Lax", "Lax"),
        ("None", "None"),
    ],
    ids=["no_restriction", "lax", "strict", "unspecified", "null", "playwright-Lax", "None"],
)
def test_cookie_editor_same_site(raw: str | None, expected: str | None) -> None:
    text = json.dumps([{"name": "a", "value": "1", "domain": "x.org", "sameSite": raw}])
    assert parse_cookies(text).cookies[0].same_site == expected


@pytest.mark.parametrize(
    ("domain", "host_only", "expected"),
    [
        (".shop.example", True, "shop.example"),
        ("shop.example", False, ".shop.example"),
        (".shop.example", False, ".shop.example"),
        ("shop.example", None, "shop.example"),
        ("127.0.0.1", False, "127.0.0.1"),
    ],
    ids=["host-only-strips-dot", "domain-cookie-adds-dot", "dot-kept", "absent-as-given", "ip"],
)
def test_cookie_editor_host_only(domain: str, host_only: bool | None, expected: str) -> None:
    entry = {"name": "a", "value": "1", "domain": domain, "hostOnly": host_only}
    assert parse_cookies(json.dumps([entry])).cookies[0].domain == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("shop.example\tTRUE\t/\tFALSE\t0\ta\t1", Cookie("a", "1", ".shop.example")),
        (".shop.example\tFALSE\t/cart\tTRUE\t0\ta\t1", Cookie("a", "1", "shop.example", "/cart",
                                                              secure=True)),
        ("shop.example\tFALSE\t/\tFALSE\t0\tempty\t", Cookie("empty", "", "shop.example")),
        ("shop.example\tFALSE\t/\tFALSE\t0\tmsg\thello big world",
         Cookie("msg", "hello big world", "shop.example")),
        ("#HttpOnly_shop.example\tFALSE\t/\tFALSE\t1893456000\ta\t1",
         Cookie("a", "1", "shop.example", expires=1893456000.0, http_only=True)),
        ("shop.example    FALSE   /   false   1893456000   a   x=y",
         Cookie("a", "x=y", "shop.example", expires=1893456000.0)),
        ("shop.example\tfalse\t/\tFALSE\t-1\ta\t1", Cookie("a", "1", "shop.example")),
    ],
    ids=["TRUE-adds-dot", "FALSE-strips-dot", "empty-value", "value-with-spaces",
         "httponly-prefix", "spaces-instead-of-tabs", "lowercase-flag-negative-expiry"],
)
def test_netscape_lines(line: str, expected: Cookie) -> None:
    parsed = parse_cookies("# Netscape HTTP Cookie File\n" + line + "\n")
    assert parsed.format == "netscape"
    assert parsed.cookies == (expected,)


def test_netscape_crlf_and_bom_bytes() -> None:
    text = (SAMPLES / "cookies.txt").read_text(encoding="utf-8").replace("\n", "\r\n")
    parsed = parse_cookies(b"\xef\xbb\xbf" + text.encode())
    assert parsed.cookies == EXPECTED["cookies.txt"][1]


def test_netscape_detected_without_header() -> None:
    parsed = parse_cookies("127.0.0.1\tFALSE\t/\tFALSE\t0\tvip_pass\tletmein")
    assert parsed.format == "netscape"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a=1; b=two", [("a", "1"), ("b", "two")]),
        ("Cookie: a=1; b=two", [("a", "1"), ("b", "two")]),
        ("cookie: a=1;b=two;", [("a", "1"), ("b", "two")]),
        ("Cookie: a=1\r\nCookie: b=two\r\n", [("a", "1"), ("b", "two")]),
        ('a="quoted value"; b=""', [("a", "quoted value"), ("b", "")]),
        ("token=eyJhbGciOi==.x; c=", [("token", "eyJhbGciOi==.x"), ("c", "")]),
        (":authority: 127.0.0.1:8000\nhost: 127.0.0.1\ncookie: a=1", [("a", "1")]),
    ],
    ids=["bare", "Cookie-prefix", "devtools-lowercase", "multiple-lines", "quoted",
         "equals-in-value", "other-headers-skipped"],
)
def test_cookie_header(text: str, expected: list[tuple[str, str]]) -> None:
    parsed = parse_cookies(text, default_domain="shop.example")
    assert parsed.format == "cookie-header"
    assert [(c.name, c.value) for c in parsed.cookies] == expected
    assert {c.domain for c in parsed.cookies} == {"shop.example"}


def test_cookie_header_block_carries_user_agent() -> None:
    text = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0\nCookie: a=1\n"
    assert parse_cookies(text).user_agent == "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"


def test_storage_state_user_agent_and_url_form() -> None:
    text = json.dumps(
        {
            "cookies": [{"name": "a", "value": "1", "url": "https://shop.example/cart"}],
            "origins": [],
            "userAgent": "Mozilla/5.0",
        }
    )
    parsed = parse_cookies(text)
    assert parsed.user_agent == "Mozilla/5.0"
    assert parsed.cookies == (Cookie("a", "1", "shop.example", "/cart"),)


def test_parse_cookie_list_payload() -> None:
    items = json.loads((SAMPLES / "cookie-editor.json").read_text())
    parsed = parse_cookie_list(items)
    assert parsed == ParsedCookies(EXPECTED["cookie-editor.json"][1], "cookie-editor-json")
    missing = parse_cookie_list([{"name": "a", "value": "1"}], default_domain="shop.example")
    assert missing.cookies == (Cookie("a", "1", "shop.example"),)


# --- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("cookie-editor.json", 1861920000.5),
        ("cookies.txt", 1861920000.0),
        ("storage_state.json", 1861920000.5),
        ("header.txt", None),
    ],
)
def test_earliest_expiry(sample: str, expected: float | None) -> None:
    assert earliest_expiry(parse_sample(sample).cookies) == expected


def test_earliest_expiry_of_nothing_is_none() -> None:
    assert earliest_expiry([]) is None
    assert earliest_expiry([Cookie("a", "1")]) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", ["host-only", "anywhere"]),
        ("127.0.0.1:8000", ["host-only", "anywhere"]),
        ("example.com", ["dot-domain", "anywhere"]),
        ("www.example.com", ["dot-domain", "anywhere"]),
        ("WWW.Example.COM.", ["dot-domain", "anywhere"]),
        ("badexample.com", ["anywhere"]),
        ("other.org", ["anywhere"]),
        ("sub.127.0.0.1", ["anywhere"]),
    ],
)
def test_cookies_for_domain(host: str, expected: list[str]) -> None:
    cookies = [
        Cookie("host-only", "1", "127.0.0.1"),
        Cookie("dot-domain", "1", ".example.com"),
        Cookie("anywhere", "1"),
    ]
    assert [c.name for c in cookies_for_domain(cookies, host)] == expected


def test_host_only_cookie_does_not_match_subdomain() -> None:
    assert cookies_for_domain([Cookie("a", "1", "example.com")], "www.example.com") == []


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_to_dict_from_dict_round_trip(sample: str) -> None:
    for cookie in parse_sample(sample).cookies:
        data = cookie.to_dict()
        assert list(data) == ["name", "value", "domain", "path", "expires", "secure",
                              "http_only", "same_site"]
        assert Cookie.from_dict(json.loads(json.dumps(data))) == cookie


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "a", "value": "1", "domain": "x.org", "expires": -1, "httpOnly": True,
          "secure": True, "sameSite": "Strict"},
         Cookie("a", "1", "x.org", secure=True, http_only=True, same_site="Strict")),
        ({"name": "a", "value": "1", "domain": ".x.org", "expirationDate": 1893456000.5,
          "hostOnly": False, "sameSite": "no_restriction", "session": False, "storeId": "0"},
         Cookie("a", "1", ".x.org", expires=1893456000.5, same_site="None")),
        ({"name": "a", "value": "1", "domain": "x.org", "expiry": 1893456000, "path": "/app"},
         Cookie("a", "1", "x.org", "/app", 1893456000.0)),
    ],
    ids=["playwright", "cookie-editor", "selenium"],
)
def test_from_dict_accepts_other_spellings(data: dict[str, object], expected: Cookie) -> None:
    assert Cookie.from_dict(data) == expected


def test_to_scrapy_cookies_shape() -> None:
    cookies = [Cookie("a", "1", ".example.com", "/app", 1893456000.0, True, True, "Lax"),
               Cookie("b", "2")]
    assert to_scrapy_cookies(cookies) == [
        {"name": "a", "value": "1", "domain": ".example.com", "path": "/app", "secure": True},
        {"name": "b", "value": "2", "path": "/", "secure": False},
    ]


def test_cookie_names_in_order_once() -> None:
    cookies = [Cookie("b", "1", "x.org"), Cookie("a", "1"), Cookie("b", "2", "y.org")]
    assert cookie_names(cookies) == ["b", "a"]
    assert cookie_names(parse_sample("cookies.txt").cookies) == [
        "vip_pass", "sessionid", "_ga", "cf_clearance"
    ]


# --- errors ---------------------------------------------------------------------------------

NETSCAPE = "# Netscape HTTP Cookie File\n\n"


@pytest.mark.parametrize(
    ("text", "kwargs", "fmt", "line", "problem"),
    [
        ('[\n  {"name": "a",\n   "value": "1"\n  ,]\n', {}, "cookie-editor-json", 4,
         "invalid JSON"),
        ('{"cookies": [\n  {"name": "a" "value": "1"}]}', {}, "playwright-storage-state", 2,
         "invalid JSON: Expecting ',' delimiter"),
        (json.dumps([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}, {"name": "c"}]),
         {}, "cookie-editor-json", 3, 'entry 3 has no "value"'),
        (json.dumps({"cookies": [{"value": "1", "domain": "x.org"}]}), {},
         "playwright-storage-state", 1, 'entry 1 has no "name"'),
        (json.dumps([{"name": "a", "value": "1", "expirationDate": "soon"}]), {},
         "cookie-editor-json", 1, "entry 1 has \"expirationDate\": 'soon', which is not a number"),
        (json.dumps([{"name": "a", "value": "1", "secure": "yes"}]), {},
         "cookie-editor-json", 1, "entry 1 has \"secure\": 'yes', which is not true or false"),
        (json.dumps(["a=1"]), {}, "cookie-editor-json", 1, "entry 1 is a string, not a cookie"),
        (NETSCAPE + "x.org\tFALSE\t/\tFALSE\t0\ta\t1\nx.org\tFALSE\t/\t0\ta\n", {}, "netscape", 4,
         "expected 7 tab-separated fields, found 5"),
        (NETSCAPE + "x.org FALSE / FALSE 0 a two words\n", {}, "netscape", 3,
         "found no tabs and 8 space-separated fields"),
        (NETSCAPE + "x.org\tFALSE\t/\tFALSE\tnever\ta\t1\n", {}, "netscape", 3,
         'the expiry field (5th) is "never"'),
        (NETSCAPE + "x.org\tFALSE\t/\tYES\t0\ta\t1\n", {}, "netscape", 3,
         'the secure field (4th) is "YES", expected TRUE or FALSE'),
        (NETSCAPE + "x.org\tMAYBE\t/\tFALSE\t0\ta\t1\n", {}, "netscape", 3,
         'include-subdomains field (2nd) is "MAYBE"'),
        (NETSCAPE + "x.org\tFALSE\t/\tFALSE\t0\t\t1\n", {}, "netscape", 3,
         "the name field (6th) is empty"),
        (NETSCAPE + "# only comments\n", {}, "netscape", None, "no cookies found"),
        ("Cookie: a=1\nCookie: b=2; flag; c=3\n", {}, "cookie-header", 2, '"flag" has no "="'),
        ("a=1; =2", {}, "cookie-header", 1, '"=2" has no name'),
        ("Set-Cookie: a=1; Path=/; HttpOnly", {}, "cookie-header", 1, "Set-Cookie response"),
        ("", {}, "unknown", None, "no cookies found"),
        (" \r\n\t\n", {"fmt": "netscape"}, "netscape", None, "no cookies found"),
        ("[]", {}, "cookie-editor-json", None, "no cookies found"),
        ('{"cookies": [], "origins": []}', {}, "playwright-storage-state", None,
         "no cookies found"),
        ('{"name": "a", "value": "1"}', {}, "playwright-storage-state", None,
         'JSON object has no "cookies" key, so it is neither'),
        ('{"cookies": {"a": "1"}}', {}, "playwright-storage-state", None,
         '"cookies" is a JSON object, not a list'),
        ("42", {"fmt": "cookie-editor-json"}, "cookie-editor-json", None,
         "expected a JSON array of cookies, found a number"),
        ('{"cookies": []}', {"fmt": "cookie-editor-json"}, "cookie-editor-json", None,
         "found a JSON object"),
        ('[{"name": "a", "value": "1"}]', {"fmt": "playwright-storage-state"},
         "playwright-storage-state", None, "found a JSON array"),
        ("a=1", {"fmt": "netscape"}, "netscape", 1, "found no tabs and 1 space-separated"),
        ("just some words", {}, "unknown", 1, "not a recognised cookie format"),
        (b"a=1\n\xff\xfeb=2", {}, "unknown", 2, "input is not UTF-8 text (byte 0xff at offset 4)"),
        ("a=1".encode("utf-16"), {}, "unknown", None, "input is UTF-16 text"),
        ("a=1", {"fmt": "json"}, "json", None, 'unknown cookie format "json"'),
    ],
    ids=[
        "json-syntax", "json-syntax-line-2", "entry-missing-value", "entry-missing-name",
        "entry-bad-expiry", "entry-bad-flag", "entry-not-object", "netscape-field-count",
        "netscape-spaces-ambiguous", "netscape-bad-expiry", "netscape-bad-bool",
        "netscape-bad-subdomain-flag", "netscape-empty-name", "netscape-no-cookies",
        "header-pair-without-equals", "header-pair-without-name", "header-set-cookie",
        "empty", "blank-with-fmt", "empty-array", "empty-storage-state", "object-not-storage",
        "storage-cookies-not-list", "fmt-array-got-number", "fmt-array-got-object",
        "fmt-storage-got-array", "fmt-netscape-got-header", "unrecognised", "not-utf8",
        "utf16", "unknown-fmt",
    ],
)
def test_errors_name_format_line_problem_and_fix(
    text: str | bytes, kwargs: dict[str, str], fmt: str, line: int | None, problem: str
) -> None:
    with pytest.raises(CookieFormatError) as info:
        parse_cookies(text, source="upload.txt", **kwargs)
    err = info.value
    assert (err.fmt, err.line, err.source) == (fmt, line, "upload.txt")
    assert problem in err.problem
    assert err.fix
    message = str(err)
    where = "upload.txt" if line is None else f"upload.txt, line {line}"
    assert message.startswith(f"{where} (")
    assert problem in message
    assert message.endswith(err.fix)


def test_error_message_matches_documented_example() -> None:
    text = "# Netscape HTTP Cookie File\n\n\n127.0.0.1\tFALSE\t/\tFALSE\t0\n"
    with pytest.raises(CookieFormatError) as info:
        parse_cookies(text, source="cookies.txt")
    assert str(info.value) == (
        "cookies.txt, line 4 (netscape cookies.txt): expected 7 tab-separated fields, found 5. "
        'Export again with a "cookies.txt" extension, or check that tabs were not turned into '
        "spaces."
    )


def test_error_is_a_value_error_and_pickles() -> None:
    err = CookieFormatError(fmt="netscape", problem="bad", line=3, source="c.txt", fix="Redo.")
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.fmt, copy.problem, copy.line, copy.source, copy.fix) == (
        "netscape", "bad", 3, "c.txt", "Redo."
    )
    assert str(copy) == str(err) == "c.txt, line 3 (netscape cookies.txt): bad. Redo."


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        ([], "no cookies found"),
        ("a=1", "expected a list of cookie objects, found a string"),
        ([{"name": "a", "value": "1"}, {"name": "", "value": "2"}],
         'entry 2 has an empty or non-string "name"'),
        ([{"name": "a", "value": ["1"]}],
         'entry 1 has "value": a JSON array, which is not a string'),
    ],
    ids=["empty", "not-a-list", "empty-name", "value-not-string"],
)
def test_parse_cookie_list_errors(items: object, problem: str) -> None:
    with pytest.raises(CookieFormatError, match="Cookie-Editor JSON") as info:
        parse_cookie_list(items)  # type: ignore[arg-type]
    assert problem in info.value.problem


def test_from_dict_error() -> None:
    with pytest.raises(CookieFormatError, match=r'<input> \(cookie dict\): cookie has no "value"'):
        Cookie.from_dict({"name": "a"})


def test_formats_constant() -> None:
    assert FORMATS == ("cookie-editor-json", "netscape", "playwright-storage-state",
                       "cookie-header")
