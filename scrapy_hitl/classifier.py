"""The block classifier: one pure decision per response, no I/O, no Scrapy.

:func:`classify` turns an :class:`Observation` (status, headers, the start of the body, and
what the caller knows about the request) into a :class:`Verdict`, in this order:

1. ``network_error`` -> ``retry(<error name in snake_case>)``; never a human.
2-4. The first matching signature (the user's first, then the built-in ones, which list
   rate limits, then hard blocks, then challenges) decides by its kind:

   - ``rate_limit`` (Cloudflare 1015) -> ``retry("rate_limited")``: a rate limit clears by
     waiting, whatever status it came with; neither a human nor a new tier helps.
   - ``hard_block`` -> ``pause("manual_access", "hard_block")``, never an escalation.
   - ``challenge`` (captchas, JS challenges, and the in-page refusals of bot detectors:
     "Automation detected", "Pardon Our Interruption"...) -> ``escalate(<signature name>)``
     when a higher automated tier is left, else ``pause("captcha_solve", <signature name>)``.
     The in-page refusals (``max_text`` signatures) never match a page whose ``hitl_expect``
     matched (``expect_met``): it holds the spider's data.
5. 429 -> ``retry("rate_limited")``; 503 with Retry-After -> ``retry("service_unavailable")``;
   other 5xx and 408 -> ``retry("http_<code>")``.
6. 401 -> ``pause("login_refresh", "http_401")``; 403 -> ``login_refresh`` when a session was
   attached (it has expired), else ``manual_access``.
7. A redirect to a login page -> ``pause("login_refresh", "login_redirect")``.
8. 2xx: a ``soft_block`` signature, or a missing ``hitl_expect`` selector (on any tier,
   rendered or not: climb before blaming the selector), or (on an unrendered 200 HTML page)
   an empty body or a JavaScript app shell -> ``escalate`` when a tier is left. Otherwise a
   missing selector pauses: ``manual_access`` when a soft block explains it (the selector is
   not what broke), else ``selector_fix``; the rest is ``ok``.
9. Other 4xx -> ``fail("http_<code>")``; everything else -> ``ok``.

Signatures (steps 2-4 and 8) come from :mod:`scrapy_hitl.signatures`. The common case, a 2xx
content page, costs a few dictionary lookups and a title search: bodies are only scanned
when they are small or the title or URL already points at a vendor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import unescape
from re import _constants as _sre_constants  # type: ignore[attr-defined]
from re import _parser as _sre_parser  # type: ignore[attr-defined]
from typing import Any
from urllib.parse import urlsplit

from ahocorasick_rs import MATCHKIND_LEFTMOST_FIRST, BytesAhoCorasick, Implementation

from scrapy_hitl.signatures import (
    DEFAULT_SIGNATURES,
    SMALL_2XX_BODY,
    Signature,
    SignatureError,
    compile_signature,
)

__all__ = [
    "ACCESS_CLASSES",
    "PAUSE_TYPES",
    "BlockClassifier",
    "Observation",
    "Verdict",
    "classify",
]

PAUSE_TYPES = ("manual_access", "login_refresh", "captcha_solve", "selector_fix")
ACCESS_CLASSES = ("public", "infra", "human")
ACTIONS = ("ok", "retry", "escalate", "pause", "fail")

_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_TITLE_SCAN = 32768  # characters searched for <title>
_NOSCRIPT_SCAN = 32768  # characters searched for <body
_NOSCRIPT_WINDOW = 8192  # characters after <body searched for <noscript>
_TINY_PAGE = 4096  # characters; a 200 page this small is measured for visible text
_SHELL_TEXT = 100  # visible characters below which a noscript "enable JavaScript" page is a shell
_EMPTY_TEXT = 16  # visible characters below which a tiny page is empty


@dataclass(slots=True)
class Observation:
    """What the classifier sees of one response (or of a request that got none).

    Not frozen: one is built for every response, and a frozen dataclass's ``__init__`` sets
    each of its twelve fields through ``object.__setattr__`` (about 1 µs a response). Nothing
    changes one after it is built."""

    url: str
    status: int
    headers: Mapping[str, str]  # lower-cased names; the last value of each header
    body: str = ""  # decoded text, at most HITL_CLASSIFIER_MAX_BODY characters
    has_session: bool = False  # a vault session was attached to the request
    access_class: str = "public"  # the domain's learned class; the caller folds it into can_escalate
    expect_missing: bool = False  # the spider's hitl_expect selector was set and matched nothing
    expect_met: bool = False  # it was set and matched: the page is content, not a refusal (max_text)
    can_escalate: bool = False  # a higher automated tier (browser, stealth) is still available
    rendered: bool = False  # the body is a browser's rendering: its scripts have already run
    shell_check: bool = True  # False: skip the empty-page / JavaScript-shell heuristics (a sampled page)
    network_error: str | None = None  # exception class name when there was no response at all
    # The undecoded body when the response declares UTF-8 (at least the bytes of ``body``):
    # the literal screen folds it as it is instead of encoding ``body`` back (fold_for_literals)
    utf8_body: bytes | None = None

    def __post_init__(self) -> None:
        if self.access_class not in ACCESS_CLASSES:
            raise ValueError(
                f"Observation.access_class must be one of {', '.join(ACCESS_CLASSES)}; "
                f"got {self.access_class!r}."
            )
        if self.expect_met and self.expect_missing:
            raise ValueError("Observation: expect_met and expect_missing cannot both be True.")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a response: ``action``, plus the pause ``type`` when pausing."""

    action: str  # "ok" | "retry" | "escalate" | "pause" | "fail"
    type: str | None = None  # one of PAUSE_TYPES when action == "pause", else None
    reason: str = ""  # short snake_case reason: "http_403", "hard_block", "cloudflare_challenge"...
    vendor: str | None = None  # "cloudflare", "datadome"... when a signature matched

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"Verdict.action must be one of {', '.join(ACTIONS)}; got {self.action!r}.")
        type_ok = self.type in PAUSE_TYPES if self.action == "pause" else self.type is None
        if not type_ok:
            raise ValueError(
                f"Verdict.type must be one of {', '.join(PAUSE_TYPES)} when pausing and None "
                f"otherwise; got action={self.action!r}, type={self.type!r}."
            )

    @classmethod
    def ok(cls) -> Verdict:
        """Let the response through."""
        return _OK

    @classmethod
    def retry(cls, reason: str, *, vendor: str | None = None) -> Verdict:
        """Retry the request later at the same tier; no human."""
        return cls("retry", None, reason, vendor)

    @classmethod
    def escalate(cls, reason: str, vendor: str | None = None) -> Verdict:
        """Retry the request at the next automated tier (browser, stealth)."""
        return cls("escalate", None, reason, vendor)

    @classmethod
    def pause(cls, type: str, reason: str, vendor: str | None = None) -> Verdict:
        """Park the request and ask a human for help of this ``type`` (one of PAUSE_TYPES)."""
        return cls("pause", type, reason, vendor)

    @classmethod
    def fail(cls, reason: str, *, vendor: str | None = None) -> Verdict:
        """Give up on the request; retrying or a human would not change the answer."""
        return cls("fail", None, reason, vendor)


