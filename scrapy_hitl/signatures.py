"""Block signatures: what anti-bot interstitials, block pages and their headers look like.

Signatures are data. The built-in ones are plain dicts at the bottom of this module, compiled
by the same :func:`compile_signature` that compiles the user's ``HITL_BLOCK_SIGNATURES``.

A signature has a **status constraint** and up to five **groups** of evidence:

``headers``
    ``{header name: regex on its value}``; an entry matches when the header is present and the
    regex finds a match in its value. An empty regex means "the header is present".
``cookies``
    regexes on the names of the cookies set by ``Set-Cookie``.
``body``
    regexes searched in the decoded body.
``url``
    regexes searched in the response URL.
``title``
    regexes searched in the page's ``<title>`` text (whitespace collapsed, entities decoded).

A group matches when **any** of its entries matches. A signature matches when:

1. its ``status`` constraint holds (``None``: any status), and the body is at most
   ``max_body`` characters long when ``max_body`` is set;
2. **every** group named in ``require`` matches; and
3. if it has other non-empty groups, **at least one** of them matches.

4. when ``max_text`` is set, the page shows a reader at most that many characters of text
   (scripts, styles, ``<noscript>``, ``<template>``, comments and tags left out; whitespace
   not counted): the refusal *is* the page, rather than a content page that mentions the
   same words. It is only measured once everything else matched, so it costs nothing on
   other pages. Such a signature's ``body`` patterns search only that visible markup (the
   invisible elements removed, once they matched the raw body), and it never matches a
   page whose ``hitl_expect`` selector matched (``Observation.expect_met``): a page with the
   spider's data is content, whatever else it says.

With the default ``require=()`` that is "status, and any group". ``require=("headers",
"body")`` with a ``title`` group reads "the header and the body, and also the title".

Cost rule: on a 2xx response longer than :data:`SMALL_2XX_BODY` characters, body patterns are
only searched when a ``title`` or ``url`` group of the same signature has already matched.
Interstitials served with a success status are small or say what they are in their title;
headers and cookies do not count, because protected sites send them with every page.

The ``kind`` says what the classifier does with a match: ``challenge`` (a captcha or JS
challenge a human, or a better automated tier, can pass), ``hard_block`` (an IP, reputation
or rule block: a solved captcha does not clear it), ``rate_limit`` (back off and retry:
Cloudflare error 1015 is one, whatever status it is served with) and ``soft_block`` (a 2xx
page that is not the content, worth a better tier but not a human).

Regexes are case-sensitive unless they start with ``(?i)``. Signatures are tried in order and
the first that matches wins (a ``soft_block`` only when nothing else matches), so the built-in
list runs rate limits, hard blocks, challenges, then soft blocks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("challenge", "hard_block", "soft_block", "rate_limit")
GROUPS = ("headers", "cookies", "body", "url", "title")
SPEC_FIELDS = ("name", "vendor", "kind", "status", *GROUPS, "require", "max_body", "max_text")
SMALL_2XX_BODY = 8192  # characters; see "Cost rule" above

_IDENT = re.compile(r"[a-z][a-z0-9_]*")


class SignatureError(ValueError):
    """A block signature is malformed.

    Raised while ``HITL_BLOCK_SIGNATURES`` is read, so the crawl does not start; the message
    names the entry, the field and the fix.
    """


@dataclass(frozen=True)
class Signature:
    """One compiled block signature; see the module docstring for the matching rules."""

    name: str
    vendor: str
    kind: str
    status: frozenset[int] | None = None
    headers: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    cookies: tuple[re.Pattern[str], ...] = ()
    body: tuple[re.Pattern[str], ...] = ()
    url: tuple[re.Pattern[str], ...] = ()
    title: tuple[re.Pattern[str], ...] = ()
    require: tuple[str, ...] = ()
    max_body: int | None = None
    max_text: int | None = None

    def __post_init__(self) -> None:
        # compile_signature() checks all this with better messages; this guards direct use.
        where = f'Signature "{self.name}"'
        if self.kind not in KINDS:
            raise SignatureError(f"{where}: kind must be one of {', '.join(KINDS)}; got {_show(self.kind)}.")
        if not any(getattr(self, group) for group in GROUPS):
            raise SignatureError(f"{where}: give at least one of {', '.join(GROUPS)}.")
        for group in self.require:
            if group not in GROUPS or not getattr(self, group):
                raise SignatureError(f"{where}: require names {_show(group)}, which is not a non-empty group.")


def compile_signature(spec: Mapping[str, Any], *, index: int, setting: str = "HITL_BLOCK_SIGNATURES") -> Signature:
    """Build a :class:`Signature` from a plain dict (one ``HITL_BLOCK_SIGNATURES`` entry).

    Fields: ``name`` (snake_case, becomes the verdict reason), ``vendor`` (default
    ``"custom"``), ``kind``, ``status`` (an int, a list of ints, or ``None`` for any), the
    groups ``headers`` (dict) and ``cookies``/``body``/``url``/``title`` (a regex or a list),
    ``require`` (group names), ``max_body`` and ``max_text`` (characters). For example::

        {"name": "acme_waf", "vendor": "acme", "kind": "hard_block", "status": 403,
         "require": ["headers"], "headers": {"x-acme-waf": ""}, "body": "Request blocked"}

    ``index`` and ``setting`` only serve the error messages. Raises :class:`SignatureError`.
    """
    if not isinstance(spec, Mapping):
        raise SignatureError(f"{setting}[{index}]: each signature must be a dict; got {type(spec).__name__}.")
    raw_name = spec.get("name")
    where = f'{setting}[{index}] ("{raw_name}")' if isinstance(raw_name, str) and raw_name else f"{setting}[{index}]"

    def fail(name: str, problem: str) -> SignatureError:
        return SignatureError(f'{where}: field "{name}" {problem}.')

    unknown = [key for key in spec if key not in SPEC_FIELDS]
    if unknown:
        raise fail(str(unknown[0]), f"is unknown; the fields are {', '.join(SPEC_FIELDS)}")
    name = _identifier(spec.get("name"), "name", fail)
    vendor = _identifier(spec.get("vendor", "custom"), "vendor", fail)
    kind = spec.get("kind")
    if kind not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}; got {_show(kind)}")
    headers = _headers(spec.get("headers"), fail)
    groups = {group: _patterns(spec.get(group), group, fail) for group in ("cookies", "body", "url", "title")}
    if not headers and not any(groups.values()):
        raise SignatureError(
            f"{where}: no patterns; give at least one of the fields {', '.join(GROUPS)} "
            "(a signature without patterns would match every response)."
        )
    require = spec.get("require", ())
    require = (require,) if isinstance(require, str) else require
    if not isinstance(require, Sequence) or any(group not in GROUPS for group in require):
        raise fail("require", f"must be a list of group names among {', '.join(GROUPS)}; got {_show(require)}")
    for group in require:
        if not (headers if group == "headers" else groups[group]):
            raise fail("require", f"names {_show(group)}, but that group is empty; add patterns or drop it")
    max_body, max_text = spec.get("max_body"), spec.get("max_text")
    for limit, value in (("max_body", max_body), ("max_text", max_text)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise fail(limit, f"must be a number of characters (an int >= 0) or null; got {_show(value)}")
    return Signature(
        name=name,
        vendor=vendor,
        kind=kind,
        status=_status(spec.get("status"), fail),
        headers=headers,
        require=tuple(dict.fromkeys(require)),
        max_body=max_body,
        max_text=max_text,
        **groups,
    )


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _identifier(value: object, name: str, fail: Any) -> str:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        problem = "must be snake_case (lower-case letters, digits and underscores; it becomes a stats key)"
        raise fail(name, f"{problem}; got {_show(value)}")
    return value


def _status(value: object, fail: Any) -> frozenset[int] | None:
    if value is None:
        return None
    codes = [value] if isinstance(value, int) else value
    if not isinstance(codes, Sequence) or isinstance(codes, str) or not codes:
        raise fail("status", f"must be an HTTP status, a list of them, or null for any; got {_show(value)}")
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise fail("status", f"must hold HTTP statuses (ints from 100 to 599); got {_show(code)}")
    return frozenset(codes)


def _compile(pattern: object, name: str, fail: Any, *, allow_empty: bool = False) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str) or not (pattern or allow_empty):
        raise fail(name, f"must hold non-empty regular expressions (strings); got {_show(pattern)}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise fail(name, f"has an invalid regular expression {_show(pattern)}: {exc}") from None


def _patterns(value: object, name: str, fail: Any) -> tuple[re.Pattern[str], ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, (str, re.Pattern)) else value
    if not isinstance(items, Sequence):
        raise fail(name, f"must be a regular expression or a list of them; got {_show(value)}")
    return tuple(_compile(item, name, fail) for item in items)


def _headers(value: object, fail: Any) -> dict[str, re.Pattern[str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        example = '{"x-iinfo": ""}'
        raise fail("headers", f"must be a dict of header name to regex, e.g. {example}; got {_show(value)}")
    compiled = {}
    for header, pattern in value.items():
        if not isinstance(header, str) or not header.strip():
            raise fail("headers", f"has a header name that is not a non-empty string: {_show(header)}")
        compiled[header.strip().lower()] = _compile(pattern, "headers", fail, allow_empty=True)
    return compiled


# --- built-in signatures ----------------------------------------------------------------
# Markers are the vendors' own markup, headers and cookie names. Site-wide headers and
# cookies (cf-ray, x-datadome, visid_incap_*, _pxhd) are never enough on their own: they
# are also sent with every normal page, so they only count next to a blocking status or
# a body marker.

_CLOUDFLARE = {"cf-ray": "", "server": r"(?i)^cloudflare"}
_CF_BANNED = r"10(?:0[5-9]|1[02]|20)"  # 1005-1009 ASN/IP/country bans, 1010 browser, 1012, 1020 WAF rule


def _cf_error_code(code: str) -> tuple[str, ...]:
    """Cloudflare's error page markup for ``code`` (a regex), old and new templates, and plain text."""
    return (
        rf'data-translate="error">Error</span>\s*<span[^>]*>{code}</span>',
        rf'class="cf-error-code">{code}<',
        rf"^error code: {code}\s*$",
    )


