"""One JSON error shape for the API: ``{"error": "...", "detail": ...}``; for pages, an error
page in the console's own look, with its navigation (``error.html``)."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    """Raise in a view to answer ``status`` with the JSON error shape."""

    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def _wants_json() -> bool:
    # /ws/: a websocket client reads the refused handshake's body, never an HTML page
    return request.path.startswith(("/api/", "/ws/")) or request.accept_mimetypes.best == "application/json"


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return jsonify({"error": exc.error, "detail": exc.detail}), exc.status

    import redis.exceptions
    from sqlalchemy.exc import DBAPIError

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_down(exc: Exception) -> Any:
        """Redis not answering (every call checks its login there) is an outage, said as one:
        503 with what is down, never a 500 that reads like a bug in the request."""
        current_app.logger.error("Redis is not answering: %s", exc)
        return _unavailable("redis_unavailable", "Redis is not answering; the console needs it for logins and "
                            "events. Retry in a moment; `hitl status` on the server says what is down.")

    @app.errorhandler(DBAPIError)
    def _database_down(exc: DBAPIError) -> Any:
        if not exc.connection_invalidated and not _is_connection_error(exc):
            raise exc  # a real bug: the 500 handler logs it
        current_app.logger.error("The database is not answering: %s", exc)
        return _unavailable("database_unavailable", "The database is not answering. Retry in a moment; "
                            "`hitl status` on the server says what is down.")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not _wants_json():
            return _error_page(exc)
        error = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": error, "detail": exc.description}), exc.code or 500


def _is_connection_error(exc: Exception) -> bool:
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError) and any(
        words in str(exc.orig).lower() for words in ("connection", "could not connect", "server closed", "timeout"))


def _unavailable(error: str, detail: str) -> Any:
    headers = {"Retry-After": "5", "Cache-Control": "no-store"}
    if _wants_json():
        return jsonify({"error": error, "detail": detail}), 503, headers
    from werkzeug.exceptions import ServiceUnavailable

    return _error_page(ServiceUnavailable(detail))


# What an error page says, in words; the status code stays in small type.
_PAGES = {
    400: ("That request was not understood", "Something in the address or the form was not valid."),
    403: ("Not for this account", "This page needs another role: ask an admin."),
    404: ("Nothing here", "No page at this address. It may have been a link to something since deleted."),
    405: ("Not like that", "This address does not take that kind of request."),
    413: ("Too large", "The upload is larger than the console accepts (HITL_CONSOLE_MAX_UPLOAD)."),
    503: ("Something the console needs is down", "Redis or the database is not answering. Try again in a "
          "moment; `hitl status` on the server says what is down."),
    500: ("Something broke on our side", "The console hit an error it did not expect; the details are in "
          "its log. Try again, or go back to the inbox."),
}


def _error_page(exc: HTTPException) -> Any:
    code = exc.code or 500
    if not request.path.startswith(("/static/", "/words.js")) and code < 600:
        user = None
        try:
            from hitl_console.auth.guard import authenticate

            user = authenticate()
        except Exception:  # noqa: BLE001 - an error page shows without a login, or with a broken one
            user = None
        title, explain = _PAGES.get(code, (exc.name or "Error", exc.description or ""))
        try:
            last = _last_event_id() if user else ""
            html = render_template("error.html", page="error", user=user, code=code, name=exc.name,
                                   title=title, explain=explain, last_event_id=last)
        except Exception:  # noqa: BLE001 - never let the error page itself fail
            return exc
        return html, code, {"Cache-Control": "no-store"}
    return exc


def _last_event_id() -> str:
    from flask import current_app

    try:
        return current_app.extensions["hitl"].events.last_id()
    except Exception:  # noqa: BLE001 - Redis down: the page still shows
        return ""