_OK = Verdict("ok")


class BlockClassifier:
    """Holds compiled signatures; :meth:`classify` is the pure decision.

    ``signatures`` are tried in order, first match wins; ``None`` means
    :data:`~scrapy_hitl.signatures.DEFAULT_SIGNATURES`.
    """

    def __init__(self, signatures: Sequence[Signature] | None = None) -> None:
        self.signatures: tuple[Signature, ...] = tuple(DEFAULT_SIGNATURES if signatures is None else signatures)
        shared: dict[tuple[tuple[str, int], ...], tuple[re.Pattern[str], ...]] = {}
        self._matchers = tuple(_Matcher(signature, shared) for signature in self.signatures)
        # status -> (the matchers that apply to it, their screen or None)
        self._by_status: dict[int, tuple[tuple[_Matcher, ...], _Screen | None]] = {}

    @classmethod
    def from_settings_value(cls, extra: Sequence[Mapping[str, Any]] | None) -> BlockClassifier:
        """A classifier that tries the ``HITL_BLOCK_SIGNATURES`` entries first, then the defaults.

        Entries are dicts (see :func:`~scrapy_hitl.signatures.compile_signature`) or already
        built :class:`~scrapy_hitl.signatures.Signature` objects. Raises
        :class:`~scrapy_hitl.signatures.SignatureError` for a malformed entry.
        """
        if extra is None:
            extra = ()
        if isinstance(extra, (str, bytes, Mapping)) or not isinstance(extra, Sequence):
            raise SignatureError(
                f"HITL_BLOCK_SIGNATURES must be a list of dicts, one per signature; got {type(extra).__name__}."
            )
        if not extra and cls is BlockClassifier:
            return _DEFAULT  # the built-in signatures' screens, built once per process (at import)
        user = tuple(
            spec if isinstance(spec, Signature) else compile_signature(spec, index=i)
            for i, spec in enumerate(extra)
        )
        return cls((*user, *DEFAULT_SIGNATURES))

    def match(self, obs: Observation) -> Signature | None:
        """The signature :meth:`classify` acts on: the first non-soft match, else the first soft one."""
        if obs.network_error:
            return None
        return self._match(_Response(obs))

    def classify(self, obs: Observation) -> Verdict:
        """Decide what to do with one response; see the module docstring for the order."""
        if obs.network_error:
            return Verdict.retry(_snake_case(obs.network_error))
        signature = self._match(_Response(obs))
        if signature is not None:
            kind = signature.kind
            if kind == "rate_limit":
                return Verdict.retry("rate_limited", vendor=signature.vendor)
            if kind == "hard_block":
                return Verdict.pause("manual_access", "hard_block", signature.vendor)
            if kind == "challenge":
                if obs.can_escalate:
                    return Verdict.escalate(signature.name, signature.vendor)
                return Verdict.pause("captcha_solve", signature.name, signature.vendor)
        status = obs.status
        if 200 <= status < 300:
            return _success(obs, signature)
        if status == 429:
            return Verdict.retry("rate_limited")
        if 500 <= status < 600:
            if status == 503 and "retry-after" in obs.headers:
                return Verdict.retry("service_unavailable")
            return Verdict.retry(f"http_{status}")
        if status == 408:
            return Verdict.retry("http_408")
        if status == 401:
            return Verdict.pause("login_refresh", "http_401")
        if status == 403:
            if obs.has_session:
                return Verdict.pause("login_refresh", "http_403_with_session")
            return Verdict.pause("manual_access", "http_403")
        if status in _REDIRECTS:
            if _is_login_url(obs.headers.get("location", "")):
                return Verdict.pause("login_refresh", "login_redirect")
            return _OK
        if 400 <= status < 500:
            return Verdict.fail(f"http_{status}")
        return _OK

    def _match(self, response: _Response) -> Signature | None:
        found = self._by_status.get(response.status)
        if found is None:
            applicable = tuple(m for m in self._matchers if m.status is None or response.status in m.status)
            found = self._by_status[response.status] = (applicable, _Screen.of(applicable))
        matchers, screen = found
        if screen is not None and not screen.could_match(response):
            return None  # the common case: a page no signature has anything to say about
        return _first_match(matchers, response)


