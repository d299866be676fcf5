"""``HITL_ITEM_SCHEMAS``: one JSON Schema per item type, compiled once when the crawl starts.

Keys are item types (the item's class name; for dict items the spider's ``hitl_item_type``,
else ``"dict"``), ``"*"`` for every type without its own. A value is a schema (a dict) or the
path of a JSON file holding one. Formats (``"format": "uri"``, ``"date"``, ...) are checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy_hitl.quality.config import QualityConfigError
from scrapy_hitl.quality.schema_fast import compile_fast

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_REQUIRED = re.compile(r"^'(.+)' is a required property$")
_MESSAGE_MAX = 200


class CompiledSchema:
    """A compiled validator whose errors name the top-level field they are about."""

    def __init__(self, validator: Any, fast: Callable[[Any], bool] | None = None) -> None:
        self.validator = validator
        self.fast = fast  # see schema_fast: True means valid for sure, without jsonschema's cost

    def check(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The failing checks: ``{"check": "schema", "field", "message"}`` (field None: the item)."""
        if self.fast is not None and self.fast(data):
            return []
        failures = []
        for error in self.validator.iter_errors(data):
            for field in _fields_of(error):
                failures.append({"check": "schema", "field": field, "message": _clip(error.message)})
        return failures


def _fields_of(error: Any) -> list[str | None]:
    """The top-level field(s) an error is about; None for the item as a whole."""
    if error.absolute_path:
        return [str(error.absolute_path[0])]
    if error.validator == "required":
        m = _REQUIRED.match(error.message)
        return [m.group(1)] if m else [None]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties") or {})
        extra = [str(k) for k in error.instance if k not in allowed]
        return extra or [None]  # type: ignore[return-value]
    return [None]


def _clip(message: str) -> str:
    return message if len(message) <= _MESSAGE_MAX else message[: _MESSAGE_MAX - 1] + "…"


class ItemSchemas:
    def __init__(self, compiled: dict[str, CompiledSchema]) -> None:
        self._compiled = compiled

    def __bool__(self) -> bool:
        return bool(self._compiled)

    @classmethod
    def compile(cls, raw: Mapping[str, Any]) -> ItemSchemas:
        """Check and compile every schema; a bad one stops the crawl with a message naming it."""
        if not raw:
            return cls({})
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for

        compiled = {}
        for item_type, schema in raw.items():
            where = f"HITL_ITEM_SCHEMAS[{item_type!r}]"
            if isinstance(schema, (str, Path)):
                where = f"{where} ({schema})"
                try:
                    schema = json.loads(Path(schema).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise QualityConfigError(f"{where}: cannot read the schema: {exc}") from None
            if not isinstance(schema, dict):
                raise QualityConfigError(f"{where} must be a JSON Schema object; got {type(schema).__name__}")
            validator_cls = validator_for(schema)
            try:
                validator_cls.check_schema(schema)
            except SchemaError as exc:
                raise QualityConfigError(f"{where} is not a valid JSON Schema: {exc.message}") from None
            validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
            compiled[str(item_type)] = CompiledSchema(
                validator, compile_fast(schema, validator_cls.FORMAT_CHECKER))
        return cls(compiled)

    def for_type(self, item_type: str) -> CompiledSchema | None:
        found = self._compiled.get(item_type)
        return found if found is not None else self._compiled.get("*")
