"""One consistent browser fingerprint per domain, for the stealth tier.

Bot checks compare what a client says about itself in several places: the User-Agent
header, ``navigator.userAgent`` and ``navigator.platform``, the client hints
(``Sec-CH-UA*``), ``Accept-Language`` and ``navigator.languages``, the timezone and the
screen. A stealth context tells the same story everywhere, and tells it again on every
visit: the profile is chosen from the domain's name, so a site sees one returning visitor
rather than a new machine per request. Pure functions; the browser code applies them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

# (user-agent platform token, navigator.platform, Sec-CH-UA-Platform)
_SYSTEMS = (
    ("X11; Linux x86_64", "Linux x86_64", "Linux"),
    ("Windows NT 10.0; Win64; x64", "Win32", "Windows"),
)
# (languages, timezone): a timezone that fits the language, as a real visitor's would
_LOCALES = (
    (("en-US", "en"), "America/New_York"),
    (("en-US", "en"), "America/Chicago"),
    (("en-GB", "en"), "Europe/London"),
    (("de-DE", "de", "en"), "Europe/Berlin"),
    (("fr-FR", "fr", "en"), "Europe/Paris"),
)
_VIEWPORTS = ((1366, 768), (1440, 900), (1536, 864), (1920, 1080))
DEFAULT_CHROME_MAJOR = 131  # used when the installed browser's version cannot be read


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a stealth context presents for one domain."""

    user_agent: str
    platform: str  # navigator.platform
    ch_platform: str  # Sec-CH-UA-Platform, unquoted
    languages: tuple[str, ...]
    timezone: str
    viewport: tuple[int, int]
    chrome_major: int

    @property
    def locale(self) -> str:
        return self.languages[0]

    @property
    def sec_ch_ua(self) -> str:
        # Chromium's own brand list, with the "GREASE" brand real Chrome sends.
        return f'"Chromium";v="{self.chrome_major}", "Not_A Brand";v="24"'

    @property
    def accept_language(self) -> str:
        """``en-GB,en;q=0.9``: Chromium's format for navigator.languages."""
        parts = [self.languages[0]]
        for i, lang in enumerate(self.languages[1:], start=1):
            parts.append(f"{lang};q={1 - i / 10:.1f}")
        return ",".join(parts)

    def headers(self) -> dict[str, str]:
        """HTTP headers of a page load (they win over the browser's own on navigation)."""
        return {
            "User-Agent": self.user_agent,
            "Accept-Language": self.accept_language,
            "Sec-CH-UA": self.sec_ch_ua,
            "Sec-CH-UA-Mobile": "?0",
            "Sec-CH-UA-Platform": f'"{self.ch_platform}"',
        }

    def context_kwargs(self) -> dict[str, Any]:
        """Playwright ``new_context`` arguments: the browser-side half of the story."""
        width, height = self.viewport
        return {
            "user_agent": self.user_agent,
            "locale": self.locale,
            "timezone_id": self.timezone,
            "viewport": {"width": width, "height": height},
            "screen": {"width": width, "height": height},
            "extra_http_headers": {k: v for k, v in self.headers().items() if k != "User-Agent"},
        }

    def stealth_options(self) -> dict[str, Any]:
        """Keyword arguments for ``playwright_stealth.Stealth``: the JavaScript half."""
        return {
            "navigator_user_agent_override": self.user_agent,
            "navigator_platform_override": self.platform,
            "navigator_languages_override": (self.languages[0], self.languages[1]),
            "sec_ch_ua_override": self.sec_ch_ua,
        }


def chrome_major(version_output: str) -> int:
    """The major version from ``chromium --version`` ("Chromium 131.0.6778.85 built on
    Debian"), or :data:`DEFAULT_CHROME_MAJOR` when there is none."""
    match = re.search(r"\b(\d{2,3})\.\d+\.\d+\.\d+\b", version_output or "")
    return int(match.group(1)) if match else DEFAULT_CHROME_MAJOR


def fingerprint_for(domain: str, *, chrome_major: int = DEFAULT_CHROME_MAJOR) -> Fingerprint:
    """The profile for ``domain``: the same domain always gets the same one.

    The User-Agent names the installed browser's real major version, so the features a
    page can probe match what the header claims.
    """
    digest = hashlib.sha256(domain.lower().encode()).digest()
    ua_token, platform, ch_platform = _SYSTEMS[digest[0] % len(_SYSTEMS)]
    languages, timezone = _LOCALES[digest[1] % len(_LOCALES)]
    viewport = _VIEWPORTS[digest[2] % len(_VIEWPORTS)]
    user_agent = (
        f"Mozilla/5.0 ({ua_token}) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{chrome_major}.0.0.0 Safari/537.36"
    )
    return Fingerprint(
        user_agent=user_agent, platform=platform, ch_platform=ch_platform, languages=languages,
        timezone=timezone, viewport=viewport, chrome_major=chrome_major,
    )