def _first_match(matchers: Sequence[_Matcher], response: _Response) -> Signature | None:
    """The first non-soft matching signature, else the first soft one."""
    soft = None
    for matcher in matchers:
        if matcher.matches(response):
            if not matcher.soft:
                return matcher.signature
            soft = soft or matcher.signature
    return soft


def classify(obs: Observation) -> Verdict:
    """:meth:`BlockClassifier.classify` with the built-in signatures only."""
    return _DEFAULT.classify(obs)


# --- matching ------------------------------------------------------------------------------


class _Response:
    """One observation plus what the matchers compute from it at most once."""

    __slots__ = ("status", "headers", "body", "url", "expect_met", "scan_body", "title_hits", "_title", "_cookies",
                 "_folded", "_visible", "_text", "_utf8")

    def __init__(self, obs: Observation) -> None:
        self.status = obs.status
        self.headers = obs.headers
        self.body = obs.body
        self.url = obs.url
        self.expect_met = obs.expect_met
        # A big 2xx page is content; its body is only searched on a title or URL hint.
        self.scan_body = not 200 <= obs.status < 300 or len(obs.body) <= SMALL_2XX_BODY
        self.title_hits: dict[int, bool] = {}
        self._title: str | None = None
        self._cookies: tuple[str, ...] | None = None
        self._folded: bytes | None = None
        self._visible: str | None = None
        self._text: int | None = None
        self._utf8 = obs.utf8_body

    @property
    def visible(self) -> str:
        """The body without what a reader never sees (``_visible_markup``): what the body
        patterns of a ``max_text`` signature search again once they matched the raw body."""
        if self._visible is None:
            self._visible = _visible_markup(self.body)
        return self._visible

    @property
    def text_length(self) -> int:
        """Visible characters of the page (``max_text``); measured only for a page that a
        signature with that bound otherwise matched."""
        if self._text is None:
            self._text = _text_length(self.visible)
        return self._text

    @property
    def folded(self) -> bytes:
        """The body, case-folded (``fold_for_literals``): what the body patterns' literal
        prefilter searches."""
        if self._folded is None:
            self._folded = fold_for_literals(self.body, self._utf8)
        return self._folded

    @property
    def title(self) -> str:
        if self._title is None:
            self._title = _title_of(self.body)
        return self._title

    @property
    def cookies(self) -> tuple[str, ...]:
        if self._cookies is None:
            raw = self.headers.get("set-cookie", "")
            if "," in raw or "\n" in raw:  # several cookies joined, or an Expires date
                self._cookies = tuple(_COOKIE_NAME.findall(raw))
            else:
                name, equals, _ = raw.partition("=")
                self._cookies = (name.strip(),) if equals else ()
        return self._cookies


