"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of the JSON API.

Unauthenticated on purpose: it describes the API's shape and reveals no data, and client
generators and API explorers fetch it before they have a token.

The document is a data file, ``hitl_console/openapi.json`` (package data), read once per
process and served as is. ``tests/console/test_openapi.py`` keeps it honest: it checks that
it documents exactly the app's routes, and validates real requests and answers against it.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from typing import Any

from flask import Blueprint, current_app

bp = Blueprint("openapi", __name__)


@functools.cache
def document_bytes() -> bytes:
    """The document, read from the package once."""
    return files("hitl_console").joinpath("openapi.json").read_bytes()


@bp.get("/api/v1/openapi.json")
def openapi_json() -> Any:
    return current_app.response_class(document_bytes(), mimetype="application/json")
