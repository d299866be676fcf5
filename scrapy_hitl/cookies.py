"""Cookies as people actually export them, parsed into one model.

A human unblocks a crawl by handing over the cookies of their own browser, in whatever form
they could produce: a Cookie-Editor / EditThisCookie JSON export, a Netscape ``cookies.txt``
(curl, yt-dlp, "Get cookies.txt" extensions), a Playwright ``storage_state()`` file, or a
``Cookie:`` header copied from DevTools. :func:`parse_cookies` turns any of them into
:class:`Cookie` objects, or raises :class:`CookieFormatError` with a message that can be shown
to that human as is. The module does no I/O: callers read files and pass the text.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "FORMATS",
    "Cookie",
    "CookieFormatError",
    "ParsedCookies",
    "cookie_names",
    "cookies_for_domain",
    "earliest_expiry",
    "parse_cookie_list",
    "parse_cookies",
    "to_scrapy_cookies",
]

FORMATS = ("cookie-editor-json", "netscape", "playwright-storage-state", "cookie-header")

# How each format is named in error messages; "unknown" is used before detection succeeds.
_LABELS = {
    "cookie-editor-json": "Cookie-Editor JSON",
    "netscape": "netscape cookies.txt",
    "playwright-storage-state": "Playwright storage_state JSON",
    "cookie-header": "Cookie header",
    "cookie-dict": "cookie dict",
    "unknown": "cookie text",
}
_ANY_FORMAT_FIX = (
    "Upload a Cookie-Editor JSON export, a cookies.txt file or a Playwright storage_state "
    "file, or paste a Cookie header (name=value; name2=value2)."
)
_FIXES = {
    "cookie-editor-json": 'Export again with Cookie-Editor ("Export" → "JSON") and upload the '
    "file unchanged.",
    "netscape": 'Export again with a "cookies.txt" extension, or check that tabs were not '
    "turned into spaces.",
    "playwright-storage-state": "Save it again with context.storage_state(path=...) and upload "
    "the file unchanged.",
    "cookie-header": "Copy the request's Cookie header from DevTools (Network → request → "
    'Headers): name=value pairs separated by "; ".',
    "cookie-dict": 'Give at least "name" and "value" as strings.',
    "unknown": _ANY_FORMAT_FIX,
}
_SAME_SITE = {
    "strict": "Strict",
    "lax": "Lax",
    "none": "None",
    "no_restriction": "None",  # Chrome extensions' spelling of SameSite=None
}
# The last second a datetime (and so the vault's expires_at) can hold, 9999-12-31 23:59:59
# UTC. A later expiry, or a millisecond timestamp, is kept as that, as browsers cap a
# cookie's lifetime: a cookie that outlives the year 9999 is as good as one that never
# expires. A number past float's range (inf, 10**400) is refused instead.
MAX_EXPIRES = 253402300799.0
_FLOAT_MAX = sys.float_info.max


class CookieFormatError(ValueError):
    """Raised when cookie text cannot be parsed.

    The message names the source, the line, the format, the problem and the fix, so it can be
    shown unchanged to the human who supplied the cookies; nothing is applied until they
    supply cookies that parse.
    """

    def __init__(
        self,
        *,
        fmt: str,
        problem: str,
        line: int | None = None,
        source: str = "<input>",
        fix: str | None = None,
    ) -> None:
        self.fmt = fmt
        self.problem = problem
        self.line = line
        self.source = source
        self.fix = fix if fix is not None else _FIXES.get(fmt, _ANY_FORMAT_FIX)
        where = source if line is None else f"{source}, line {line}"
        label = _LABELS.get(fmt, fmt)
        super().__init__(f"{where} ({label}): {problem.rstrip('.')}. {self.fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-only constructor cannot be rebuilt from self.args, which pickle (and so
        # a job queue) would otherwise try.
        rebuild = functools.partial(
            type(self),
            fmt=self.fmt,
            problem=self.problem,
            line=self.line,
            source=self.source,
            fix=self.fix,
        )
        return (rebuild, ())


@dataclass(frozen=True, slots=True)
class Cookie:
    """One browser cookie, whatever format it came from."""

    name: str
    value: str
    domain: str = ""  # as given; a leading dot means "this domain and its subdomains"
    path: str = "/"
    expires: float | None = None  # unix seconds; None for a session cookie
    secure: bool = False
    http_only: bool = False
    same_site: str | None = None  # "Strict", "Lax", "None", or None when unspecified

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict whose keys are exactly the field names."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cookie:
        """Build from :meth:`to_dict` output, or from one cookie object of a Cookie-Editor,
        Playwright or Selenium export (``httpOnly``, ``sameSite``, ``expirationDate``,
        ``hostOnly``, ``expiry``, ``expires: -1``...). Raises :class:`CookieFormatError`."""
        return _cookie_from_mapping(d, fmt="cookie-dict", source="<input>", entry=None)


@dataclass(frozen=True, slots=True)
class ParsedCookies:
    """The cookies found in one export, and which format it was."""

    cookies: tuple[Cookie, ...]
    format: str  # one of FORMATS
    user_agent: str | None = None  # only when the export carries one, which is rare
    # Playwright storage_state only: [{"origin": "https://host", "localStorage": [{"name", "value"}]}]
    origins: tuple[dict[str, Any], ...] = ()


def parse_cookies(
    text: str | bytes,
    *,
    source: str = "<input>",
    fmt: str | None = None,
    default_domain: str | None = None,
) -> ParsedCookies:
    """Parse cookie text in any of :data:`FORMATS`.

    ``fmt=None`` detects the format. ``bytes`` are decoded as UTF-8, BOM stripped.
    ``source`` (a file name, say) is used in error messages. ``default_domain`` fills the
    domain of cookies that have none, as in a raw Cookie header. Raises
    :class:`CookieFormatError`, also when no cookies are found.
    """
    if fmt is not None and fmt not in FORMATS:
        raise CookieFormatError(
            fmt=fmt,
            problem=f'unknown cookie format "{fmt}"',
            source=source,
            fix=f"Use one of {', '.join(FORMATS)}, or leave the format unset to detect it.",
        )
    if isinstance(text, bytes):
        text = _decode(text, source=source, fmt=fmt or "unknown")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise CookieFormatError(
            fmt=fmt or "unknown",
            problem="no cookies found",
            source=source,
            fix="The input is empty: export the cookies again and upload or paste the result.",
        )
    fmt = fmt or _detect(text)
    if fmt is None:
        raise CookieFormatError(
            fmt="unknown",
            problem="not a recognised cookie format (no JSON, no cookies.txt fields, no "
            "name=value pairs)",
            line=1,
            source=source,
        )
    parsed = _PARSERS[fmt](text, source, default_domain)
    if not parsed.cookies and not parsed.origins:  # a login kept in localStorage alone is one
        raise _no_cookies(fmt, source)
    return parsed


def parse_cookie_list(
    items: Sequence[Mapping[str, Any]],
    *,
    source: str = "<input>",
    default_domain: str | None = None,
) -> ParsedCookies:
    """Parse an already-decoded JSON array of cookie objects (an API payload).

    Accepts the key spellings of :meth:`Cookie.from_dict`; reported as
    ``"cookie-editor-json"``, the format such arrays come from.
    """
    fmt = "cookie-editor-json"
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise CookieFormatError(
            fmt=fmt,
            problem=f"expected a list of cookie objects, found {_json_type(items)}",
            source=source,
        )
    cookies = _from_entries(items, fmt=fmt, source=source, default_domain=default_domain)
    if not cookies:
        raise _no_cookies(fmt, source)
    return ParsedCookies(cookies=cookies, format=fmt)


def earliest_expiry(cookies: Iterable[Cookie]) -> float | None:
    """Return the soonest ``expires`` among persistent cookies, or None if all are session."""
    return min((c.expires for c in cookies if c.expires is not None), default=None)


def cookies_for_domain(cookies: Iterable[Cookie], domain: str) -> list[Cookie]:
    """Return the cookies a browser would send to host ``domain``.

    A cookie matches on its exact host, on any subdomain when its domain has a leading dot,
    and always when it has no domain. Case, a trailing dot and a ``:port`` are ignored.
    """
    host = _bare_host(domain)
    matched = []
    for cookie in cookies:
        cookie_domain = cookie.domain.lower().rstrip(".")
        if (
            not cookie_domain
            or host == cookie_domain.lstrip(".")
            or (cookie_domain.startswith(".") and host.endswith(cookie_domain))
        ):
            matched.append(cookie)
    return matched


def to_scrapy_cookies(cookies: Iterable[Cookie]) -> list[dict[str, Any]]:
    """Return dicts for ``scrapy.Request(cookies=[...])``: name, value, domain, path, secure.

    ``domain`` is left out when empty, so Scrapy scopes the cookie to the request's host.
    """
    result = []
    for c in cookies:
        item: dict[str, Any] = {"name": c.name, "value": c.value}
        if c.domain:
            item["domain"] = c.domain
        item["path"] = c.path
        item["secure"] = c.secure
        result.append(item)
    return result


def cookie_names(cookies: Iterable[Cookie]) -> list[str]:
    """Return the cookie names in first-seen order, each once (for logs and the console)."""
    return list(dict.fromkeys(c.name for c in cookies))


# --- detection and decoding -------------------------------------------------------------

_NETSCAPE_HEADER = re.compile(r"#\s*(?:Netscape\s+)?HTTP\s+Cookie\s+File", re.IGNORECASE)
# A cookies.txt line whose tabs became spaces: domain, TRUE/FALSE, path, TRUE/FALSE, expiry.
_NETSCAPE_SPACED = re.compile(
    r"\S+\s+(?:TRUE|FALSE)\s+\S+\s+(?:TRUE|FALSE)\s+-?[\d.]+\s+\S", re.IGNORECASE
)


def _detect(text: str) -> str | None:
    start = text.lstrip()[:1]
    if start == "[":
        return "cookie-editor-json"
    if start == "{":
        # An object without "cookies" is rejected by this parser with a message saying so.
        return "playwright-storage-state"
    for line in _lines(text):
        if _NETSCAPE_HEADER.match(line) or line.startswith("#HttpOnly_"):
            return "netscape"
        if not line.startswith("#") and (
            line.count("\t") == 6 or _NETSCAPE_SPACED.match(line.strip())
        ):
            return "netscape"
    return "cookie-header" if "=" in text else None


def _decode(data: bytes, *, source: str, fmt: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CookieFormatError(
            fmt=fmt,
            problem="input is UTF-16 text, not UTF-8",
            source=source,
            fix="Save the file again as UTF-8 (Notepad: Save as → Encoding: UTF-8).",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CookieFormatError(
            fmt=fmt,
            problem=f"input is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start})",
            line=data.count(b"\n", 0, exc.start) + 1,
            source=source,
            fix="Upload the exported text file itself, saved as UTF-8.",
        ) from None


def _lines(text: str) -> list[str]:
    # Not str.splitlines(): it also splits on \x0c, \u2028 and others, which would make line
    # numbers disagree with what an editor shows.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _no_cookies(fmt: str, source: str) -> CookieFormatError:
    return CookieFormatError(
        fmt=fmt,
        problem="no cookies found",
        source=source,
        fix="Log in to the site in your browser (or solve its challenge) first, then export "
        "the cookies of that site again.",
    )


# --- JSON formats -----------------------------------------------------------------------


_JSON_FIX = (
    "Export the cookies again and upload the file unchanged; JSON that was edited by hand or "
    "cut off while copying does not parse."
)


def _load_json(text: str, fmt: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CookieFormatError(
            fmt=fmt,
            problem=f"invalid JSON: {exc.msg} (column {exc.colno})",
            line=exc.lineno,
            source=source,
            fix=_JSON_FIX,
        ) from None
    except RecursionError:
        problem = "invalid JSON: arrays or objects nested too deep for a cookie export"
    except ValueError:  # an integer of more digits than int() reads (sys.int_info)
        problem = "invalid JSON: a number too long to read"
    raise CookieFormatError(fmt=fmt, problem=problem, source=source, fix=_JSON_FIX)


def _parse_cookie_editor(text: str, source: str, default_domain: str | None) -> ParsedCookies:
    fmt = "cookie-editor-json"
    data = _load_json(text, fmt, source)
    if not isinstance(data, list):
        fix = None
        if isinstance(data, dict) and "cookies" in data:
            fix = (
                'This looks like a Playwright storage_state file: use the format '
                '"playwright-storage-state", or leave the format unset.'
            )
        raise CookieFormatError(
            fmt=fmt,
            problem=f"expected a JSON array of cookies, found {_json_type(data)}",
            source=source,
            fix=fix,
        )
    cookies = _from_entries(data, fmt=fmt, source=source, default_domain=default_domain)
    return ParsedCookies(cookies=cookies, format=fmt)


def _parse_storage_state(text: str, source: str, default_domain: str | None) -> ParsedCookies:
    fmt = "playwright-storage-state"
    data = _load_json(text, fmt, source)
    if not isinstance(data, dict):
        fix = None
        if isinstance(data, list):
            fix = (
                'This looks like a Cookie-Editor export: use the format "cookie-editor-json", '
                "or leave the format unset."
            )
        raise CookieFormatError(
            fmt=fmt,
            problem=f'expected a JSON object with a "cookies" list, found {_json_type(data)}',
            source=source,
            fix=fix,
        )
    if "cookies" not in data:
        keys = ", ".join(sorted(str(k) for k in data)[:5]) or "none"
        single = "name" in data and "value" in data
        raise CookieFormatError(
            fmt=fmt,
            problem='JSON object has no "cookies" key, so it is neither a Playwright '
            f"storage_state nor a Cookie-Editor array (its keys: {keys})",
            source=source,
            fix='This looks like a single cookie: put it in a list, [{"name": ..., ...}].'
            if single
            else _ANY_FORMAT_FIX,
        )
    items = data["cookies"]
    if not isinstance(items, list):
        raise CookieFormatError(
            fmt=fmt, problem=f'"cookies" is {_json_type(items)}, not a list', source=source
        )
    user_agent = data.get("userAgent") or data.get("user_agent")
    return ParsedCookies(
        cookies=_from_entries(items, fmt=fmt, source=source, default_domain=default_domain),
        format=fmt,
        user_agent=user_agent if isinstance(user_agent, str) else None,
        origins=parse_origins(data.get("origins", []), source=source),
    )


def parse_origins(items: Any, *, source: str = "<input>") -> tuple[dict[str, Any], ...]:
    """A storage_state's ``origins``: each ``{"origin": "https://host[:port]", "localStorage":
    [{"name": str, "value": str}, ...]}``. Raises :class:`CookieFormatError` naming the entry
    and the problem; an origin with no localStorage is dropped (it restores nothing)."""
    fmt = "playwright-storage-state"
    if not isinstance(items, list):
        raise CookieFormatError(fmt=fmt, problem=f'"origins" is {_json_type(items)}, not a list',
                                source=source)
    out = []
    for number, entry in enumerate(items, start=1):
        def fail(problem: str, number: int = number) -> CookieFormatError:
            return CookieFormatError(fmt=fmt, problem=f"origins entry {number}: {problem}", source=source,
                                     fix='Each origins entry is {"origin": "https://host", "localStorage": '
                                         '[{"name": "...", "value": "..."}]}, as context.storage_state() '
                                         "writes it.")

        if not isinstance(entry, dict):
            raise fail(f"expected an object, found {_json_type(entry)}")
        origin = entry.get("origin")
        if not isinstance(origin, str) or not origin:
            raise fail('"origin" is missing or not a string')
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise fail(f'"origin" {_shown(origin)} is not a scheme://host[:port] origin')
        storage = entry.get("localStorage", [])
        if not isinstance(storage, list):
            raise fail(f'"localStorage" is {_json_type(storage)}, not a list')
        kept = []
        for item in storage:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                    or not isinstance(item.get("value"), str):
                raise fail('every "localStorage" item needs a string "name" and a string "value"')
            kept.append({"name": item["name"], "value": item["value"]})
        if kept:
            out.append({"origin": f"{parts.scheme}://{parts.netloc}".lower(), "localStorage": kept})
    return tuple(out)


def _from_entries(
    items: Sequence[Any], *, fmt: str, source: str, default_domain: str | None
) -> tuple[Cookie, ...]:
    return tuple(
        _cookie_from_mapping(
            item, fmt=fmt, source=source, entry=number, default_domain=default_domain
        )
        for number, item in enumerate(items, start=1)
    )


def _cookie_from_mapping(
    d: Any, *, fmt: str, source: str, entry: int | None, default_domain: str | None = None
) -> Cookie:
    """One cookie object, in our own, Cookie-Editor, Playwright or Selenium spelling.

    ``entry`` is the 1-based position in the array; it is reported as the line, because a
    JSON export has one entry per cookie but no useful line numbers of its own.
    """
    where = f"entry {entry}" if entry is not None else "cookie"

    def fail(problem: str, fix: str | None = None) -> CookieFormatError:
        return CookieFormatError(
            fmt=fmt, problem=f"{where} {problem}", line=entry, source=source, fix=fix
        )

    if not isinstance(d, Mapping):
        raise fail(f"is {_json_type(d)}, not a cookie object")
    missing_fix = 'Export the cookies again; every entry needs at least "name" and "value".'
    for key in ("name", "value"):
        if key not in d or d[key] is None:
            raise fail(f'has no "{key}"', missing_fix)
    name, value = d["name"], d["value"]
    if not isinstance(name, str) or not name:
        raise fail('has an empty or non-string "name"', missing_fix)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = _number_text(value)
        if value is None:
            raise fail('has a "value" of more digits than a cookie can hold', missing_fix)
    if not isinstance(value, str):
        raise fail(f'has "value": {_json_type(value)}, which is not a string', missing_fix)

    domain = _string(d, "domain", fail)
    path = _string(d, "path", fail)
    url = _string(d, "url", fail)  # Playwright add_cookies() accepts a url instead
    if url and not domain:
        try:
            parts = urlsplit(url)
            hostname = parts.hostname  # parsed on access: "http://[::1" fails only here
        except ValueError:
            raise fail(f'has "url": {_shown(url)}, which is not a URL', 'Give "domain" and '
                       '"path" instead, or a full URL such as "https://shop.example/".') from None
        domain, path = hostname or "", path or parts.path
    host_only = d.get("hostOnly")
    if host_only is True:
        domain = domain.lstrip(".")
    elif host_only is False:
        domain = _dotted(domain)

    expires = None
    if d.get("session") is not True:
        for key in ("expires", "expirationDate", "expiry"):
            raw = d.get(key)
            if raw is None:
                continue
            # An int past float's range is refused like inf: float() would overflow
            number = isinstance(raw, (int, float)) and -_FLOAT_MAX <= raw <= _FLOAT_MAX
            if not number or isinstance(raw, bool):
                raise fail(
                    f'has "{key}": {_shown(raw)}, which is not a number of seconds since 1970'
                )
            expires = _expires(raw) if raw >= 0 else None  # Playwright: -1 = session
            break

    same_site = None
    for key in ("same_site", "sameSite", "samesite"):
        raw = d.get(key)
        if isinstance(raw, str):
            # "unspecified" and unknown spellings mean no attribute; not worth a refusal.
            same_site = _SAME_SITE.get(raw.lower())
            break

    return Cookie(
        name=name,
        value=value,
        domain=domain or default_domain or "",
        path=path or "/",
        expires=expires,
        secure=_flag(d, ("secure",), fail),
        http_only=_flag(d, ("http_only", "httpOnly", "httponly"), fail),
        same_site=same_site,
    )


def _string(d: Mapping[str, Any], key: str, fail: Callable[[str], Exception]) -> str:
    raw = d.get(key)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise fail(f'has "{key}": {_json_type(raw)}, which is not a string')
    return raw


def _flag(
    d: Mapping[str, Any], keys: tuple[str, ...], fail: Callable[[str], Exception]
) -> bool:
    for key in keys:
        raw = d.get(key)
        if raw is None:
            continue
        if isinstance(raw, bool):
            return raw
        if raw in (0, 1) and isinstance(raw, int):
            return bool(raw)
        raise fail(f'has "{key}": {_shown(raw)}, which is not true or false')
    return False


def _expires(seconds: float) -> float:
    return min(float(seconds), MAX_EXPIRES)


def _number_text(number: float) -> str | None:
    """``str(number)``, or None for an int of more digits than str() converts (4,300)."""
    try:
        return str(number)
    except ValueError:
        return None


def _shown(value: Any) -> str:
    """A value quoted in an error message: short scalars as written, anything else by type.

    Not repr(): an export's value may be a list nested hundreds deep or an int of more
    digits than str() converts, and a message should not be a megabyte either.
    """
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = repr(value) if isinstance(value, str) else _number_text(value)
        if text is None:
            return "a number too long to show"
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, bool):
        return "true" if value else "false"
    return _json_type(value)


def _json_type(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a JSON object"
    if isinstance(value, (list, tuple)):
        return "a JSON array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


# --- cookies.txt ------------------------------------------------------------------------


def _parse_netscape(text: str, source: str, default_domain: str | None) -> ParsedCookies:
    fmt = "netscape"
    cookies = []
    for number, line in enumerate(_lines(text), start=1):
        http_only = line.startswith("#HttpOnly_")  # curl's marker; the line is a cookie
        if http_only:
            line = line.removeprefix("#HttpOnly_")
        elif not line.strip() or line.lstrip().startswith("#"):
            continue

        def fail(problem: str, number: int = number) -> CookieFormatError:
            return CookieFormatError(fmt=fmt, problem=problem, line=number, source=source)

        if "\t" in line:
            parts = line.split("\t")
            if len(parts) != 7:
                raise fail(f"expected 7 tab-separated fields, found {len(parts)}")
        else:
            # Tabs turned into spaces: only safe when no field can hold a space, that is when
            # splitting gives exactly 7 fields.
            parts = line.split()
            if len(parts) != 7:
                raise fail(
                    f"expected 7 tab-separated fields, found no tabs and {len(parts)} "
                    "space-separated fields"
                )
        domain, subdomains, path, secure, expiry, name, value = (p.strip() for p in parts)
        if not domain:
            raise fail("the domain field (1st) is empty")
        if not name:
            raise CookieFormatError(
                fmt=fmt,
                problem="the name field (6th) is empty",
                line=number,
                source=source,
                fix="Delete this line: Scrapy cannot send a cookie without a name.",
            )
        include_subdomains = _netscape_bool(subdomains, "include-subdomains field (2nd)", fail)
        # The flag is authoritative: exporters disagree on whether they also add the dot.
        domain = _dotted(domain) if include_subdomains else domain.lstrip(".")
        try:
            seconds = float(expiry)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds):
            shown = expiry if len(expiry) <= 40 else expiry[:37] + "..."
            raise fail(
                f'the expiry field (5th) is "{shown}", expected seconds since 1970 '
                "(0 for a session cookie)"
            )
        cookies.append(
            Cookie(
                name=name,
                value=value,
                domain=domain or default_domain or "",
                path=path or "/",
                expires=_expires(seconds) if seconds > 0 else None,
                secure=_netscape_bool(secure, "secure field (4th)", fail),
                http_only=http_only,
            )
        )
    return ParsedCookies(cookies=tuple(cookies), format=fmt)


def _netscape_bool(field: str, what: str, fail: Callable[[str], Exception]) -> bool:
    if field.upper() not in ("TRUE", "FALSE"):
        raise fail(f'the {what} is "{field}", expected TRUE or FALSE')
    return field.upper() == "TRUE"


# --- Cookie header ----------------------------------------------------------------------

# "Cookie: ...", "cookie: ..." (DevTools), and other headers copied along with it, including
# HTTP/2 pseudo-headers such as ":authority:".
_HEADER_NAME = re.compile(r"(:?[A-Za-z][A-Za-z0-9-]*)\s*:")


def _parse_header(text: str, source: str, default_domain: str | None) -> ParsedCookies:
    fmt = "cookie-header"
    cookies = []
    user_agent = None
    for number, line in enumerate(_lines(text), start=1):
        line = line.strip()
        match = _HEADER_NAME.match(line)
        if match:
            header, rest = match.group(1).lower(), line[match.end() :].strip()
            if header == "set-cookie":
                raise CookieFormatError(
                    fmt=fmt,
                    problem="this is a Set-Cookie response header, not a Cookie request header",
                    line=number,
                    source=source,
                    fix="Copy the Cookie header of a request to the site instead (DevTools → "
                    "Network → request → Request Headers).",
                )
            if header == "user-agent":
                user_agent = rest or None
            if header != "cookie":
                continue
            line = rest
        for pair in line.split(";"):
            pair = pair.strip()
            if not pair:
                continue
            name, eq, value = pair.partition("=")
            if not eq or not name.strip():
                shown = pair if len(pair) <= 40 else pair[:37] + "..."
                problem = "has no name" if eq else 'has no "="'
                raise CookieFormatError(
                    fmt=fmt,
                    problem=f'"{shown}" {problem} (expected name=value)',
                    line=number,
                    source=source,
                )
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.append(Cookie(name=name.strip(), value=value, domain=default_domain or ""))
    return ParsedCookies(cookies=tuple(cookies), format=fmt, user_agent=user_agent)


# --- helpers ----------------------------------------------------------------------------


def _dotted(domain: str) -> str:
    """Add the leading dot that means "and subdomains"; never to an IP address."""
    if not domain or domain.startswith("."):
        return domain
    try:
        ipaddress.ip_address(domain.strip("[]"))
    except ValueError:
        return "." + domain
    return domain


def _bare_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


_PARSERS: dict[str, Callable[[str, str, str | None], ParsedCookies]] = {
    "cookie-editor-json": _parse_cookie_editor,
    "netscape": _parse_netscape,
    "playwright-storage-state": _parse_storage_state,
    "cookie-header": _parse_header,
}