_VERIFY_TITLE = (  # a title saying "this page is a check"; \b and the first letters keep it fast
    r"(?i)\b(?=[abchnorsuv])(?:captcha|are you a robot|not a robot|robot check|are you (?:a )?human|human verification"
    r"|verify(?:ing)? (?:that )?you(?: are|'re) (?:a )?human|security (?:check|verification)"
    r"|bot (?:check|protection|detection)|unusual traffic|checking your browser|browser check"
    r"|one more step|attention required|access denied|verification required)"
)
_REFUSAL_TEXT = 1000  # visible characters (whitespace not counted): a refusal page says little else
# The rest of a refusal's element after its phrase: nothing, or punctuation and a short
# statement that asks nothing ("Bot detected." / "Automation detected. Access denied"), then
# the element ends. "Robot detected on Mars" and "Bots detected on your site?" do not fit.
_REFUSAL_END = r"\s*(?:[.!:;,\u2013\u2014-][^<?]{0,100})?<"
_REFUSAL_ALONE = r"\s*[.!]?\s*<"  # a vendor's fixed wording: the element says that and nothing else
_ARE = r"(?: are|'re|\u2019re|&#39;re|&#x27;re|&rsquo;re)"  # "you are", "you're" as pages write it
# Body regexes start with a literal where they can: Python's re finds a literal prefix fast
# and tries an alternation at every position slowly.
_WIDGETS = (  # (family, vendor, markup markers)
    ("recaptcha", "recaptcha", (r"/recaptcha/(?:api|enterprise)\.js", r'class="g-recaptcha\b')),
    ("hcaptcha", "hcaptcha", (r"hcaptcha\.com/1/api\.js", r'class="h-captcha\b')),
    ("turnstile", "turnstile", (r"challenges\.cloudflare\.com/turnstile/v0/api\.js", r'class="cf-turnstile\b')),
    ("smartcaptcha", "yandex", (r"smartcaptcha\.yandexcloud\.net/captcha\.js", r'class="smart-captcha\b')),
)