def _headers_match(patterns: tuple[tuple[str, re.Pattern[str]], ...], response: _Response) -> bool:
    headers = response.headers
    for name, pattern in patterns:
        value = headers.get(name)
        if value is not None and pattern.search(value):
            return True
    return False


def _cookies_match(patterns: tuple[re.Pattern[str], ...], response: _Response) -> bool:
    names = response.cookies
    return any(pattern.search(name) for name in names for pattern in patterns)


def _url_match(patterns: tuple[re.Pattern[str], ...], response: _Response) -> bool:
    return any(pattern.search(response.url) for pattern in patterns)


def _title_match(patterns: tuple[re.Pattern[str], ...], response: _Response) -> bool:
    # Several signatures share one title regex (the captcha widgets' "is this a check page"
    # test); the patterns tuple is shared too, so its id keys the answer for this response.
    known = response.title_hits.get(id(patterns))
    if known is None:
        title = response.title
        known = response.title_hits[id(patterns)] = bool(title) and any(p.search(title) for p in patterns)
    return known


# (is a hint, test, patterns): the cheap groups of one signature, ready to run
_Check = tuple[bool, Callable[[Any, "_Response"], bool], Any]


class _Matcher:
    """A signature prepared for matching: cheap groups first, the body last."""

    __slots__ = (
        "signature", "status", "soft", "max_body", "max_text", "required", "optional", "body", "body_required",
        "body_optional", "body_literals", "folded_literals",
    )

    def __init__(self, signature: Signature, shared: dict[Any, tuple[re.Pattern[str], ...]]) -> None:
        self.signature = signature
        self.status = signature.status
        self.soft = signature.kind == "soft_block"
        self.max_body = signature.max_body
        self.max_text = signature.max_text
        # URL and title first: they are the hints (this page, not just this site, is
        # special) that allow a body scan on a big 2xx page.
        checks: list[tuple[str, _Check]] = []
        if signature.url:
            checks.append(("url", (True, _url_match, signature.url)))
        if signature.title:
            key = tuple((p.pattern, p.flags) for p in signature.title)
            checks.append(("title", (True, _title_match, shared.setdefault(key, signature.title))))
        if signature.headers:
            checks.append(("headers", (False, _headers_match, tuple(signature.headers.items()))))
        if signature.cookies:
            checks.append(("cookies", (False, _cookies_match, signature.cookies)))
        self.required = tuple(check for group, check in checks if group in signature.require)
        self.optional = tuple(check for group, check in checks if group not in signature.require)
        self.body = signature.body
        self.body_literals = _body_literals(signature.body)
        self.folded_literals = (None if self.body_literals is None
                                else tuple(literal.encode("ascii") for literal in self.body_literals))
        self.body_required = "body" in signature.require
        self.body_optional = bool(signature.body) and not self.body_required

    def matches(self, response: _Response) -> bool:
        # The status was checked when the matcher list for this status was built.
        if self.max_body is not None and len(response.body) > self.max_body:
            return False
        if self.max_text is not None and response.expect_met:
            return False  # "the refusal is the page", but the page holds what the spider expected
        hinted = False
        for hint, test, patterns in self.required:
            if not test(patterns, response):
                return False
            hinted = hinted or hint
        satisfied = not self.optional and not self.body_optional
        for hint, test, patterns in self.optional:
            if test(patterns, response):
                satisfied = True
                hinted = hinted or hint
                break
        if not self.body_required:
            if satisfied:
                return self.max_text is None or response.text_length <= self.max_text
            if not self.body_optional:
                return False
        elif not satisfied:
            return False
        # The body is needed: required, or the one optional group left that could match.
        if not (response.scan_body or hinted):
            return False
        literals = self.folded_literals
        if literals is not None:
            folded = response.folded
            if not any(literal in folded for literal in literals):
                return False  # no pattern can match: skip the regexes
        body = response.body
        if not any(pattern.search(body) for pattern in self.body):
            return False
        if self.max_text is None:
            return True
        # A max_text signature reads what a reader sees: a refusal in a script's string (an
        # innerHTML it may never set), a <template> or a comment is not on the page. Only a
        # page the patterns matched pays for removing those.
        visible = response.visible
        if visible is not body and not any(pattern.search(visible) for pattern in self.body):
            return False
        return response.text_length <= self.max_text


