"""The quality gate's settings, read once (see ``defaults.py`` and docs/quality.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy_hitl import defaults

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

PARTS = ("completeness", "schema", "consistency", "extraction")
TIMEOUT_ACTIONS = ("deliver", "drop")


class QualityConfigError(ValueError):
    """A quality setting is malformed; raised when the crawl starts, naming the setting."""


@dataclass(frozen=True, slots=True)
class QualitySettings:
    weights: dict[str, float]
    deliver_score: float
    review_score: float
    critical_fields: dict[str, tuple[str, ...]]  # item type ("*" for any) -> fields
    item_schemas: dict[str, Any]
    min_samples: int
    outlier_z: float
    flush_interval: float
    review_timeout: float
    timeout_action: str
    failing_requests: int
    review_wait: float
    min_completeness: float = defaults.HITL_MIN_COMPLETENESS  # under it an item is held whatever its score

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> QualitySettings:
        weights = _weights(settings.getdict("HITL_QUALITY_WEIGHTS", defaults.HITL_QUALITY_WEIGHTS))
        deliver = _unit(settings, "HITL_QUALITY_DELIVER_SCORE")
        review = _unit(settings, "HITL_QUALITY_REVIEW_SCORE")
        if review > deliver:
            raise QualityConfigError(
                f"HITL_QUALITY_REVIEW_SCORE ({review}) must not be above HITL_QUALITY_DELIVER_SCORE "
                f"({deliver})")
        action = str(settings.get("HITL_REVIEW_TIMEOUT_ACTION") or defaults.HITL_REVIEW_TIMEOUT_ACTION)
        if action not in TIMEOUT_ACTIONS:
            raise QualityConfigError(f"HITL_REVIEW_TIMEOUT_ACTION must be 'deliver' or 'drop'; got {action!r}")
        schemas = settings.get("HITL_ITEM_SCHEMAS") or {}
        if isinstance(schemas, str):
            import json

            try:
                schemas = json.loads(schemas)
            except ValueError as exc:
                raise QualityConfigError(f"HITL_ITEM_SCHEMAS is not valid JSON: {exc}") from None
        if not isinstance(schemas, dict):
            raise QualityConfigError("HITL_ITEM_SCHEMAS must be a dict: item type -> JSON Schema (or a file path)")
        return cls(
            weights=weights,
            deliver_score=deliver,
            review_score=review,
            critical_fields=field_map(settings.get("HITL_CRITICAL_FIELDS"), "HITL_CRITICAL_FIELDS"),
            item_schemas=dict(schemas),
            min_samples=_positive(settings.getint("HITL_QUALITY_MIN_SAMPLES", defaults.HITL_QUALITY_MIN_SAMPLES),
                                  "HITL_QUALITY_MIN_SAMPLES"),
            outlier_z=_positive(settings.getfloat("HITL_QUALITY_OUTLIER_Z", defaults.HITL_QUALITY_OUTLIER_Z),
                                "HITL_QUALITY_OUTLIER_Z"),
            flush_interval=_positive(
                settings.getfloat("HITL_QUALITY_FLUSH_INTERVAL", defaults.HITL_QUALITY_FLUSH_INTERVAL),
                "HITL_QUALITY_FLUSH_INTERVAL"),
            review_timeout=_positive(settings.getfloat("HITL_REVIEW_TIMEOUT", defaults.HITL_REVIEW_TIMEOUT),
                                     "HITL_REVIEW_TIMEOUT"),
            timeout_action=action,
            failing_requests=max(0, settings.getint("HITL_FAILING_REQUESTS", defaults.HITL_FAILING_REQUESTS)),
            review_wait=_non_negative(settings.getfloat("HITL_REVIEW_WAIT", defaults.HITL_REVIEW_WAIT),
                                      "HITL_REVIEW_WAIT"),
            min_completeness=_unit(settings, "HITL_MIN_COMPLETENESS"),
        )


def field_map(value: Any, name: str) -> dict[str, tuple[str, ...]]:
    """A list of field names (for every item type) or a dict ``type -> list``, as ``{type: fields}``
    with ``"*"`` for every type. Accepts a comma-separated string (``-s NAME=a,b``)."""
    if not value:
        return {}
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, set, frozenset)):
        return {"*": tuple(str(v) for v in value)}
    if isinstance(value, dict):
        out = {}
        for key, fields in value.items():
            if isinstance(fields, str) or not isinstance(fields, (list, tuple, set, frozenset)):
                raise QualityConfigError(f"{name}[{key!r}] must be a list of field names; got {fields!r}")
            out[str(key)] = tuple(str(v) for v in fields)
        return out
    raise QualityConfigError(f"{name} must be a list of field names or a dict item type -> list; got {value!r}")


def _weights(raw: dict[str, Any]) -> dict[str, float]:
    unknown = set(raw) - set(PARTS)
    if unknown:
        raise QualityConfigError(
            f"HITL_QUALITY_WEIGHTS has unknown parts {sorted(unknown)}; use {', '.join(PARTS)}")
    weights = {p: float(raw.get(p, defaults.HITL_QUALITY_WEIGHTS[p])) for p in PARTS}
    if any(w < 0 or math.isnan(w) for w in weights.values()) or sum(weights.values()) <= 0:
        raise QualityConfigError(f"HITL_QUALITY_WEIGHTS must be >= 0 with a positive sum; got {raw!r}")
    return weights


def _unit(settings: BaseSettings, name: str) -> float:
    value = settings.getfloat(name, getattr(defaults, name))
    if not 0 <= value <= 1:
        raise QualityConfigError(f"{name} must be between 0 and 1; got {value!r}")
    return value


def _positive(value: Any, name: str) -> Any:
    if value <= 0:
        raise QualityConfigError(f"{name} must be greater than 0; got {value!r}")
    return value


def _non_negative(value: Any, name: str) -> Any:
    if value < 0:
        raise QualityConfigError(f"{name} must be 0 or more; got {value!r}")
    return value
