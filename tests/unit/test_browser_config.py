"""The browser tiers' settings, read once, with errors that name the setting and the fix."""

from __future__ import annotations

import os
import stat

import pytest
from scrapy.settings import Settings

from scrapy_hitl.browser.config import BrowserConfig, BrowserNotFound, find_chromium
from scrapy_hitl.browser.pool import _playwright_proxy


def config(**values) -> BrowserConfig:
    return BrowserConfig.from_settings(Settings(values))


def test_defaults() -> None:
    cfg = config()
    assert (cfg.max_pages, cfg.context_pages, cfg.stealth_delay) == (4, 100, (1.0, 3.0))
    assert cfg.executable == "" and cfg.stealth_proxies == {} and cfg.launch_options == {}
    assert cfg.settle_timeout == 5.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"HITL_BROWSER_MAX_PAGES": 0}, "HITL_BROWSER_MAX_PAGES must be greater than 0"),
        ({"HITL_BROWSER_CONTEXT_PAGES": -1}, "HITL_BROWSER_CONTEXT_PAGES must be greater than 0"),
        ({"HITL_STEALTH_DELAY": "3,1"}, "HITL_STEALTH_DELAY must satisfy 0 <= min <= max"),
        ({"HITL_STEALTH_DELAY": "1"}, "HITL_STEALTH_DELAY must be two numbers of seconds"),
        ({"HITL_STEALTH_DELAY": "a,b"}, "HITL_STEALTH_DELAY must be two numbers of seconds"),
        ({"HITL_STEALTH_PROXIES": {"example.com": "host:3128"}}, "must be a proxy URL"),
        ({"HITL_BROWSER_SETTLE_TIMEOUT": -1}, "HITL_BROWSER_SETTLE_TIMEOUT must be 0"),
    ],
)
def test_bad_values_name_the_setting(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        config(**values)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("shop.example.com", "http://p1:1"),
        ("example.com", "http://p1:1"),
        ("other.org", "http://any:9"),
        ("deep.sub.example.com", "http://p1:1"),
    ],
)
def test_proxy_for_walks_parent_domains_then_the_wildcard(domain, expected) -> None:
    cfg = config(HITL_STEALTH_PROXIES={"Example.com": "http://p1:1", "*": "http://any:9"})
    assert cfg.proxy_for(domain) == expected


def test_no_wildcard_means_no_proxy() -> None:
    assert config(HITL_STEALTH_PROXIES={"example.com": "http://p1:1"}).proxy_for("other.org") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://host:3128", {"server": "http://host:3128"}),
        ("socks5://u%40x:p%3Aw@10.0.0.1:1080", {"server": "socks5://10.0.0.1:1080", "username": "u@x", "password": "p:w"}),
        ("http://user@h", {"server": "http://h", "username": "user", "password": ""}),
    ],
)
def test_proxy_urls_become_playwright_proxies(url, expected) -> None:
    assert _playwright_proxy(url) == expected


def test_a_configured_executable_must_exist(tmp_path) -> None:
    with pytest.raises(BrowserNotFound, match="HITL_BROWSER_EXECUTABLE='/nope/chromium' is not an executable"):
        find_chromium("/nope/chromium")
    fake = tmp_path / "chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert find_chromium(str(fake)) == str(fake)


def test_without_any_chromium_the_message_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("scrapy_hitl.browser.config.CHROMIUM_PATHS", ())
    with pytest.raises(BrowserNotFound, match=r"apt-get install -y chromium"):
        find_chromium()


@pytest.mark.skipif(not os.access("/usr/bin/chromium", os.X_OK), reason="no system Chromium")
def test_the_system_chromium_is_found() -> None:
    assert find_chromium().endswith("chromium")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"HITL_STEALTH_DELAY": "3,1"}, "HITL_STEALTH_DELAY must satisfy 0 <= min <= max"),
        ({"HITL_LIVE_TIMEOUT": 0}, "HITL_LIVE_TIMEOUT must be greater than 0 seconds"),
    ],
    ids=["browser-setting", "live-view-setting"],
)
def test_a_bad_browser_or_live_setting_stops_the_crawl_at_start(values, message) -> None:
    """Read when the escalation middleware is built, not at the first page that climbs
    (which would fail every such page and finish the crawl green)."""
    from scrapy import Spider
    from scrapy.utils.test import get_crawler

    from scrapy_hitl.middlewares.escalation import HitlEscalationMiddleware

    try:
        find_chromium("")
    except BrowserNotFound:
        pytest.skip("needs the system Chromium: without it the browser tiers are left out")
    crawler = get_crawler(Spider, {"HITL_TIERS": "static,browser,human", **values})
    with pytest.raises(ValueError, match=message):
        HitlEscalationMiddleware.from_crawler(crawler)
