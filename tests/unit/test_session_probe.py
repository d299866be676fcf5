"""The session probe's pure parts: judging a page (the same for HTTP and browser probes), the
domain's recorded result, and a probe in plain words."""

from __future__ import annotations

import pytest

from hitl_console.session_worker import judge, probe_result
from scrapy_hitl.state.session_health import describe_probe

URL = "https://shop.example/account"
IN = '<html><body><a class="logout" href="/logout">Log out</a></body></html>'
OUT = '<html><body><div id="signin">Sign in</div></body></html>'


@pytest.mark.parametrize(
    ("probe", "status", "html", "browser", "expected"),
    [
        ({"selector": "a.logout"}, 200, IN, False, (True, f"HTTP 200 at {URL}, 'a.logout' found")),
        ({"selector": "a.logout"}, 200, OUT, False, (False, f"HTTP 200 at {URL}, no 'a.logout' on the page")),
        ({"selector": "a.logout"}, 200, IN, True, (True, f"HTTP 200 at {URL} in a browser, 'a.logout' found")),
        ({"selector": "a.logout"}, 200, OUT, True,
         (False, f"HTTP 200 at {URL} in a browser, no 'a.logout' on the page")),
        ({"selector": "a.logout::text"}, 200, IN, True, (True, f"HTTP 200 at {URL} in a browser, "
                                                                "'a.logout::text' found")),
        ({"status": 200}, 200, OUT, False, (True, f"HTTP 200 at {URL}")),
        ({"status": 200}, 401, OUT, True, (False, f"HTTP 401 at {URL} in a browser, expected HTTP 200")),
        ({"status": 200, "selector": "a.logout"}, 403, IN, False, (False, f"HTTP 403 at {URL}, expected HTTP 200")),
        ({"selector": "a.logout"}, None, "", True, (False, f"HTTP None at {URL} in a browser, no 'a.logout' "
                                                           "on the page")),
    ],
)
def test_judge(probe, status, html, browser, expected):
    assert judge(probe, status, URL, html, browser=browser) == expected


@pytest.mark.parametrize(
    ("probed", "passed", "failed", "errors", "expected"),
    [
        (False, [], {}, {}, ""),
        (True, ["alice"], {}, {}, "ok"),
        (True, ["alice"], {"bob": "no"}, {}, "failed"),
        (True, [], {"bob": "no"}, {"alice": "no chromium"}, "failed"),
        (True, [], {}, {"alice": "no chromium"}, "error"),
        (True, ["alice"], {}, {"bob": "no chromium"}, "error"),
    ],
)
def test_probe_result(probed, passed, failed, errors, expected):
    assert probe_result(probed, passed, failed, errors) == expected


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (None, "no probe"),
        ({"url": URL, "selector": "a.logout", "status": None, "browser": False},
         f"{URL} shows 'a.logout', checked with a plain HTTP request"),
        ({"url": URL, "selector": "a.logout", "status": 200, "browser": True},
         f"{URL} shows 'a.logout' and answers HTTP 200, checked in a browser"),
        ({"url": URL, "selector": None, "status": 200, "browser": True},
         f"{URL} answers HTTP 200, checked in a browser"),
        ({"url": URL, "selector": None, "status": None}, f"{URL}, checked with a plain HTTP request"),
    ],
)
def test_describe_probe(probe, expected):
    assert describe_probe(probe) == expected
