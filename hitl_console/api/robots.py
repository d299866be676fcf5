"""``GET /api/v1/robots?url=``: would a crawl that obeys robots.txt fetch this URL, and which
rule decides.

The answer is the one Scrapy's ``RobotsTxtMiddleware`` with its default parser (Protego)
would reach: robots.txt is fetched from the URL's origin and parsed whatever its status
(a 404 page has no rules: everything is allowed); when it cannot be fetched at all, Scrapy
lets requests through, and so does this answer, saying why. The group is chosen for
``user_agent`` (default: Scrapy's own ``USER_AGENT``, which a project's ROBOTSTXT_USER_AGENT
or USER_AGENT may change), and within it the longest matching pattern wins, ``Allow`` on a
tie (RFC 9309). Protego does not say which rule matched, so ``explain`` repeats its walk
over the group's sorted rules.

The console fetches robots.txt from its own network, so the webhooks' SSRF guard applies:
loopback, private, link-local and metadata addresses are refused (422) unless
HITL_ROBOTS_ALLOW_PRIVATE is set; every redirect (at most 5) is checked again, and the
connection goes to the address that was checked.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import Blueprint, current_app, jsonify, request
from protego import Protego

from hitl_console.auth.guard import require_user_or_agent
from hitl_console.errors import ApiError
from hitl_console.slots import install_slow_calls, slow_call
from hitl_console.webhooks import ssrf, transport

bp = Blueprint("api_robots", __name__)
bp.record_once(install_slow_calls)

TIMEOUT = 10.0  # seconds for robots.txt, redirects included
MAX_BYTES = 500 * 1024  # what a robots.txt parser must read at least (RFC 9309: 500 KiB)
MAX_REDIRECTS = 5  # RFC 9309: follow at least five
MAX_URL = 8192  # characters of ?url=
MAX_USER_AGENT = 500  # characters of ?user_agent=


@dataclass(slots=True)
class Fetched:
    status: int | None
    body: bytes = b""
    error: str | None = None
    url: str = ""


def default_user_agent() -> str:
    from scrapy.settings.default_settings import USER_AGENT

    return str(USER_AGENT)


def _words(exc: Exception) -> str:
    """The guard's message, which speaks of callbacks, for a robots.txt URL."""
    return str(exc).replace("callback host", "host").replace("callback URL", "URL").replace(" callback URLs", " URLs")


def fetch(url: str, user_agent: str, *, allow_private: bool) -> Fetched:
    """GET robots.txt through the SSRF guard, within TIMEOUT in all (redirects included: a
    timer shuts the socket of a server that trickles). UnsafeURL when an address is refused
    (also after a redirect); any other failure comes back in ``error``."""
    deadline = time.monotonic() + TIMEOUT
    for _ in range(MAX_REDIRECTS + 1):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            target = ssrf.resolve(url, allow_private=allow_private)
        except ssrf.ResolutionError as exc:
            return Fetched(None, error=_words(exc), url=url)
        # the pinned connection of webhook deliveries: to the checked address, Host kept
        conn = transport._connection(target, left, None)  # noqa: SLF001 - shared guard, same package
        timer = threading.Timer(left, lambda c=conn: c.sock and c.sock.shutdown(socket.SHUT_RDWR))
        timer.daemon = True
        timer.start()
        try:
            conn.request("GET", target.path, headers={"User-Agent": user_agent, "Accept": "text/plain, */*"})
            response = conn.getresponse()
            location = response.getheader("Location")
            if 300 <= response.status < 400 and location:
                url = urljoin(url, location)
                continue
            return Fetched(response.status, response.read(MAX_BYTES), url=url)
        except (OSError, http.client.HTTPException) as exc:
            return Fetched(None, error=f"{type(exc).__name__}: {exc}", url=url)
        finally:
            timer.cancel()
            conn.close()
    if time.monotonic() >= deadline:
        return Fetched(None, error=f"no answer within {TIMEOUT:g} s", url=url)
    return Fetched(None, error=f"more than {MAX_REDIRECTS} redirects", url=url)


