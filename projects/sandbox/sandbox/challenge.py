"""A Cloudflare-like "managed challenge" that a human can really solve.

The interstitial imitates Cloudflare's markers (``cf-mitigated: challenge``, ``cf-ray``,
``Just a moment...``, ``window._cf_chl_opt``, the orchestrate script), and adds a form: tick
"Verify you are human", type the 4-character code shown on the page, submit. The code is an HMAC
of the ray id, so no server state is needed; ``cf_clearance`` tokens are HMAC-signed too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twisted.web.server import Request

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: humans type it
CODE_LENGTH = 4
CLEARANCE_COOKIE = b"cf_clearance"
VERIFY_PATH = "/cdn-cgi/challenge-platform/verify"
ORCHESTRATE_PATH = b"/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1"
ORCHESTRATE_JS = (
    b"/* sandbox stand-in for Cloudflare's challenge orchestrator */\n"
    b"(function(){var i=document.getElementById('cf-code-input');if(i){i.focus();}}());\n"
)
HEADERS = (
    (b"server", b"cloudflare"),
    (b"cf-mitigated", b"challenge"),
    (b"content-type", b"text/html; charset=UTF-8"),
    (b"cache-control", b"private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0"),
    (b"expires", b"Thu, 01 Jan 1970 00:00:01 GMT"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
STYLE = (
    "<style>*{box-sizing:border-box;margin:0;padding:0}body{font-family:system-ui,-apple-system,"
    "sans-serif;color:#313131}.main-wrapper{display:flex;flex-direction:column;align-items:center;"
    "margin-top:8rem}.main-content{max-width:60rem;padding:0 1.5rem;width:100%}.h1{font-size:2.5rem;"
    "font-weight:500}.h2{font-size:1.5rem;font-weight:500;margin:1rem 0}.cf-error{color:#de1303}"
    "#challenge-form{border:1px solid #e0e0e0;padding:1rem;margin:1rem 0;max-width:22rem}"
    ".cf-code{font:700 1.6rem monospace;letter-spacing:.3em}#cf-code-input{font:1.2rem monospace;"
    "width:8rem}.footer{font-size:.75rem;margin-top:4rem;text-align:center}</style>\n"
)


class Challenge:
    """Issues challenge pages and checks codes and ``cf_clearance`` tokens."""

    def __init__(self, *, secret: str, bind_ua: bool = False) -> None:
        self._key = secret.encode()
        self._bind_ua = bind_ua

    def _mac(self, message: str) -> bytes:
        return hmac.new(self._key, message.encode(), hashlib.sha256).digest()

    def code_for(self, ray: str) -> str:
        """The code a human must type on the challenge page with this ray id."""
        return "".join(CODE_ALPHABET[b % len(CODE_ALPHABET)] for b in self._mac("code|" + ray)[:CODE_LENGTH])

    def issue_clearance(self, user_agent: bytes) -> str:
        nonce, issued = secrets.token_hex(12), int(time.time())
        return f"{nonce}-{issued}-1.2.1.1-{self._clearance_mac(nonce, issued, user_agent)}"

    def is_cleared(self, token: bytes | None, user_agent: bytes) -> bool:
        """True for a ``cf_clearance`` value this server issued (to this User-Agent if bound)."""
        if not token:
            return False
        parts = token.decode("ascii", "replace").split("-")
        if len(parts) != 4 or not parts[1].isdigit():
            return False
        expected = self._clearance_mac(parts[0], int(parts[1]), user_agent)
        return hmac.compare_digest(parts[3], expected)

    def _clearance_mac(self, nonce: str, issued: int, user_agent: bytes) -> str:
        ua = user_agent.decode("latin-1") if self._bind_ua else ""
        return self._mac(f"clearance|{nonce}|{issued}|{ua}").hex()[:40]

    def deny(self, request: Request, next_url: str, error: str | None = None) -> bytes:
        """Answer ``request`` with the 403 interstitial; the solved form returns to ``next_url``."""
        ray = secrets.token_hex(8)
        request.setResponseCode(403)
        for name, value in HEADERS:
            request.setHeader(name, value)
        request.setHeader(b"cf-ray", f"{ray}-LHR".encode())
        zone = (request.getHeader(b"host") or b"127.0.0.1").decode("latin-1").split(":")[0]
        return challenge_page(ray=ray, code=self.code_for(ray), zone=zone, next_url=next_url, error=error)

    def verify(self, request: Request, next_url: str) -> bytes:
        """Handle ``POST VERIFY_PATH``: set ``cf_clearance`` and redirect, or challenge again."""
        ray = request_arg(request, b"ray")
        typed = request_arg(request, b"code").strip().upper()
        if not request_arg(request, b"human"):
            return self.deny(request, next_url, "Please tick \u201cVerify you are human\u201d.")
        if not ray or not hmac.compare_digest(typed, self.code_for(ray)):
            return self.deny(request, next_url, "Incorrect code. Please try again.")
        token = self.issue_clearance(request.getHeader(b"user-agent") or b"")
        request.addCookie(CLEARANCE_COOKIE, token, path=b"/", max_age=b"1800", httpOnly=True, sameSite="lax")
        request.redirect(next_url.encode())
        return b""


def request_arg(request: Request, name: bytes) -> str:
    """First value of query or form field ``name``, decoded; "" when absent."""
    values = (request.args or {}).get(name)
    return values[0].decode("utf-8", "replace") if values else ""


def challenge_page(*, ray: str, code: str, zone: str, next_url: str, error: str | None = None) -> bytes:
    opt = {
        "cvId": "3", "cZone": zone, "cType": "managed", "cRay": ray,
        "cH": hashlib.sha256(ray.encode()).hexdigest()[:43],
        "cUPMDTk": f"{next_url}?__cf_chl_tk={ray}", "cFPWv": "b", "cITimeS": str(int(time.time())),
        "cTplC": 0, "cTplV": 5, "cTplB": "cf", "fa": f"{next_url}?__cf_chl_f_tk={ray}",
    }  # fmt: skip
    opt_js = json.dumps(opt).replace("<", "\\u003c")
    err = f'<p class="cf-error" id="challenge-error-text">{escape(error)}</p>\n' if error else ""
    html = f"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="robots" content="noindex,nofollow">
<meta name="viewport" content="width=device-width,initial-scale=1">
{STYLE}</head><body><div class="main-wrapper" role="main"><div class="main-content">
<h1 class="zone-name-title h1">{escape(zone)}</h1>
<h2 id="challenge-running" class="h2">Verify you are human by completing the action below.</h2>
{err}<form id="challenge-form" action="{VERIFY_PATH}" method="POST">
<input type="hidden" name="ray" value="{ray}">
<input type="hidden" name="next" value="{escape(next_url)}">
<p><label class="cb-lb"><input type="checkbox" name="human" value="1"> \
<span class="cb-lb-t">Verify you are human</span></label></p>
<p>Type this code: <strong class="cf-code" id="cf-code">{code}</strong></p>
<p><input type="text" name="code" id="cf-code-input" maxlength="{CODE_LENGTH}" autocomplete="off" aria-label="Code"> \
<button type="submit" id="challenge-submit">Continue</button></p>
</form>
<div id="challenge-body-text" class="core-msg">{escape(zone)} needs to review the security of your \
connection before proceeding.</div>
<noscript><div class="h2">Enable JavaScript and cookies to continue</div></noscript>
</div></div>
<script>(function(){{window._cf_chl_opt={opt_js};}}());</script>
<script src="{ORCHESTRATE_PATH.decode()}?ray={ray}"></script>
<div class="footer" role="contentinfo"><div class="ray-id">Ray ID: <code>{ray}</code></div>
<div id="footer-text">Performance &amp; security by Cloudflare</div></div>
</body></html>
"""
    return html.encode()
