"""Headers on every response: a strict CSP, nosniff, no framing by other sites.

Scraped HTML is untrusted: it is only ever shown inside a sandboxed iframe (no
allow-same-origin) whose document comes with its own, stricter policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask, Response

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
       "form-action 'self'; object-src 'none'")


def init_app(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers["Referrer-Policy"] = "same-origin"
        return response
