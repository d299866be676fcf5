"""A fast "surely valid" pre-check for the simple JSON Schemas items usually have.

``jsonschema`` costs 50-70 µs per item of five fields (it builds a validator object for every
subschema it descends into), which alone would be most of the quality gate's budget. Most
items are valid, so :func:`compile_fast` turns a schema that only uses a conservative subset
of keywords into plain Python closures answering one question: *is this instance valid for
sure?* True is trusted; False, or a schema outside the subset (``compile_fast`` returns
None), sends the item to ``jsonschema``, which has the last word and the error messages.

The subset, with ``jsonschema``'s own semantics: ``type``, ``enum`` and ``const`` of scalars,
``pattern`` (``re.search``), ``minLength``/``maxLength``, ``minimum``/``maximum`` and numeric
``exclusiveMinimum``/``exclusiveMaximum``, ``format`` (through the validator's own format
checker), ``properties``, ``required``, boolean ``additionalProperties``, ``items`` as one
schema, ``minItems``/``maxItems``, and annotations (``title``, ``description``, ...). Where
the two could differ, the closures answer False: an ``integer`` that is a float, a number
that is not an int or float, an ``enum`` over containers.
"""

from __future__ import annotations

import numbers
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

_ANNOTATIONS = frozenset(("title", "description", "default", "examples", "$comment", "$schema", "deprecated",
                          "readOnly", "writeOnly"))
_TYPES: dict[str, Any] = {
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}
_SCALARS = (str, int, float, bool, type(None))


class _Unsupported(Exception):
    pass


def compile_fast(schema: Any, format_checker: Any = None) -> Callable[[Any], bool] | None:
    """A closure that returns True only for instances ``jsonschema`` accepts; None when the
    schema uses a keyword outside the subset."""
    try:
        return _compile(schema, format_checker)
    except _Unsupported:
        return None


def _compile(schema: Any, fc: Any) -> Callable[[Any], bool]:
    if schema is True or schema == {}:
        return lambda v: True
    if not isinstance(schema, dict):
        raise _Unsupported
    checks: list[Callable[[Any], bool]] = []
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        maker = _KEYWORDS.get(key)
        if maker is None:
            raise _Unsupported(key)
        checks.append(maker(value, schema, fc))
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def _type(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(n in _TYPES for n in names):
        raise _Unsupported("type")
    tests = [_TYPES[n] for n in names]
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(t(v) for t in tests)


def _scalar_equal(a: Any, b: Any) -> bool:
    """jsonschema's ``equal`` for scalars: a bool equals only a bool; 1 == 1.0."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    return type(a) in _SCALARS and type(b) in _SCALARS and a == b


def _enum(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    if not isinstance(value, list) or not all(type(e) in _SCALARS for e in value):
        raise _Unsupported("enum")
    return lambda v: any(_scalar_equal(v, e) for e in value)


def _const(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    if type(value) not in _SCALARS:
        raise _Unsupported("const")
    return lambda v: _scalar_equal(v, value)


def _pattern(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    try:
        search = re.compile(value).search
    except (re.error, TypeError):
        raise _Unsupported("pattern") from None
    return lambda v: not isinstance(v, str) or search(v) is not None


def _length(op: Any) -> Any:
    def make(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
        if type(value) is not int:
            raise _Unsupported
        return lambda v: not isinstance(v, str) or op(len(v), value)
    return make


def _number(op: Any) -> Any:
    def make(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
        if type(value) not in (int, float):
            raise _Unsupported  # draft 4's boolean exclusiveMinimum, among others

        def check(v: Any) -> bool:
            t = type(v)
            if t is int or t is float:
                return op(v, value)
            # Not a number (booleans neither): the keyword does not apply. Another kind of
            # number (Decimal, ...): jsonschema decides.
            return t is bool or not isinstance(v, numbers.Number)
        return check
    return make


def _format(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    if fc is None:
        return lambda v: True
    if not isinstance(value, str):
        raise _Unsupported("format")
    return lambda v: fc.conforms(v, value)


def _properties(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    if not isinstance(value, dict):
        raise _Unsupported("properties")
    props = {name: _compile(sub, fc) for name, sub in value.items()}

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return not isinstance(v, dict)  # not an object: properties do not apply
        for name, sub in props.items():
            if name in v and not sub(v[name]):
                return False
        return True
    return check


def _required(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise _Unsupported("required")
    return lambda v: type(v) is dict and all(n in v for n in value) or not isinstance(v, dict)


def _additional(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    if value is True:
        return lambda v: True
    if value is not False or "patternProperties" in schema:
        raise _Unsupported("additionalProperties")
    allowed = set(schema.get("properties") or ())
    return lambda v: not isinstance(v, dict) or type(v) is dict and all(k in allowed for k in v)


def _items(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
    if not isinstance(value, dict) or "prefixItems" in schema:
        raise _Unsupported("items")
    sub = _compile(value, fc)
    return lambda v: not isinstance(v, list) or type(v) is list and all(sub(x) for x in v)


def _count(op: Any) -> Any:
    def make(value: Any, schema: dict[str, Any], fc: Any) -> Callable[[Any], bool]:
        if type(value) is not int:
            raise _Unsupported
        return lambda v: not isinstance(v, list) or op(len(v), value)
    return make


_KEYWORDS: dict[str, Any] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "minLength": _length(lambda n, m: n >= m),
    "maxLength": _length(lambda n, m: n <= m),
    "minimum": _number(lambda v, m: v >= m),
    "maximum": _number(lambda v, m: v <= m),
    "exclusiveMinimum": _number(lambda v, m: v > m),
    "exclusiveMaximum": _number(lambda v, m: v < m),
    "format": _format,
    "properties": _properties,
    "required": _required,
    "additionalProperties": _additional,
    "items": _items,
    "minItems": _count(lambda n, m: n >= m),
    "maxItems": _count(lambda n, m: n <= m),
}
