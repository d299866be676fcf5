"""The stealth tier's per-domain fingerprint: consistent everywhere, stable per domain."""

from __future__ import annotations

import pytest

from scrapy_hitl.browser.fingerprint import DEFAULT_CHROME_MAJOR, chrome_major, fingerprint_for

DOMAINS = ["guarded.sandbox.test", "example.com", "shop.example.co.uk", "a.b.c.d", "x"]


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ("Chromium 131.0.6778.85 built on Debian GNU/Linux 12 (bookworm)\n", 131),
        ("Google Chrome 142.0.7444.59 \n", 142),
        ("Chromium 99.0.4844.51\n", 99),
        ("", DEFAULT_CHROME_MAJOR),
        ("chromium: command not found", DEFAULT_CHROME_MAJOR),
    ],
)
def test_chrome_major_reads_the_installed_version(output: str, major: int) -> None:
    assert chrome_major(output) == major


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_same_domain_always_gets_the_same_profile(domain: str) -> None:
    assert fingerprint_for(domain) == fingerprint_for(domain.upper())


def test_domains_do_not_all_share_one_profile() -> None:
    profiles = {fingerprint_for(f"site{n}.example") for n in range(40)}
    assert len({p.user_agent for p in profiles}) == 2  # both operating systems are used
    assert len({p.timezone for p in profiles}) >= 4
    assert len({p.viewport for p in profiles}) >= 3


@pytest.mark.parametrize("domain", [f"site{n}.example" for n in range(20)])
def test_every_place_tells_the_same_story(domain: str) -> None:
    fp = fingerprint_for(domain, chrome_major=131)
    headers = fp.headers()
    context = fp.context_kwargs()
    stealth = fp.stealth_options()
    assert "HeadlessChrome" not in fp.user_agent and "Chrome/131.0.0.0" in fp.user_agent
    assert headers["User-Agent"] == context["user_agent"] == stealth["navigator_user_agent_override"]
    assert headers["Sec-CH-UA"] == stealth["sec_ch_ua_override"] == context["extra_http_headers"]["Sec-CH-UA"]
    assert '"Chromium";v="131"' in headers["Sec-CH-UA"]
    windows = "Windows NT" in fp.user_agent
    assert (fp.platform, headers["Sec-CH-UA-Platform"]) == (
        ("Win32", '"Windows"') if windows else ("Linux x86_64", '"Linux"'))
    assert stealth["navigator_platform_override"] == fp.platform
    assert headers["Accept-Language"].split(",")[0] == context["locale"] == stealth["navigator_languages_override"][0]
    assert context["viewport"] == context["screen"] == {"width": fp.viewport[0], "height": fp.viewport[1]}
    assert "User-Agent" not in context["extra_http_headers"]  # Playwright sets it from user_agent


@pytest.mark.parametrize(
    ("languages", "header"),
    [(("en-US", "en"), "en-US,en;q=0.9"), (("de-DE", "de", "en"), "de-DE,de;q=0.9,en;q=0.8")],
)
def test_accept_language_follows_chromium_format(languages, header) -> None:
    from dataclasses import replace

    assert replace(fingerprint_for("x"), languages=languages).accept_language == header