class _Screen:
    """One pass over everything the matchers of one status look at, to rule them all out.

    A matcher can only match when one of its groups does (a URL, title, header or cookie
    pattern), or its body patterns do (which needs one of its literals in the body, and a
    body that is scanned). So when no pattern of any matcher finds anything, and no body
    literal is in the body, none can match: the clean page, the common case, skips the
    per-matcher loop. Any hit sends the response through the matchers, which decide as
    before. A status with a matcher that needs no group at all, or body patterns without a
    literal, gets no screen.
    """

    __slots__ = ("urls", "titles", "headers", "cookies", "literals", "_any_literal", "_header_names",
                 "_by_header")

    def __init__(self, urls: tuple[re.Pattern[str], ...], titles: tuple[re.Pattern[str], ...],
                 headers: tuple[tuple[str, re.Pattern[str]], ...], cookies: tuple[re.Pattern[str], ...],
                 literals: tuple[str, ...]) -> None:
        # Searched on every response: the patterns of each group are joined where that
        # keeps their meaning (_joined), so a clean page costs one search per group, not one
        # per pattern, and only the headers the response has are looked at.
        self.urls = _joined(urls)
        self.titles = _joined(titles)
        self.headers = headers
        by_header: dict[str, list[re.Pattern[str]]] = {}
        for name, pattern in headers:
            by_header.setdefault(name, []).append(pattern)
        self._by_header = {name: _joined(patterns) for name, patterns in by_header.items()}
        self._header_names = frozenset(by_header)
        self.cookies = _joined(cookies)
        self.literals = literals
        # Aho-Corasick: all the literals in one pass over the body (ahocorasick-rs, Rust),
        # instead of one substring search per literal: ~4 µs for a 1 KB page and 38 literals,
        # against ~16 µs, and the gap grows with the page. Leftmost-first: only whether some
        # literal occurs matters, and a body has a leftmost-first match exactly when it has
        # any; that search runs the crate's prefilters (0.8 µs for a 1 KB page and 44
        # literals, against 2.2 µs for the standard (non-overlapping) search). A contiguous
        # NFA, not the DFA the crate picks for so few literals: with the prefilters finding
        # the candidates, both search a 1 KB or 30 KB page in the same time, and the DFA
        # takes 233 KB of memory per screen (one per response status a crawl meets), the
        # NFA 41 KB.
        self._any_literal = (BytesAhoCorasick([lit.encode("ascii") for lit in literals],
                                              matchkind=MATCHKIND_LEFTMOST_FIRST,
                                              implementation=Implementation.ContiguousNFA)
                             if literals else None)

    @classmethod
    def of(cls, matchers: Sequence[_Matcher]) -> _Screen | None:
        groups: dict[Any, dict[Any, None]] = {_url_match: {}, _title_match: {}, _headers_match: {}, _cookies_match: {}}
        literals: dict[str, None] = {}
        for matcher in matchers:
            checks = matcher.required + matcher.optional
            if not checks and not matcher.body:
                return None  # matches on the status alone
            if matcher.body:
                if matcher.body_literals is None:
                    return None  # its regexes run on every body
                literals.update(dict.fromkeys(matcher.body_literals))
            for _hint, test, patterns in checks:
                groups[test].update(dict.fromkeys(patterns))
        if not matchers:
            return None
        # A literal that contains another one adds nothing to "is any of them in the body".
        needed = tuple(lit for lit in literals if not any(o != lit and o in lit for o in literals))
        return cls(tuple(groups[_url_match]), tuple(groups[_title_match]), tuple(groups[_headers_match]),
                   tuple(groups[_cookies_match]), needed)

    def could_match(self, response: _Response) -> bool:
        url = response.url
        for pattern in self.urls:
            if pattern.search(url):
                return True
        if self.titles:
            title = response.title
            if title:
                for pattern in self.titles:
                    if pattern.search(title):
                        return True
        headers = response.headers
        for name in self._header_names.intersection(headers):  # usually none, or "server"
            value = headers[name]
            for pattern in self._by_header[name]:
                if pattern.search(value):
                    return True
        if self.cookies and "set-cookie" in headers:
            names = response.cookies
            if any(pattern.search(name) for name in names for pattern in self.cookies):
                return True
        if self._any_literal is not None and response.scan_body:
            return bool(self._any_literal.find_matches_as_indexes(response.folded))
        return False


# Inline flags at the start of a pattern ("(?i)^access denied"): the joined pattern gets them
# as its flags instead (only patterns with the same flags are joined).
_LEADING_FLAGS = re.compile(r"^(?:\(\?[aiLmsux]+\))+")
# Numbered or named back-references and conditionals: their group numbers would change.
_GROUP_REFERENCES = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