def explain(parser: Protego, url: str, user_agent: str) -> tuple[bool, dict[str, Any] | None, str | None]:
    """(allowed, the deciding rule or None, the group's user-agent line or None), with
    Protego's own ``can_fetch`` the authority on ``allowed``."""
    allowed = parser.can_fetch(url, user_agent)
    try:  # Protego's internals: the group it picked and its rules, longest first
        from protego._utils import _quote_path

        group = parser._get_matching_rule_set(user_agent)  # noqa: SLF001
        if group is None:
            return allowed, None, None
        path = _quote_path(url)
        for rule in group._rules:  # noqa: SLF001 - sorted by finalize_rules: the first match decides
            if rule.value.match(path):
                return allowed, {"directive": rule.field, "pattern": rule.value._pattern,  # noqa: SLF001
                                 "user_agent": group.user_agent}, group.user_agent
        return allowed, None, group.user_agent
    except (AttributeError, ImportError, TypeError):  # another Protego: the answer without the rule
        return allowed, None, None


def _check_url(url: str | None) -> tuple[str, str]:
    """The URL and its robots.txt URL; 400 naming what is wrong."""
    if not url:
        raise ApiError(400, "bad_request", {"url": "required: the page to check, e.g. "
                                                   "?url=https://example.com/some/page"})
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise ApiError(400, "bad_request", {"url": f"a URL of at most {MAX_URL} characters, without spaces or "
                                                   "control characters (percent-encode them)"})
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, "bad_request", {"url": "an absolute http or https URL, e.g. https://example.com/page"})
    return url, f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/robots.txt"


@bp.get("/api/v1/robots")
@require_user_or_agent()
def robots() -> Any:
    url, robots_url = _check_url(request.args.get("url"))
    user_agent = (request.args.get("user_agent") or "").strip() or default_user_agent()
    # an HTTP header is Latin-1 to http.client: a character past it (a euro sign) was a 500
    if len(user_agent) > MAX_USER_AGENT or any(ord(c) < 32 or ord(c) == 127 or ord(c) > 255 for c in user_agent):
        raise ApiError(400, "bad_request", {"user_agent": f"at most {MAX_USER_AGENT} characters, without control "
                                                          "characters or ones an HTTP header cannot carry, "
                                                          "e.g. mybot/1.0"})
    allow_private = current_app.config["HITL"].robots_allow_private
    try:
        got = slow_call("the check", lambda: fetch(robots_url, user_agent, allow_private=allow_private))
    except ssrf.UnsafeURL as exc:
        raise ApiError(422, "invalid", {"url": f"{_words(exc)}; the console does "
                                               "not fetch from its own network unless HITL_ROBOTS_ALLOW_PRIVATE "
                                               "is set"}) from None
    if not isinstance(got, Fetched):
        return got  # 429: this process already runs its share of slow calls
    answer: dict[str, Any] = {"url": url, "robots_url": robots_url, "user_agent": user_agent,
                              "robots_status": got.status, "robots_error": got.error}
    if urlsplit(url).path == "/robots.txt":
        return jsonify({**answer, "allowed": True, "rule": None, "group": None, "reason": "robots_txt",
                        "message": "robots.txt itself is always allowed"})
    if got.status is None:
        return jsonify({**answer, "allowed": True, "rule": None, "group": None, "reason": "unreachable",
                        "message": f"robots.txt could not be fetched ({got.error}); Scrapy's "
                                   "RobotsTxtMiddleware then lets every request through"})
    from scrapy.robotstxt import decode_robotstxt

    parser = Protego.parse(decode_robotstxt(got.body, None))
    allowed, rule, group = explain(parser, url, user_agent)
    if rule is not None:
        reason, message = "rule", (f"{rule['directive'].capitalize()}: {rule['pattern']} in the group for "
                                   f"User-agent: {rule['user_agent']} matches")
    elif group is not None:
        reason, message = "no_rule", f"no rule of the group for User-agent: {group} matches: allowed"
    else:
        reason, message = "no_group", (f"robots.txt (HTTP {got.status}) has no group for this user agent, "
                                       "nor for *: allowed")
    return jsonify({**answer, "allowed": allowed, "rule": rule, "group": group, "reason": reason,
                    "message": message})
