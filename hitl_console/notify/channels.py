"""Apprise, the one place it is used: checking a channel URL, and sending one message.

Apprise (https://github.com/caronc/apprise) knows 100+ services by URL scheme (``slack://``,
``mailto://``, ``msteams://``, ``tgram://``, ``ntfy://``, ``json://``...), so we write no
per-service client. It reports a failure by returning False and logging why on its
``apprise`` logger; ``send`` collects those log lines (only this thread's) as the error, so
an SMTP server's answer reaches the audit trail and ``hitl notify test``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

APPRISE_DOCS = "https://github.com/caronc/apprise/wiki"
MAX_URL = 2000


class ChannelUrlError(ValueError):
    """A URL Apprise does not accept: the API answers 422, the CLI prints it."""


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    mimetype: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    error: str | None
    duration_ms: int


def _plugin(url: str) -> Any:
    import apprise

    return apprise.Apprise.instantiate(url, suppress_exceptions=True)


def check_url(url: Any) -> tuple[str, str]:
    """``(scheme, redacted URL)`` for an Apprise URL; ChannelUrlError saying what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise ChannelUrlError("give the channel's Apprise URL, such as slack://T0/B0/XXXX or "
                              f"mailto://user:pass@example.com (see {APPRISE_DOCS})")
    url = url.strip()
    if len(url) > MAX_URL:
        raise ChannelUrlError(f"a channel URL is at most {MAX_URL} characters")
    from scrapy_hitl.state.notify_channels import storable

    if not storable(url):
        raise ChannelUrlError("a channel URL cannot hold a NUL byte or a lone surrogate")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme:
        raise ChannelUrlError(f"{_shown(url)!r} is not a URL: it needs a scheme such as slack://, mailto:// "
                              f"or json:// (see {APPRISE_DOCS})")

    with _captured() as lines:
        plugin = _plugin(url)
    if plugin is None:
        if scheme not in _schemes():
            raise ChannelUrlError(f"Apprise does not know the scheme {scheme}://; see {APPRISE_DOCS} for the "
                                  "services and their URLs")
        why = "; ".join(line for line in lines if "Could not load" not in line) or "the URL is incomplete"
        raise ChannelUrlError(f"not a valid {scheme}:// URL: {why}. See {APPRISE_DOCS} for its format.")
    return scheme, redacted(plugin)


