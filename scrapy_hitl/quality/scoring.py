"""An item's confidence: four parts in [0, 1] and their weighted sum. Pure functions.

- completeness: the share of required fields present and non-empty;
- schema: 1 when the item passes its type's JSON Schema (or its type has none), else 0;
  the failing fields and why are kept with the item. Pass/fail, not a share: one field
  of the wrong shape is reason enough for a human to look (0.7 at most: optional review);
- consistency: pass/fail, 0 as soon as one check fails (a declared cross-field rule, a type
  or format change against earlier items of the run, a numeric outlier): each is a reason
  for a human to look, and the part's weight (0.2 by default) keeps it from holding an item
  on its own;
- extraction: 1 when the page matched the spider's ``hitl_expect`` (or none was declared),
  0 when it did not.

The confidence is ``sum(weight * part) / sum(weights)``, rounded to 4 places so that
0.4 + 0.3 + 0.2 lands on 0.9 and not just under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_hitl.quality.config import PARTS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


@dataclass(slots=True)
class Score:
    """What the pipeline decided from, kept with the item for the reviewer."""

    parts: dict[str, float]
    confidence: float
    failing: list[dict[str, Any]] = field(default_factory=list)  # {"check", "field", "message"}
    critical_missing: list[str] = field(default_factory=list)

    def breakdown(self) -> dict[str, float]:
        return {**self.parts, "confidence": self.confidence}


def is_empty(value: Any) -> bool:
    """None, a blank string, or an empty list / dict / tuple / set."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return not value
    return False


_EMPTY_TYPES = (str, list, tuple, dict, set, frozenset)


def completeness(data: Mapping[str, Any], required: Sequence[str]) -> tuple[float, list[str]]:
    """(share of ``required`` present and non-empty, the missing ones in order)."""
    if not required:
        return 1.0, []
    missing = []
    for name in required:
        value = data.get(name)
        # is_empty(), inlined: this runs for every field of every item
        kind = type(value)
        if kind is str:  # (not value.strip(), without the copy)
            if not value or value.isspace():
                missing.append(name)
        elif kind is list or kind is dict:
            if not value:
                missing.append(name)
        elif value is None or (isinstance(value, _EMPTY_TYPES) and not (value.strip() if isinstance(value, str) else value)):
            missing.append(name)
    return (len(required) - len(missing)) / len(required), missing


def schema_validity(errors: int) -> float:
    return 0.0 if errors else 1.0


def consistency(failures: int) -> float:
    return 0.0 if failures else 1.0


def extraction(expect_matched: bool | None) -> float:
    """``None``: the page declared no expectation (or the item came from no page)."""
    return 0.0 if expect_matched is False else 1.0


def confidence(parts: Mapping[str, float], weights: Mapping[str, float]) -> float:
    total = sum(weights[p] for p in PARTS)
    return round(sum(weights[p] * parts[p] for p in PARTS) / total, 4)


def bucket(confidence: float) -> int:
    """0..9: the tenth the confidence falls in (1.0 is in bucket 9)."""
    return min(9, max(0, int(confidence * 10 + 1e-9)))
