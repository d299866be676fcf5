"""The SSRF guard for callback URLs: where a webhook may be sent.

A callback URL is chosen by an agent, and the worker runs inside the operator's network, so
a URL must not be able to reach what only that network can: the loopback, private ranges,
link-local (the cloud metadata service at 169.254.169.254 / fd00:ec2::254), CGNAT,
multicast, reserved and unspecified addresses. The rules:

- only ``http`` and ``https``; no credentials in the URL; no IPv6 zone;
- an IP literal in any spelling the resolver accepts (``127.1``, ``2130706433``,
  ``0x7f000001``, ``017700000001``, ``[::ffff:127.0.0.1]``) is judged as the address it is;
  ``localhost`` and ``*.localhost`` are loopback by definition (RFC 6761);
- a host name is resolved, and *every* address it resolves to must be globally routable
  (IPv4-mapped, 6to4, Teredo and NAT64 IPv6 addresses are judged by the IPv4 inside);
- the connection then goes to one of the addresses that were checked (``transport`` pins
  it), so a DNS answer that changes between the check and the connection (rebinding) cannot
  redirect it. Redirects are never followed.

``HITL_WEBHOOK_ALLOW_PRIVATE=1`` (``allow_private``) lifts the address rules, for local use
and tests; the scheme and credential rules, pinning and no-redirects still apply.

For the API: ``check_callback_url`` runs the checks that need no DNS, so a consultation
with an obviously internal callback can be refused at creation (422); the delivery checks
again, with resolution, on every attempt.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}  # AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """Raised for a callback URL the guard refuses. Retrying cannot fix it: the delivery gives
    up on the event (and the API answers 422)."""


class ResolutionError(OSError):
    """Raised when a callback host does not resolve. It may later: the delivery retries."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked callback URL: connect to one of ``addresses``, send ``Host: host``."""

    scheme: str
    host: str  # as in the URL (no brackets): the Host header, SNI and certificate name
    port: int
    path: str  # path and query, for the request line
    addresses: tuple[str, ...]  # the checked IPs to connect to, in resolver order


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be called (None if it is globally routable)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "an IPv6 address with a zone"
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            if inner is not None:
                return f"{inner} (inside the IPv6 address {ip})"
            if ip.ipv4_mapped is not None or ip in _NAT64:
                return None  # ::ffff:a.b.c.d and 64:ff9b::a.b.c.d reach a.b.c.d
    if ip in METADATA:
        return "a cloud metadata address"
    for reason, flagged in (("a loopback address", ip.is_loopback),
                            ("an unspecified address", ip.is_unspecified),
                            ("a link-local address", ip.is_link_local),
                            ("a multicast address", ip.is_multicast),
                            ("a shared (CGNAT) address", isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT),
                            ("a private address", ip.is_private),
                            ("a reserved address", ip.is_reserved)):
        if flagged:
            return reason
    if not ip.is_global:
        return "not a globally routable address"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address ``host`` spells, if it is an IP literal in any form the C resolver accepts
    (dotted, shortened ``127.1``, decimal, octal, hex, IPv6), else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)  # also fe80::1%eth0, with its scope
    except ValueError:
        pass
    if all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))  # inet_aton: every legacy form
        except OSError:
            return None
    return None


def allow_private_default() -> bool:
    return os.environ.get("HITL_WEBHOOK_ALLOW_PRIVATE", "").strip().lower() in ("1", "true", "yes", "on")


def _split(url: str) -> tuple[str, str, int, str]:
    if not isinstance(url, str) or not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeURL("not a URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"only http and https callback URLs are allowed, not {parts.scheme or 'no scheme'!r}")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("credentials in the callback URL are not supported (put a token in its path or query)")
    host = parts.hostname
    if not host:
        raise UnsafeURL("the callback URL has no host")
    if "%" in host:
        raise UnsafeURL("an IPv6 zone in the callback URL is not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("the callback URL's port is invalid") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port, path


def check_callback_url(url: str, *, allow_private: bool | None = None) -> str:
    """The checks that need no DNS: scheme, credentials, and the host if it is an IP literal
    or a ``localhost`` name. Returns ``url``; raises UnsafeURL saying what is wrong.
    ``allow_private`` defaults to HITL_WEBHOOK_ALLOW_PRIVATE."""
    _scheme, host, _port, _path = _split(url)
    if allow_private is None:
        allow_private = allow_private_default()
    if not allow_private:
        _check_host_literal(host)
    return url


def _check_host_literal(host: str) -> None:
    ip = literal_ip(host)
    if ip is not None:
        reason = forbidden_reason(ip)
        if reason is not None:
            raise UnsafeURL(f"the callback host {host} is {reason}")
    elif host.rstrip(".").lower() == "localhost" or host.rstrip(".").lower().endswith(".localhost"):
        raise UnsafeURL(f"the callback host {host} is a loopback name")


def resolve(
    url: str,
    *,
    allow_private: bool = False,
    getaddrinfo: Callable[..., list[tuple]] = socket.getaddrinfo,
) -> Target:
    """Check ``url`` and resolve its host: a Target whose every address passed. Raises
    UnsafeURL (refused) or ResolutionError (did not resolve)."""
    scheme, host, port, path = _split(url)
    if not allow_private:
        _check_host_literal(host)
    try:
        infos = getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolutionError(f"the callback host {host} does not resolve: {exc}") from None
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not allow_private:
            reason = forbidden_reason(ip)
            if reason is not None:
                raise UnsafeURL(f"the callback host {host} resolves to {ip}, {reason}")
        if str(ip) not in addresses:
            addresses.append(str(ip))
    if not addresses:
        raise ResolutionError(f"the callback host {host} has no IPv4 or IPv6 address")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))