_DEFAULT_SPECS: tuple[dict[str, Any], ...] = (
    # Rate limits first: a 1015 page must not read as a 1020 ban.
    {
        "name": "cloudflare_rate_limited",
        "vendor": "cloudflare",
        "kind": "rate_limit",
        "require": ["headers"],
        "headers": _CLOUDFLARE,
        "title": r"(?i)^you are being rate limited",
        "body": [*_cf_error_code("1015"), r"You are being rate limited"],
    },
    # Hard blocks: a human solving a captcha would not get through.
    {
        "name": "cloudflare_access_denied",
        "vendor": "cloudflare",
        "kind": "hard_block",
        "require": ["headers"],
        "headers": _CLOUDFLARE,
        "title": r"^Access denied \| .* used Cloudflare to restrict access$",
        "body": [
            *_cf_error_code(_CF_BANNED),
            r"Sorry, you have been blocked",
            r"has banned your (?:IP address|access based on your browser's signature)",
        ],
    },
    {
        "name": "datadome_banned",
        "vendor": "datadome",
        "kind": "hard_block",
        "require": ["body"],
        "headers": {"x-datadome": "", "x-dd-b": "", "x-datadome-cid": ""},
        "cookies": r"^datadome$",
        "body": [r"var dd=\{[^}]*'t':'bv'", r"captcha-delivery\.com/captcha/\?[^\"'>]*\bt=bv\b"],
    },
    {
        "name": "akamai_access_denied",
        "vendor": "akamai",
        "kind": "hard_block",
        "require": ["body"],
        "headers": {"server": r"(?i)akamai"},
        "title": r"(?i)^access denied$",
        "body": [
            r"You don't have permission to access .{1,500}? on this server",
            r"Reference(?: |&#32;)(?:#|&#35;)\d+(?:\.|&#46;)[0-9a-f]+",
            r"errors\.edgesuite\.net/\d+\.",
        ],
    },
    {
        "name": "imperva_access_denied",
        "vendor": "imperva",
        "kind": "hard_block",
        "require": ["body"],
        "headers": {"x-iinfo": "", "x-cdn": r"(?i)imperva|incapsula"},
        "cookies": [r"^visid_incap_\d+$", r"^incap_ses_\d+_\d+$"],
        "body": r"This request was blocked by (?:our|the) security (?:service|rules)",
    },
    {
        "name": "sucuri_access_denied",
        "vendor": "sucuri",
        "kind": "hard_block",
        "title": r"^Sucuri WebSite Firewall - Access Denied",
    },
    # Challenges: a captcha or JS check that a human (or a better tier) can pass.
    {
        "name": "cloudflare_challenge",
        "vendor": "cloudflare",
        "kind": "challenge",
        "require": ["headers"],
        "headers": {"cf-mitigated": r"^challenge$", **_CLOUDFLARE},
        "title": [r"^Just a moment\.\.\.$", r"^Attention Required! \| Cloudflare$"],
        "body": [
            r"window\._cf_chl_opt\s*=",
            r"/cdn-cgi/challenge-platform/h/[a-z]/orchestrate/(?:chl_page|managed|jsch|captcha)/",
            r'class="cf-browser-verification\b',
            r'id="cf-challenge-running"',
        ],
    },
    {
        "name": "datadome_captcha",
        "vendor": "datadome",
        "kind": "challenge",
        "status": [403, 429],
        "headers": {"x-datadome": "", "x-dd-b": "", "x-datadome-cid": ""},
        "cookies": r"^datadome$",
        "body": [r"var dd=\{[^}]*'rt':'[ci]'", r"captcha-delivery\.com/"],
    },
    {
        "name": "perimeterx_captcha",
        "vendor": "perimeterx",
        "kind": "challenge",
        "status": [403, 429],
        "cookies": r"^_px(?:hd|3|2|vid|cvid)?$",
        "title": r"(?i)^access to this page has been (?:denied|blocked)",
        "body": [
            r'id="px-captcha"',
            r"captcha\.px-cdn\.net/",
            r"window\._pxAppId\s*=",
            r"Press &(?:amp;)? Hold",
            r'"blockScript"\s*:',
        ],
    },
    {
        "name": "imperva_challenge",
        "vendor": "imperva",
        "kind": "challenge",
        "require": ["body"],
        "max_body": 32768,
        "headers": {"x-iinfo": "", "x-cdn": r"(?i)imperva|incapsula"},
        "cookies": [r"^visid_incap_\d+$", r"^incap_ses_\d+_\d+$", r"^nlbi_\d+$"],
        "body": [r"Incapsula incident ID", r"/_Incapsula_Resource\?(?:CWUDNSAI|SWUDNSAI)="],
    },
    {
        "name": "imperva_abp_challenge",
        "vendor": "imperva",
        "kind": "challenge",
        "title": r"^Pardon Our Interruption",
        "body": r"/distil_r_(?:captcha|blocked)\.html",
    },
    {
        "name": "aws_waf_challenge",
        "vendor": "aws_waf",
        "kind": "challenge",
        "status": [202, 403, 405, 429],
        "headers": {"x-amzn-waf-action": r"^(?:captcha|challenge)$"},
        "body": [r"window\.gokuProps\s*=", r"token\.awswaf\.com/", r"captcha\.awswaf\.com/", r"AwsWafIntegration\."],
    },
    {
        "name": "yandex_captcha",
        "vendor": "yandex",
        "kind": "challenge",
        "url": r"/(?:showcaptcha|checkcaptcha)(?:[/?#]|$)",
        "headers": {"x-yandex-captcha": "", "location": r"/showcaptcha(?:[/?#]|$)"},
        "title": r"^(?:Вы не робот\?|Are you not a robot\?)",
        "body": [r'action="/checkcaptcha\?', r'class="CheckboxCaptcha\b', r'class="AdvancedCaptcha\b'],
    },
    {
        "name": "google_unusual_traffic",
        "vendor": "google",
        "kind": "challenge",
        "url": r"^https?://(?:[a-z0-9-]+\.)*google\.[a-z.]+/sorry/",
        "headers": {"location": r"^https?://(?:[a-z0-9-]+\.)*google\.[a-z.]+/sorry/"},
        "body": r"Our systems have detected unusual traffic from your computer network",
    },
    {
        "name": "amazon_captcha",
        "vendor": "amazon",
        "kind": "challenge",
        "require": ["body"],
        "title": r"(?i)^(?:amazon\.[a-z.]+|robot check)$",
        "body": [r'action="/errors/validateCaptcha"', r"Type the characters you see in this image"],
    },
    # Generic captcha widgets: a block on a blocking status, or on a small page whose title
    # says it is a check. A 200 page with reCAPTCHA on its contact form is not a block.
    *(
        spec
        for family, vendor, markers in _WIDGETS
        for spec in (
            {
                "name": f"{family}_challenge",
                "vendor": vendor,
                "kind": "challenge",
                "status": [403, 429, 503],
                "body": list(markers),
            },
            {
                "name": f"{family}_interstitial",
                "vendor": vendor,
                "kind": "challenge",
                "require": ["title", "body"],
                "max_body": 32768,
                "title": _VERIFY_TITLE,
                "body": list(markers),
            },
        )
    ),
    # In-page refusals: a detector's verdict written into the body of a page that keeps the
    # site's own title (often by a script, after load: the browser tiers judge the rendered
    # DOM). A better tier may pass, so they climb while one is left, then ask a human. Being
    # max_text signatures, they only read what a reader sees (scripts, templates, comments...
    # removed), only on a page that shows little else, and never on a page whose hitl_expect
    # matched. Each phrase must be (nearly) the whole text of its element (_REFUSAL_END), so a
    # heading that merely starts with the words ("Robot detected on Mars") is not enough; a
    # 2xx page over SMALL_2XX_BODY is content and never searched.
    {
        "name": "imperva_interruption",
        "vendor": "imperva",
        "kind": "challenge",
        "max_body": 32768,
        "max_text": _REFUSAL_TEXT,
        "body": [
            r"(?i)>\s*Pardon Our Interruption" + _REFUSAL_ALONE,
            r"(?i)>\s*As you were browsing,? something about your browser made us think you were a bot" + _REFUSAL_END,
        ],
    },
    {
        "name": "imperva_incident",
        "vendor": "imperva",
        "kind": "challenge",
        "max_body": 32768,
        "max_text": _REFUSAL_TEXT,
        "body": r"(?i)>\s*Request unsuccessful\. Incapsula incident ID:?\s*[\w-]{0,80}\s*<",
    },
    {
        "name": "datadome_js_check",
        "vendor": "datadome",
        "kind": "challenge",
        "max_body": 32768,
        "max_text": _REFUSAL_TEXT,
        "body": r"(?i)>\s*Please enable JS and disable any ad blocker" + _REFUSAL_ALONE,
    },
    {
        "name": "perimeterx_refusal",
        "vendor": "perimeterx",
        "kind": "challenge",
        "max_body": 32768,
        "max_text": _REFUSAL_TEXT,
        "body": r"(?i)>\s*(?:Access to this page has been denied because )?"
        r"we believe you are using automation tools to browse the website" + _REFUSAL_END,
    },
    {
        "name": "automation_refused",
        "vendor": "generic",
        "kind": "challenge",
        "max_body": 32768,
        "max_text": _REFUSAL_TEXT,
        "body": [
            r"(?i)>\s*(?:automation|automated (?:browser|software|traffic|access|requests?)|headless (?:browser|chrome)"
            r"|bots?|robot|webdriver|selenium|puppeteer|playwright)(?: (?:was|has been))? detected" + _REFUSAL_END,
        ],
    },
    {
        # Not "Are you a robot?" alone: a quiz or an article asks that too.
        "name": "human_verification",
        "vendor": "generic",
        "kind": "challenge",
        "max_body": 32768,
        "max_text": _REFUSAL_TEXT,
        "body": [
            rf"(?i)>\s*(?:please )?(?:verify|verifying|confirm)(?: that)? you{_ARE} (?:a )?human"
            r"(?: by [^<?.]{0,60})?" + _REFUSAL_END,
            rf"(?i)>\s*(?:please )?(?:verify|confirm)(?: that)? you{_ARE} not a (?:ro)?bot" + _REFUSAL_END,
            rf"(?i)>\s*(?:sorry,? )?we just need to make sure you{_ARE} not a robot" + _REFUSAL_END,
        ],
    },
    # Soft blocks: a 2xx page a browser gets past on its own.
    {
        # A page script found automation markers (navigator.webdriver, a headless user
        # agent...) and showed a refusal instead of the content: a stealth browser passes.
        "name": "automation_detected",
        "kind": "soft_block",
        "require": ["title", "body"],
        "max_body": 65536,
        "title": r"(?i)^\s*(access denied|you have been blocked|blocked\b|bot detected|unusual (traffic|activity))",
        "body": r"(?i)automated browser|headless (browser|chrome)|automation (tool|software)|bot detected",
    },
    {
        "name": "sucuri_js_challenge",
        "vendor": "sucuri",
        "kind": "soft_block",
        "require": ["body"],
        "headers": {"x-sucuri-id": "", "server": r"(?i)^sucuri"},
        "body": r"sucuri_cloudproxy_js\s*=",
    },
)

DEFAULT_SIGNATURES: tuple[Signature, ...] = tuple(
    compile_signature(spec, index=i, setting="DEFAULT_SIGNATURES")
    for i, spec in enumerate(_DEFAULT_SPECS)
)