def _joined(patterns: Sequence[re.Pattern[str]]) -> tuple[re.Pattern[str], ...]:
    """Patterns that find something in a text exactly when one of ``patterns`` does: those with
    the same flags joined into one alternation, ``(?:a)|(?:b)``, which ``search`` finds wherever
    either one would. Patterns anchored at the start (``^a``) are joined apart, as
    ``^(?:(?:a)|(?:b))``, so the search still tries only the first position. A pattern that
    refers to its own groups, a verbose one (a comment would swallow the rest), a bytes one, or
    a group whose joined form does not compile, is kept as is."""
    groups: dict[tuple[int, bool], list[tuple[re.Pattern[str], str]]] = {}
    out: list[re.Pattern[str]] = []
    for pattern in dict.fromkeys(patterns):
        if (not isinstance(pattern.pattern, str) or pattern.flags & re.VERBOSE
                or (pattern.groups and _GROUP_REFERENCES.search(pattern.pattern))):
            out.append(pattern)
            continue
        source = _LEADING_FLAGS.sub("", pattern.pattern, count=1)
        anchored = source.startswith("^") and _starts_anchored(source, pattern.flags)
        groups.setdefault((pattern.flags, anchored), []).append((pattern, source[1:] if anchored else source))
    for (flags, anchored), group in groups.items():
        if len(group) == 1:
            out.append(group[0][0])
            continue
        source = "|".join(f"(?:{s})" for _, s in group)
        try:
            out.append(re.compile(f"^(?:{source})" if anchored else source, flags))
        except re.error:
            out.extend(p for p, _ in group)
    return tuple(out)


def _starts_anchored(source: str, flags: int) -> bool:
    """Whether the whole pattern starts with ``^`` (not ``^a|b``, where only one branch does)."""
    try:
        parsed = _sre_parser.parse(source, flags)
    except Exception:  # an internal parser change must not break matching
        return False
    return len(parsed) > 0 and parsed[0] == (_sre_constants.AT, _sre_constants.AT_BEGINNING)


# --- literal prefilter -------------------------------------------------------------------
# On a clean page every signature's body regexes would run and find nothing. Most of them
# contain a literal any match must include ("captcha-delivery", "_incapsula_resource"), and
# a substring test for those literals in the folded body (fold_for_literals) rules the regexes
# out at a fraction of the cost. Literals are ASCII and compared folded, so the test never
# rejects a page the regex (case-sensitive or not) would match.

_MIN_LITERAL = 4  # characters; shorter literals are too common to rule anything out
# The non-ASCII characters that re.IGNORECASE matches to an ASCII letter: İ and ı (i), ſ (s)
# and the Kelvin sign (k).
_ASCII_ALIKES = ("\u0130", "\u0131", "\u017f", "\u212a")
_ALIKE_TABLE = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def fold_for_literals(body: str, utf8: bytes | None = None) -> bytes:
    """``body`` as UTF-8 with every character a case-insensitive match could take for an ASCII
    letter made that lower-case letter: where the (ASCII) literals are searched, so that an
    ASCII literal is in it wherever a case-insensitive regex of the literal matches the body.

    ``utf8``: the undecoded body of a response that declares UTF-8, of which ``body`` is the
    decoding (or its start). Lowered as it is, it saves encoding ``body`` back (~1 µs per KB
    of a non-ASCII page). It may hold more than ``body`` (where ``body`` was cut), which only
    lets the regexes run where they would find nothing. It is not used where its ASCII bytes
    could differ from the text's ASCII characters: a NUL byte (the body was UTF-16 or UTF-32
    after all, by its byte order mark) or one of the four characters below in the text.

    ``str.casefold()`` walks the Unicode tables for every character of a non-ASCII page (one
    curly quote is enough), about 5 µs per KB, and still misses "İ" (it folds to "i" plus a
    combining dot). Only ASCII letters and the four characters above can match an ASCII
    letter, so those four are mapped, and the rest is lowered as UTF-8 bytes (ASCII-only and
    table-driven): ASCII runs stay as they were, and the bytes of other characters (all 0x80
    and above) match no literal. Bytes, because the Aho-Corasick screen searches bytes."""
    if body.isascii():
        return body.encode("ascii").lower()
    if "\u0130" in body or "\u0131" in body or "\u017f" in body or "\u212a" in body:  # _ASCII_ALIKES
        body = body.translate(_ALIKE_TABLE)
    elif utf8 is not None and b"\x00" not in utf8:
        return utf8.lower()
    return body.encode("utf-8", "surrogatepass").lower()


