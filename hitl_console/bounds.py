"""Input bounds every route shares: ids a database column can hold, JSON a parser can nest.

Werkzeug's ``int`` converter accepts any run of digits: an id past 2**63 - 1 reached SQLite
as an OverflowError, and one past 2**31 - 1 PostgreSQL as "integer out of range". Python's
``json`` recurses once per nesting level, and a body nested 1,000 deep raised
RecursionError. All were 500s. Bounding them here, in the app
factory, covers every route, including the ones not written yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Request
from werkzeug.routing import IntegerConverter

from hitl_console.errors import ApiError

if TYPE_CHECKING:
    from flask import Flask

# The largest id (or version) a row can have: the models' Integer columns are 32-bit in
# PostgreSQL (64-bit in SQLite), and SQLAlchemy casts a parameter to the column's type.
MAX_ID = 2**31 - 1
MAX_JSON_DEPTH = 64  # nested arrays/objects in a request body: far more than any body needs


def at_most(n: int) -> str:
    """A regex for the decimal numbers from 0 to ``n``: fewer digits than ``n``, or as many
    and smaller at the first digit that differs, or ``n`` itself."""
    digits = str(n)
    alternatives = [rf"\d{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - i - 1
            alternatives.append(digits[:i] + f"[0-{int(digit) - 1}]" + (rf"\d{{{rest}}}" if rest else ""))
    return "(?:" + "|".join([*alternatives, digits]) + ")"


class IdConverter(IntegerConverter):
    """``<int:...>`` limited to ids a database can hold: any other number matches no route,
    so it answers 404 like an id that does not exist.

    The bound is in the regex, not only in ``to_python``: Werkzeug answers 405 when a path
    matches a rule of another method (GET /items/<id> beside PATCH /items/<id>) before a
    converter refuses, and a websocket rule 400.
    """

    regex = at_most(MAX_ID)


def too_deep(limit: int = MAX_JSON_DEPTH) -> ApiError:
    return ApiError(400, "bad_request", f"the JSON body nests arrays or objects more than {limit} levels "
                                        "deep; send a flatter body")


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` (decoded JSON) nests lists/dicts more than ``limit`` levels; a loop,
    not recursion, so any depth json.loads returned is measured."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class BoundedRequest(Request):
    """Flask's request, whose JSON body may nest at most MAX_JSON_DEPTH levels.

    Raises ApiError, not ValueError, so ``get_json(silent=True)`` answers the 400 too,
    instead of hiding the reason behind "send a JSON object". (Not a JSON provider: the
    provider also reads what the console stored itself, and needs no limit there.)
    """

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            value = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:  # json's C scanner recurses once per level
            raise too_deep() from None
        if isinstance(value, (dict, list)) and nested_deeper_than(value, MAX_JSON_DEPTH):
            raise too_deep()
        return value


def init_app(app: Flask) -> None:
    """Call before any blueprint is registered: rules bind their converters when added."""
    app.url_map.converters["int"] = IdConverter
    app.request_class = BoundedRequest
