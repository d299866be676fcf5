"""One HTTP POST to a callback URL, to the address the SSRF guard checked.

``http.client`` rather than a full client library: it never follows redirects, never reads
proxy settings from the environment, and lets the connection be pinned. The connection
goes to a checked IP while the request keeps the URL's host in ``Host`` and, for https, in
SNI and the certificate check (``wrap_socket(server_hostname=host)``).

The whole attempt (connect, send, answer) is bounded by ``timeout``: the socket timeout
bounds each step, and a timer shuts the socket down when the total runs out, so a receiver
that trickles bytes cannot hold a worker.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hitl_console.webhooks import ssrf

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

READ_LIMIT = 16 * 1024  # bytes of the answer read; the rest is dropped with the connection
EXCERPT_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Result:
    """What one attempt got: a status (None if no answer came) or an error."""

    status_code: int | None
    excerpt: str = ""
    error: str | None = None
    duration_ms: int = 0
    retry_after: str | None = None  # the raw header
    permanent: bool = False  # refused before sending: retrying cannot help


def _pinned(addresses: tuple[str, ...]) -> Callable[..., socket.socket]:
    """A stand-in for ``socket.create_connection`` that connects to the checked addresses
    only, whatever host http.client asks for (it asks for the URL's host name)."""

    def create_connection(address: tuple[str, int], timeout: float, source_address: object = None,
                          ) -> socket.socket:
        _host, port = address
        error: OSError | None = None
        for ip in addresses:  # every one was checked; try them in resolver order
            try:
                return socket.create_connection((ip, port), timeout)
            except OSError as exc:
                error = exc
        raise error or OSError("no address to connect to")

    return create_connection


def _connection(target: ssrf.Target, timeout: float, ssl_context: ssl.SSLContext | None) -> http.client.HTTPConnection:
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        # server_hostname is the URL's host: SNI and the certificate check use the name
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=timeout,
                                           context=ssl_context or ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    conn._create_connection = _pinned(target.addresses)  # type: ignore[attr-defined]  # set in __init__
    return conn


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allow_private: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    resolve: Callable[..., ssrf.Target] = ssrf.resolve,
) -> Result:
    """POST ``body`` to ``url``. Never raises for the network's or the receiver's failures:
    they come back in ``Result.error``."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = resolve(url, allow_private=allow_private)
    except ssrf.UnsafeURL as exc:
        return Result(None, error=f"refused: {exc}", duration_ms=elapsed(), permanent=True)
    except ssrf.ResolutionError as exc:
        return Result(None, error=str(exc), duration_ms=elapsed())

    conn = _connection(target, timeout, ssl_context)
    timed_out = threading.Event()

    def cut() -> None:
        timed_out.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=dict(headers))
        response = conn.getresponse()
        data = response.read(READ_LIMIT)
        excerpt = data.decode(_charset(response), errors="replace")[:EXCERPT_CHARS]
        error = None
        if 300 <= response.status < 400:
            location = response.getheader("Location") or "no Location"
            error = f"redirect ({response.status} to {location[:300]}) not followed"
        elif not 200 <= response.status < 300:
            error = f"HTTP {response.status} {response.reason}".strip()
        return Result(response.status, excerpt=excerpt, error=error, duration_ms=elapsed(),
                      retry_after=response.getheader("Retry-After"))
    except (TimeoutError, socket.timeout):
        return Result(None, error=f"timed out after {timeout:g} s", duration_ms=elapsed())
    except (OSError, http.client.HTTPException) as exc:
        if timed_out.is_set():
            return Result(None, error=f"timed out after {timeout:g} s", duration_ms=elapsed())
        return Result(None, error=_describe(exc, target), duration_ms=elapsed())
    finally:
        timer.cancel()
        conn.close()


def _charset(response: http.client.HTTPResponse) -> str:
    charset = response.headers.get_content_charset() or "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset


def _describe(exc: BaseException, target: ssrf.Target) -> str:
    where = f"{target.host}:{target.port} ({', '.join(target.addresses)})"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset by {where}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error with {where}: {exc}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return f"{where} closed the connection without answering"
    return f"{type(exc).__name__} with {where}: {exc}"