def _body_literals(patterns: Sequence[re.Pattern[str]]) -> tuple[str, ...] | None:
    """Literals of which any match of any of ``patterns`` contains at least one, or None
    when some pattern has no such literal (then the regexes always run)."""
    out: list[str] = []
    for pattern in patterns:
        try:
            found = _required_literals(_sre_parser.parse(pattern.pattern, pattern.flags))
        except Exception:  # an internal parser change must not break matching
            return None
        if found is None:
            return None
        out.extend(found)
    return tuple(dict.fromkeys(out)) or None


def _required_literals(items: Any) -> list[str] | None:
    """For a parsed sequence: alternatives, one of which every match contains."""
    best: list[str] | None = None
    run: list[str] = []

    def consider(candidate: list[str] | None) -> None:
        nonlocal best
        if candidate and (best is None or min(map(len, candidate)) > min(map(len, best))):
            best = candidate

    def end_run() -> None:
        text = "".join(run).casefold()
        if len(text) >= _MIN_LITERAL and text.isascii():
            consider([text])
        run.clear()

    for op, arg in items:
        if op is _sre_constants.LITERAL:
            run.append(chr(arg))
            continue
        end_run()
        if op is _sre_constants.SUBPATTERN:
            consider(_required_literals(arg[-1]))
        elif op is _sre_constants.BRANCH:
            branches = [_required_literals(alternative) for alternative in arg[1]]
            if all(branches):
                consider([lit for branch in branches for lit in branch])  # type: ignore[union-attr]
        elif op in (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT, _sre_constants.POSSESSIVE_REPEAT):
            low, _high, sub = arg
            if low >= 1:
                consider(_required_literals(sub))
    end_run()
    return best


# --- small helpers -----------------------------------------------------------------------

# A cookie name starts the header or follows a comma/newline (several Set-Cookie values
# joined); "Expires=Wed, 21 Oct" does not match because "21 Oct" is not followed by "=".
_COOKIE_NAME = re.compile(r"(?:^|[,\n])\s*([^\s=;,]+)=")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LOGIN_PATH = re.compile(
    r"(?i)/(?:log[-_]?in|sign[-_]?in|log[-_]?on|auth|authenticate|sso|session/new|wp-login\.php"
    r"|oauth2?/authorize|cas/login)(?:[/.?#;]|$)"
)
_LOGIN_QUERY = re.compile(r"(?i)(?:^|&)(?:next|return_?to|return_?url|redirect_to)=")
_LOGIN_HOST = re.compile(r"(?i)^(?:login|signin|sso|auth)\.")
_INVISIBLE = re.compile(r"(?is)<(script|style|noscript|template|title|svg)\b.*?</\1\s*>|<!--.*?-->")
_TEXT_NODE = re.compile(r"(?:^|>)([^<]+)")  # text before the first tag, and after each
# Where an invisible element may start (<script, <style, <svg, <noscript, <template, <title,
# <!--): one case-sensitive pass, much cheaper than the (?i) regex that removes them.
_INVISIBLE_HINT = re.compile(r"<(?:[sS][cCtTvV]|[nN][oO][sS]|[tT][eEiI]|!--)")
_ENABLE_JS = re.compile(
    r"(?i)(?:enable|turn on|activate|allow)\s+javascript|javascript\s+(?:is\s+)?(?:required|disabled|needed)"
    r"|requires?\s+javascript|need(?:s)?\s+javascript"
)


def _snake_case(name: str) -> str:
    """``"twisted.internet.error.DNSLookupError"`` -> ``"dns_lookup_error"``."""
    name = name.rsplit(".", 1)[-1].strip() or "network_error"
    return _CAMEL.sub("_", name).lower()


def _title_of(body: str) -> str:
    start = body.find("<title", 0, _TITLE_SCAN)
    if start < 0:
        start = body.find("<TITLE", 0, _TITLE_SCAN)
        if start < 0:
            return ""
    start = body.find(">", start, start + 200) + 1
    end = body.find("<", start, start + 1000)
    if start <= 0 or end < 0:
        return ""
    title = " ".join(body[start:end].split())
    return unescape(title) if "&" in title else title


def _is_login_url(location: str) -> bool:
    if not location:
        return False
    parts = urlsplit(location)
    return bool(
        _LOGIN_PATH.search(parts.path)
        or _LOGIN_QUERY.search(parts.query)
        or (parts.hostname and _LOGIN_HOST.match(parts.hostname))
    )


