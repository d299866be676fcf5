"""request_domain(): the host name urlparse() gives, looked up by the URL, then by its origin."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from scrapy import Request

from scrapy_hitl.runtime import request_domain


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example.com/p/1?a=1#top",
        "https://SHOP.Example.COM/p/2",
        "http://127.0.0.1:8123/static/page/5",
        "https://user:secret@Login.Example.com:8443/account",
        "http://[::1]:8080/x",
        "https://example.com",
        "https://example.com?q=1",
        "https://example.com#frag",
        "https://example.com.:443/trailing-dot",
        "https://xn--bcher-kva.example/",
        "file:///etc/hosts",
        "data:text/plain,hello",
        "s3://bucket-name/key/path",
    ],
)
def test_the_domain_is_urlparse_hostname_lower_case(url):
    expected = (urlparse(Request(url).url).hostname or "").lower()
    assert request_domain(Request(url)) == expected
    assert request_domain(Request(url)) == expected  # the second time from the cache


def test_requests_of_one_origin_share_an_entry_but_not_other_hosts():
    first = request_domain(Request("https://a.example.com/1"))
    assert request_domain(Request("https://a.example.com/2?x=//b.example.com/")) == first == "a.example.com"
    assert request_domain(Request("https://b.example.com/1")) == "b.example.com"


def test_the_url_cache_stays_bounded_and_right_when_it_overflows():
    from scrapy_hitl import runtime

    urls = [f"https://h{n % 7}.example.com/page/{n}" for n in range(3 * runtime._MAX_URLS + 5)]
    for url in urls:  # each asked twice, as the middlewares do
        assert request_domain(Request(url)) == request_domain(Request(url)) == f"h{url[9]}.example.com"
        assert len(runtime._DOMAIN_OF_URL) <= runtime._MAX_URLS
