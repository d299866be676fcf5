"""The classifier's view of Scrapy headers: lower-case names, str values, every Set-Cookie."""

from __future__ import annotations

import pytest
from scrapy.http.headers import Headers

from scrapy_hitl.middlewares.blocks import header_dict


@pytest.fixture
def view():
    headers = Headers({"Server": "cloudflare", "CF-Ray": "8a1b2c3d4e5f6789-FRA", "x-multi": ["one", "two"]})
    headers.appendlist("Set-Cookie", "a=1; Path=/")
    headers.appendlist("Set-Cookie", "datadome=xyz; Path=/")
    headers["X-Latin"] = "caf\xe9".encode("latin-1")
    return header_dict(headers)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("server", "cloudflare", id="lower-case-lookup"),
        pytest.param("cf-ray", "8a1b2c3d4e5f6789-FRA", id="mixed-case-header"),
        pytest.param("set-cookie", "a=1; Path=/\ndatadome=xyz; Path=/", id="every-set-cookie"),
        pytest.param("x-multi", "two", id="last-value-wins"),
        pytest.param("x-latin", "caf\xe9", id="latin-1-bytes"),
        pytest.param("x-missing", None, id="missing"),
    ],
)
def test_get(view, name, expected):
    assert view.get(name) == expected


def test_names_are_lower_case(view):
    assert sorted(view) == ["cf-ray", "server", "set-cookie", "x-latin", "x-multi"]