def redacted(plugin: Any) -> str:
    """Apprise's privacy form of a channel URL, with the values of the custom headers
    (``+Authorization=...``), GET parameters (``-key=...``) and payload fields (``:key=...``)
    of json://, form:// and xml:// masked too: Apprise shows those in clear, and a JSON
    endpoint's bearer token is usually one of them."""
    url = plugin.url(privacy=True)
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [(k, MASK if k[:1] in "+-:" and v else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*", quote_via=quote)))


def _schemes() -> Any:
    from apprise.manager_plugins import NotificationManager

    return NotificationManager()


def preload() -> None:
    """Load Apprise's plugins now (about 0.3 s), not on the first message."""
    "json" in _schemes()  # noqa: B015 - the lookup is what loads them


def _shown(url: str) -> str:
    return url if len(url) < 40 else url[:37] + "..."


class _ThreadLines(logging.Handler):
    """Keeps what one thread logs on the ``apprise`` logger: warnings and errors, and the
    debug lines that carry the cause (a socket error, an SMTP or HTTP server's answer)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break a send
            message = str(record.msg)
        if record.levelno >= logging.WARNING or any(k in message for k in _CAUSES):
            self.lines.append(" ".join(message.split())[:500])


_CAUSES = ("Exception", "Response Details", "refused", "timed out")
_capture_lock = threading.Lock()
_capturing = 0
_saved: tuple[int, bool] = (logging.NOTSET, True)


class _captured:  # noqa: N801 - used as a context manager
    """While any thread captures, the ``apprise`` logger runs at DEBUG and does not
    propagate (its debug lines would flood the worker's log); the captured lines are
    reported by the caller instead."""

    def __enter__(self) -> list[str]:
        global _capturing, _saved
        self.handler = _ThreadLines()
        logger = logging.getLogger("apprise")
        with _capture_lock:
            if _capturing == 0:
                _saved = (logger.level, logger.propagate)
                logger.setLevel(logging.DEBUG)
                logger.propagate = False
            _capturing += 1
            logger.addHandler(self.handler)
        return self.handler.lines

    def __exit__(self, *exc: Any) -> None:
        global _capturing
        logger = logging.getLogger("apprise")
        with _capture_lock:
            logger.removeHandler(self.handler)
            _capturing -= 1
            if _capturing == 0:
                logger.setLevel(_saved[0])
                logger.propagate = _saved[1]


def cap_timeouts(plugin: Any, timeout: float) -> None:
    """Lower an Apprise plugin's connect and read timeouts (its own, or a URL's ``cto``/``rto``)
    to ``timeout``; each bounds one socket operation, so a server that trickles can still
    take longer, and the claim's 5 s margin and the audit's at-least-once cover that."""
    for name in ("socket_connect_timeout", "socket_read_timeout"):
        setattr(plugin, name, min(float(getattr(plugin, name)), timeout))


def send(url: str, *, title: str, body: str, html: str | None = None,
         attachments: Sequence[Attachment] = (), timeout: float | None = None) -> SendResult:
    """Send one message. Email gets ``html`` with images inline (Apprise's ``inline``);
    other services get ``body`` (Markdown-ish plain text) and the files as attachments where
    the service takes them. ``timeout`` (HITL_NOTIFY_TIMEOUT) caps the plugin's own socket
    timeouts (15 s for email), which would otherwise outlast a shorter claim on the message."""
    import apprise
    from apprise.attachment.memory import AttachMemory

    started = time.perf_counter()
    with _captured() as lines:
        plugin = _plugin(url)
        if plugin is None:
            return SendResult(False, masked("; ".join(lines), url) or "Apprise no longer accepts this channel's URL",
                              _ms(started))
        if timeout:
            cap_timeouts(plugin, timeout)
        is_email = hasattr(plugin, "inline")  # Apprise's email plugin: inline images (RFC 2387)
        attach = None
        if attachments and getattr(plugin, "attachment_support", False):
            attach = apprise.AppriseAttachment()
            for a in attachments:
                attach.add(AttachMemory(content=a.data, name=a.name, mimetype=a.mimetype))
        if is_email:
            plugin.inline = True
        fmt = apprise.NotifyFormat.HTML if is_email and html else apprise.NotifyFormat.TEXT
        text = html if fmt == apprise.NotifyFormat.HTML else body
        try:
            ok = bool(plugin.notify(body=text, title=title, body_format=fmt, attach=attach))
        except Exception as exc:  # a plugin bug must end as a failed attempt, never kill the worker
            ok = False
            lines.append(f"{type(exc).__name__}: {exc}")
    error = None if ok else (masked("; ".join(_unique(lines)), url, redacted(plugin))
                             or "the service refused the message (no detail given)")
    return SendResult(ok, error, _ms(started))


_WORD = re.compile(r"[^/:@?&=#;,+\s]+")
MASK = "****"


def masked(text: str, url: str, redacted: str = "") -> str:
    """``text`` (an error Apprise logged) without the channel URL's secrets: Apprise's
    connection errors quote the request URL, whose path is the service's token (Slack,
    Discord, Telegram, Mattermost...). A secret is a word of the URL (4 characters or more)
    that Apprise's redacted form does not show; each is replaced, as is and URL-quoted."""
    shown = set(_WORD.findall(unquote(redacted)))
    rest = url.split("://", 1)[-1]
    words = {w for part in (rest, unquote(rest)) for w in _WORD.findall(part) if len(w) >= 4 and w not in shown}
    for word in sorted({v for w in words for v in (w, quote(w, safe=""), quote(w))}, key=len, reverse=True):
        text = text.replace(word, MASK)
    return text


def _unique(lines: list[str]) -> Iterator[str]:
    seen: set[str] = set()
    for line in lines:
        if line not in seen:
            seen.add(line)
            yield line


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
