"""One JSON error shape for the API: ``{"error": "...", "detail": ...}``."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
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

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not _wants_json():
            return exc
        error = (exc.name or "error").lower().replace(" ", "_")
        return jsonify({"error": error, "detail": exc.description}), exc.code or 500
