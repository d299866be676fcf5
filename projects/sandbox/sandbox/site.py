"""The sandbox web site: one leaf Twisted resource that routes on the path.

A single leaf resource (no child lookup, no access log, cached page bytes) keeps the server far
faster than the crawler being measured against it.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections import deque
from dataclasses import asdict
from typing import TYPE_CHECKING
from urllib.parse import quote

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.server import Site

from . import account, botd, catalog, mixed, pages
from .challenge import CLEARANCE_COOKIE, ORCHESTRATE_JS, ORCHESTRATE_PATH, VERIFY_PATH, Challenge
from .challenge import request_arg as _arg
from .content import PER_PAGE
from .guarded import DATA_PREFIX, Guard
from .guarded import detail_data as guarded_detail_data
from .guarded import list_data as guarded_list_data

if TYPE_CHECKING:
    from collections.abc import Callable

    from twisted.web.server import Request

    from .config import SiteConfig

MAX_RECORDS = 50  # request records kept per path for /__sandbox/requests
HTML = b"text/html; charset=utf-8"
# Never challenged, even with HITL_FORCE_CAPTCHA: test control, the challenge itself, the
# libraries pages load, health.
NOT_CHALLENGED = (b"/__sandbox/", b"/cdn-cgi/", b"/assets/", b"/health", b"/favicon.ico")
SECTIONS = {
    s.encode(): s
    for s in ("quotes", "vip", "members", "members-redirect", "protected", "js", "guarded", "botd", "drift", "static")
}
# The sections whose data comes from a JSON endpoint behind the guard_ok cookie and X-Guard.
DATA_SECTIONS = ((DATA_PREFIX, "guarded"), (botd.DATA_PREFIX, "botd"))
MEMBER_COOKIE = b"member_session"


class SandboxResource(Resource):
    """Serves every page; counts and records each request except ``/__sandbox/*`` ones."""

    isLeaf = True

    def __init__(self, config: SiteConfig) -> None:
        super().__init__()
        self.config = config
        self.challenge = Challenge(secret=config.secret, bind_ua=config.cf_bind_ua)
        self.guard = Guard(secret=config.secret)
        self.accounts = account.Accounts(config.secret)
        self.member_uses: dict[bytes, int] = {}  # member_session "valid-limit<N>-..." -> requests seen
        self.account_uses: dict[str, int] = {}  # account token "acct-limit<N>-..." -> data requests seen
        self._botd: tuple[int, bytes] | None = None  # BotD's bundle, read at the first request
        self.hits: dict[bytes, int] = {}
        self.total = 0
        self.records: dict[bytes, deque[tuple[bytes, dict[bytes, bytes], bytes | None, int]]] = {}
        self._gates: dict[str, Callable[[Request], bytes | None]] = {
            "vip": self._vip_gate,
            "members": lambda request: self._member_gate(request, redirect=False),
            "members-redirect": lambda request: self._member_gate(request, redirect=True),
            "protected": self._challenge_gate,
        }
        self._routes: dict[bytes, Callable[[Request], bytes]] = {
            b"/": lambda request: _html(request, pages.index_page(config)),
            b"/health": self._health,
            b"/robots.txt": self._robots,
            b"/login": self._login,
            b"/logout": self._logout,
            b"/account/login": self._account_login_page,
            b"/account/api/login": self._account_login,
            VERIFY_PATH.encode(): self._verify,
            ORCHESTRATE_PATH: self._orchestrate,
            botd.BUNDLE_PATH: self._botd_bundle,
        }
        self._control: dict[bytes, Callable[[Request], bytes]] = {
            b"/__sandbox/hits": self._hits_json,
            b"/__sandbox/reset": self._reset,
            b"/__sandbox/requests": self._requests_json,
            b"/__sandbox/config": self._config_json,
        }

    def _robots(self, request: Request) -> bytes:
        """``User-agent: *`` with one ``Disallow`` per configured path (an empty one: allow all)."""
        paths = [p.strip() for p in self.config.robots_disallow.split(",") if p.strip()] or [""]
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return ("User-agent: *\n" + "".join(f"Disallow: {p}\n" for p in paths)).encode()

    def render(self, request: Request) -> bytes:  # type: ignore[override]
        path = request.path
        if path.startswith(b"/__sandbox/"):
            handler = self._control.get(path)
            return handler(request) if handler else _not_found(request)
        self.total += 1
        self.hits[path] = self.hits.get(path, 0) + 1
        body = self._dispatch(request, path)
        records = self.records.get(path)
        if records is None:
            records = self.records[path] = deque(maxlen=MAX_RECORDS)
        records.append((request.method, request.received_cookies, request.getHeader(b"user-agent"), request.code))
        delay_ms = self.config.latency_ms
        if self.config.data_latency_ms and path.startswith((DATA_PREFIX, botd.DATA_PREFIX)):
            delay_ms += self.config.data_latency_ms
        if delay_ms:
            return self._later(request, body, delay_ms)
        return body

    def _later(self, request: Request, body: bytes, delay_ms: int) -> int:
        """Answer after ``delay_ms`` without blocking the server (a remote site's round trip)."""
        from twisted.internet import reactor

        def _finish() -> None:
            if not request.finished and not request._disconnected:
                request.write(body)
                request.finish()

        reactor.callLater(delay_ms / 1000, _finish)
        return NOT_DONE_YET

    def _dispatch(self, request: Request, path: bytes) -> bytes:
        if self.config.force_captcha and not path.startswith(NOT_CHALLENGED):
            if (denied := self._challenge_gate(request)) is not None:
                return denied
        handler = self._routes.get(path)
        if handler is not None:
            return handler(request)
        if path.startswith(account.PREFIX):
            return self._account(request, path)
        for prefix, section in DATA_SECTIONS:
            if path.startswith(prefix):
                return self._guarded_data(request, path[len(prefix) :], section)
        parts = path.split(b"/")
        if len(parts) == 4 and parts[2] in (b"page", b"detail") and parts[1] in SECTIONS:
            return self._section(request, SECTIONS[parts[1]], parts[2] == b"page", parts[3])
        if len(parts) == 4 and parts[1] == b"mixed":
            return self._mixed(request, parts[2], parts[3])
        if len(parts) == 4 and parts[1] == b"catalog" and parts[2] == b"page" and parts[3].isdigit():
            n = int(parts[3])
            if 1 <= n <= self.config.pages:
                return _html(request, catalog.listing_page(n, self.config.pages))
        return _not_found(request)

    def _section(self, request: Request, section: str, listing: bool, raw_number: bytes) -> bytes:
        gate = self._gates.get(section)
        if gate is not None and (denied := gate(request)) is not None:
            return denied
        cfg = self.config
        n = int(raw_number) if raw_number.isdigit() else 0
        if section == "static":
            if not listing or not 1 <= n <= cfg.static_pages:
                return _not_found(request)
            return _html(request, pages.static_page(n, cfg.static_pages, cfg.static_page_kb))
        if not 1 <= n <= (cfg.pages if listing else cfg.pages * PER_PAGE):
            return _not_found(request)
        if section == "js":
            body = pages.js_list_page(n, cfg.pages) if listing else pages.js_detail_page(n)
        elif section == "guarded":  # a fresh guard_ok token in every page: not cached
            if listing:
                body = self.guard.page(f"{pages.SECTION_NAMES[section]} - page {n}", f"/guarded/data/{n}")
            else:
                body = self.guard.page(f"{pages.SECTION_NAMES[section]}: quote #{n}", f"/guarded/data/detail/{n}")
        elif section == "botd":  # the same: a fresh token per page
            if listing:
                body = botd.page(self.guard, f"{pages.SECTION_NAMES[section]} - page {n}", f"/botd/data/{n}")
            else:
                body = botd.page(self.guard, f"{pages.SECTION_NAMES[section]}: quote #{n}", f"/botd/data/detail/{n}")
        elif listing:
            drift_after = cfg.drift_after if section == "drift" else None
            body = pages.quote_list_page(section, n, cfg.pages, drift_after)
        else:
            body = pages.quote_detail_page(section, n)
        return _html(request, body)

    def _mixed(self, request: Request, kind: bytes, raw_number: bytes) -> bytes:
        """``/mixed/page/<p>``, ``/mixed/item/<k>`` (static ids only), ``/mixed/app/<k>`` (JS ids only)."""
        cfg = self.config
        n = int(raw_number) if raw_number.isdigit() else 0
        if kind == b"page" and 1 <= n <= mixed.page_count(cfg.mixed_items):
            return _html(request, mixed.listing_page(n, cfg.mixed_items, cfg.mixed_js_share, cfg.mixed_seed,
                                                     cfg.mixed_guarded_share))
        if kind in (b"item", b"app", b"guarded") and 1 <= n <= cfg.mixed_items:
            tier = mixed.tier_of(n, cfg.mixed_items, cfg.mixed_js_share, cfg.mixed_guarded_share, cfg.mixed_seed)
            if kind.decode() == mixed.TEMPLATES[tier]:  # another template's URL for an item is a 404, as on a shop
                page = {"static": mixed.item_page, "browser": mixed.app_page, "stealth": mixed.guarded_page}[tier]
                return _html(request, page(n))
        return _not_found(request)

    def _guarded_data(self, request: Request, rest: bytes, section: str) -> bytes:
        """``/<section>/data/<n>`` and ``/<section>/data/detail/<id>`` (guarded, botd): JSON
        behind cookie and header."""
        listing = not rest.startswith(b"detail/")
        raw = rest if listing else rest[len(b"detail/") :]
        n = int(raw) if raw.isdigit() else 0
        if not 1 <= n <= (self.config.pages if listing else self.config.pages * PER_PAGE):
            request.setResponseCode(404)
            return _json(request, {"error": "not found"})
        request.setHeader(b"cache-control", b"no-store")
        if (denial := self.guard.denial(request)) is not None:
            request.setResponseCode(403)
            return _json(request, denial)
        if listing:
            return _json(request, guarded_list_data(n, self.config.pages, section))
        return _json(request, guarded_detail_data(n))

    # -- gates: return None to let the request through, or the denial body --------------------

    def _vip_gate(self, request: Request) -> bytes | None:
        sent = request.received_cookies.get(b"vip_pass", b"")
        if hmac.compare_digest(sent, self.config.vip_pass.encode()):
            return None
        request.setResponseCode(403)
        request.setHeader(b"server", b"nginx")
        return _html(request, pages.FORBIDDEN)

    def _member_gate(self, request: Request, *, redirect: bool) -> bytes | None:
        session = request.received_cookies.get(MEMBER_COOKIE)
        if session is not None and session.startswith(b"valid-") and len(session) > 6:
            if self._member_banned(session):
                request.setResponseCode(403)
                return _html(request, pages.message_page("Account suspended", "Too many requests from this account."))
            return None
        next_url = _uri(request)
        if redirect:
            request.redirect(b"/login?next=" + quote(next_url, safe="/").encode())
            return _html(request, pages.message_page("Redirecting", "Redirecting to the login page."))
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", b'Cookie realm="members"')
        return _html(request, pages.login_required_page(next_url, expired=session is not None))

    def _challenge_gate(self, request: Request) -> bytes | None:
        token = request.received_cookies.get(CLEARANCE_COOKIE)
        if self.challenge.is_cleared(token, request.getHeader(b"user-agent") or b""):
            return None
        return self.challenge.deny(request, _uri(request))

    def _member_banned(self, session: bytes) -> bool:
        """A session ``valid-limit<N>-...`` is banned (403) after N requests, like a site that
        suspends an account crawling too much."""
        if not session.startswith(b"valid-limit"):
            return False
        raw = session[len(b"valid-limit"):].split(b"-", 1)[0]
        if not raw.isdigit():
            return False
        used = self.member_uses[session] = self.member_uses.get(session, 0) + 1
        return used > int(raw)

    # -- the account section: its login lives in localStorage (account.py) ------------------------

    def _account(self, request: Request, path: bytes) -> bytes:
        cfg = self.config
        if path.startswith(account.DATA_PREFIX):
            rest = path[len(account.DATA_PREFIX):]
            listing = not rest.startswith(b"detail/")
            raw = rest if listing else rest[len(b"detail/"):]
            n = int(raw) if raw.isdigit() else 0
            if not 1 <= n <= (cfg.pages if listing else cfg.pages * PER_PAGE):
                request.setResponseCode(404)
                return _json(request, {"error": "not found"})
            auth = (request.getHeader(b"authorization") or b"").decode("latin-1")
            if not (auth.startswith("Bearer ") and self.accounts.valid(auth[7:])):
                request.setResponseCode(401)
                return _json(request, {"error": "sign in first"})
            limit = self.accounts.limit(auth[7:])
            if limit is not None:
                used = self.account_uses[auth[7:]] = self.account_uses.get(auth[7:], 0) + 1
                if used > limit:
                    request.setResponseCode(403)
                    return _json(request, {"error": "account suspended: too many requests"})
            return _json(request, account.list_data(n, cfg.pages) if listing else account.detail_data(n))
        parts = path.split(b"/")
        if len(parts) == 4 and parts[2] in (b"page", b"detail") and parts[3].isdigit():
            n, listing = int(parts[3]), parts[2] == b"page"
            if 1 <= n <= (cfg.pages if listing else cfg.pages * PER_PAGE):
                data = f"/account/data/{n}" if listing else f"/account/data/detail/{n}"
                return _html(request, account.shell_page(f"My account - {parts[2].decode()} {n}", data))
        return _not_found(request)

    def _account_login_page(self, request: Request) -> bytes:
        return _html(request, account.login_page(_safe_next(_arg(request, b"next"), "/account/page/1")))

    def _account_login(self, request: Request) -> bytes:
        if request.method != b"POST":
            return _not_allowed(request, b"POST")
        user, password = _arg(request, b"user"), _arg(request, b"password")
        valid_user = hmac.compare_digest(user.encode(), self.config.login_user.encode())
        if not (hmac.compare_digest(password.encode(), self.config.login_password.encode()) and valid_user):
            request.setResponseCode(401)
            return _json(request, {"error": "Invalid username or password."})
        limit = _arg(request, b"limit")
        return _json(request, {"token": self.accounts.issue(int(limit) if limit.isdigit() else None)})

    # -- plain routes ---------------------------------------------------------------------------

    def _health(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"ok"

    def _login(self, request: Request) -> bytes:
        next_url = _safe_next(_arg(request, b"next"), "/members/page/1")
        if request.method != b"POST":
            return _html(request, pages.login_page(next_url))
        user, password = _arg(request, b"user"), _arg(request, b"password")
        valid_user = hmac.compare_digest(user.encode(), self.config.login_user.encode())
        if not (hmac.compare_digest(password.encode(), self.config.login_password.encode()) and valid_user):
            return _html(request, pages.login_page(next_url, "Invalid username or password."))
        session = f"valid-{secrets.token_hex(12)}"
        request.addCookie(MEMBER_COOKIE, session, path=b"/", httpOnly=True, sameSite="lax")
        request.redirect(next_url.encode())
        return b""

    def _logout(self, request: Request) -> bytes:
        request.addCookie(MEMBER_COOKIE, "", path=b"/", max_age=b"0")
        request.redirect(b"/")
        return b""

    def _verify(self, request: Request) -> bytes:
        if request.method != b"POST":
            return _not_allowed(request, b"POST")
        return self.challenge.verify(request, _safe_next(_arg(request, b"next"), "/"))

    def _orchestrate(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/javascript")
        return ORCHESTRATE_JS

    def _botd_bundle(self, request: Request) -> bytes:
        if self._botd is None:
            self._botd = botd.bundle()
        status, body = self._botd
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/javascript; charset=utf-8")
        request.setHeader(b"cache-control", b"public, max-age=86400")
        return body

    # -- /__sandbox/* control endpoints (not counted) -------------------------------------------

    def _hits_json(self, request: Request) -> bytes:
        prefix = _arg(request, b"prefix").encode()
        counts = {path.decode("utf-8", "replace"): n for path, n in self.hits.items() if path.startswith(prefix)}
        total = sum(counts.values()) if prefix else self.total
        return _json(request, {**counts, "__total__": total})

    def _reset(self, request: Request) -> bytes:
        if request.method != b"POST":
            return _not_allowed(request, b"POST")
        self.hits.clear()
        self.records.clear()
        self.member_uses.clear()
        self.account_uses.clear()
        self.total = 0
        return _json(request, {"ok": True})

    def _requests_json(self, request: Request) -> bytes:
        path = _arg(request, b"path")
        if not path:
            request.setResponseCode(400)
            return _json(request, {"error": "missing ?path=, e.g. /__sandbox/requests?path=/vip/page/1"})
        records = self.records.get(path.encode(), ())
        return _json(request, [_record_json(record) for record in records])

    def _config_json(self, request: Request) -> bytes:
        return _json(request, {k: v for k, v in asdict(self.config).items() if k != "secret"})


def build_site(config: SiteConfig) -> Site:
    """The Twisted ``Site`` serving the sandbox, without access log."""
    site = QuietSite(SandboxResource(config))
    site.displayTracebacks = True
    return site


class QuietSite(Site):
    noisy = False

    def log(self, request: Request) -> None:
        """No access log: benchmarks push 20,000 requests through and measure the crawler."""


def _html(request: Request, body: bytes) -> bytes:
    if not request.responseHeaders.hasHeader(b"content-type"):
        request.setHeader(b"content-type", HTML)
    return body


def _json(request: Request, data: object) -> bytes:
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(data).encode()


def _not_found(request: Request) -> bytes:
    request.setResponseCode(404)
    return _html(request, pages.NOT_FOUND)


def _not_allowed(request: Request, allow: bytes) -> bytes:
    request.setResponseCode(405)
    request.setHeader(b"allow", allow)
    return _html(request, pages.message_page("405 Method Not Allowed", f"Use {allow.decode()}."))


def _uri(request: Request) -> str:
    return request.uri.decode("utf-8", "replace")


def _safe_next(value: str, default: str) -> str:
    """Only same-site paths: refuse ``//host``, backslashes and header injection."""
    if value.startswith("/") and not value.startswith("//") and not any(c in value for c in "\\\r\n"):
        return value
    return default


def _record_json(record: tuple[bytes, dict[bytes, bytes], bytes | None, int]) -> dict[str, object]:
    method, cookies, user_agent, status = record
    return {
        "method": method.decode(),
        "cookies": {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in cookies.items()},
        "user_agent": user_agent.decode("utf-8", "replace") if user_agent is not None else None,
        "status": status,
    }