def _visible_markup(html: str) -> str:
    """``html`` without the elements a reader never sees (scripts, styles, ``<noscript>``,
    ``<template>``, the title, SVG) and comments; the regex only runs when one may be there."""
    return _INVISIBLE.sub(" ", html) if _INVISIBLE_HINT.search(html) else html


def _visible_text_length(html: str, enough: int | None = None) -> int:
    """Non-whitespace characters a reader would see (scripts, styles, noscript removed),
    counting stops once ``enough`` is reached.

    This runs on every tiny 200 page while a tier is left, so it does no more than it must:
    only the ``<body>`` is read when there is one (the head's text is its title), the
    invisible-element regex runs only when such an element is there, and counting stops
    early.
    """
    start = html.find("<body")
    if start < 0:
        start = html.find("<BODY")
    return _text_length(_visible_markup(html[start:] if start >= 0 else html), enough)


def _text_length(markup: str, enough: int | None = None) -> int:
    """Non-whitespace characters in the text nodes of ``markup``, up to ``enough``."""
    count = 0
    for match in _TEXT_NODE.finditer(markup):
        count += len("".join(match.group(1).split()))  # whitespace dropped in C
        if enough is not None and count >= enough:
            break
    return count


def _needs_javascript(obs: Observation) -> str | None:
    """``"empty_body"`` or ``"js_required"`` for a 200 HTML page a browser would render better."""
    body = obs.body
    content_type = obs.headers.get("content-type")
    if content_type is not None:
        if "html" not in content_type.lower():
            return None
    elif not body.lstrip().startswith("<"):
        return None  # no content type: only what looks like markup
    if not body or body.isspace():  # (not body.strip(): that copies the whole body)
        return "empty_body"
    if len(body) <= _TINY_PAGE and _visible_text_length(body, _EMPTY_TEXT) < _EMPTY_TEXT:
        return "js_required" if "<script" in body.lower() else "empty_body"
    # Every phrase names JavaScript: a plain substring test spares the slow (?i) regex.
    texts = (body[start:end] for start, end in _noscripts(body))
    if not any("javascript" in text.lower() and _ENABLE_JS.search(text) for text in texts):
        return None
    return "js_required" if _visible_text_length(body, _SHELL_TEXT) < _SHELL_TEXT else None


def _noscripts(body: str, limit: int = 8) -> list[tuple[int, int]]:
    """(start, end) of the ``<noscript>`` elements near the start of ``<body>``.

    This runs on every 200 page when a tier is left, and a failed ``str.find`` costs about
    0.4 ns a character (25 µs over 64 KiB): so the search starts at ``<body`` and stops 8 KiB
    later (an app shell's noscript comes first thing), and upper-case tags are only looked
    for in documents whose head is written in upper case.
    """
    head = body[:1024]
    upper = "<HTML" in head or "<HEAD" in head or "<BODY" in head
    tags = [("<noscript", "</noscript"), ("<NOSCRIPT", "</NOSCRIPT")] if upper else [("<noscript", "</noscript")]
    opened = body.find("<BODY" if upper else "<body", 0, _NOSCRIPT_SCAN)
    stop = max(opened, 0) + _NOSCRIPT_WINDOW
    spans: list[tuple[int, int]] = []
    for open_tag, close_tag in tags:
        start = body.find(open_tag, 0, stop)
        while start >= 0 and len(spans) < limit:
            end = body.find(close_tag, start, start + 4000)
            end = end if end >= 0 else start + 2000
            spans.append((start, end))
            start = body.find(open_tag, end, stop)
    return spans


def _success(obs: Observation, signature: Signature | None) -> Verdict:
    """Step 8: a 2xx response that no blocking signature claimed."""
    soft = signature if signature is not None and signature.kind == "soft_block" else None
    if soft is not None and obs.can_escalate:
        return Verdict.escalate(soft.name, soft.vendor)
    if obs.expect_missing:
        # Climb before blaming the selector: below the top automated tier a page without the
        # expected data may be a JavaScript shell, or a refusal a bot detector wrote into a
        # page that kept the site's title, which a browser or the stealth tier gets past.
        # Only a miss on the top automated tier can be the selector's fault.
        if obs.can_escalate:
            return Verdict.escalate("selector_missing")
        if soft is not None:  # blocked on the top tier: the selector is not what broke
            return Verdict.pause("manual_access", soft.name, soft.vendor)
        return Verdict.pause("selector_fix", "selector_missing")
    if soft is not None or not obs.can_escalate or obs.status != 200 or obs.rendered or not obs.shell_check:
        return _OK
    marker = _needs_javascript(obs)
    return Verdict.escalate(marker) if marker else _OK


_DEFAULT = BlockClassifier()
