"""Consistency against earlier items of the run, per item type and field, in bounded memory.

For every non-empty value the tracker asks, once the field has ``min_samples`` values:

- **type changed**: the value's JSON type (string, number, boolean, array, object) is one
  that under 5% of earlier values had, while one type held at least 95% of them;
- **format changed**: for strings, the value's *shape* (words -> ``a``, numbers -> ``9``,
  other characters kept: ``"£1,234.50"`` -> ``"£9.9"``, ``"In stock"`` -> ``"a"``; over 40
  characters -> ``<text>``) is one that under 5% of earlier values had. Free text is left
  alone: fields that had more than ``MAX_SHAPES`` shapes (titles, names), or long values in
  5% or more of them (prose, where a short value is no format change);
- **outlier**: for numbers (and strings that are one number with an optional currency or
  unit, ``"£51.77"``, ``"12 kg"``), a robust z-score ``0.6745 * (x - median) / MAD`` beyond
  ``outlier_z``, over a reservoir of at most ``RESERVOIR`` values (Vitter's algorithm R, a
  fixed seed, so a run is reproducible). When the MAD is 0 the mean absolute deviation
  stands in (``(x - median) / (1.2533 * meanAD)``); when both are 0 the field is constant
  and nothing is judged.

Then the value is learned, outliers included (the median and MAD barely move). The median and
MAD are recomputed after every ``max(8, n / 8)`` new values, not per item.

Cross-field rules a spider declares (``hitl_item_rules = {"name": callable(item) -> bool}``)
are checked by :func:`check_rules`.
"""

from __future__ import annotations

import random
import re
from itertools import repeat
from operator import sub
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

RESERVOIR = 512  # numbers kept per field for the median / MAD
MAX_SHAPES = 4  # a field with more string shapes than this is free text: its format is not judged
MAX_FIELDS = 200  # fields tracked per item type
MAX_TYPES = 50  # item types tracked per run
RARE = 0.05  # a type or shape under this share of earlier values is a change
DOMINANT = 0.95  # ... when one type holds at least this share
SHORT = 40  # longer strings have the shape LONG
LONG = "<text>"

_SHAPE_TABLE = str.maketrans(
    {**{c: "a" for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"},
     **{c: "9" for c in "0123456789"}, "\t": " ", "\n": " ", "\r": " "}
)
# Literal replacements only: re.sub then stays in C (a template like r"\1" costs a Python
# call per match, which was most of the tracker's time).
_WORDS = re.compile(r"a(?:[a ]*a)?")  # letters and the spaces between them
_DIGITS = re.compile(r"9+(?:,9+)*")  # digits, with thousands separators
# One number, with at most a currency sign (£, $), a currency code or unit before it ("USD 10")
# and a unit after it ("12 kg", "5%"): "SKU-00042" and "12-14" are not numbers.
_NUMBER = re.compile(
    r"^\s*(?:[^\w\s.,+-]{1,3}|[A-Za-z]{1,3}\s)?\s*([+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)\s*[^\d\s]{0,3}\s*$"
)


_JSON_TYPES = {str: "string", int: "number", float: "number", bool: "boolean", list: "array", dict: "object",
               tuple: "array"}


def json_type(value: Any) -> str:
    found = _JSON_TYPES.get(type(value))
    if found is not None:
        return found
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# translated value ("aaaa://999.9.9.9/aaaa/99") -> its shape: the two substitutions cost 1-2 µs
# a value, and a field's values translate to few strings (the same letters and digit counts),
# while their translation is one C call. Bounded: cleared when full.
_SHAPES: dict[str, str] = {}
_MAX_CACHED_SHAPES = 4096


def shape(value: str) -> str:
    """``"£1,234.50"`` -> ``"£9.9"``, ``"In stock"`` -> ``"a"``, ``"SKU-0042"`` -> ``"a-9"``."""
    if len(value) > SHORT:
        return LONG
    return _shape_of_translated(value.strip().translate(_SHAPE_TABLE))


def _shape_of_translated(translated: str) -> str:
    found = _SHAPES.get(translated)
    if found is None:
        if len(_SHAPES) >= _MAX_CACHED_SHAPES:
            _SHAPES.clear()
        found = _SHAPES[translated] = _DIGITS.sub("9", _WORDS.sub("a", translated))
    return found


def as_number(value: Any) -> float | None:
    """A number, or a string holding one number with at most a short prefix / suffix."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value == value else None  # not NaN
    if isinstance(value, str) and len(value) <= SHORT:
        m = _NUMBER.match(value)
        if m:
            return float(m.group(1).replace(",", ""))
    return None


class _Field:
    """What one field of one item type looked like so far."""

    __slots__ = ("n", "types", "shapes", "shape_n", "nums", "num_n", "stale", "center", "spread")

    def __init__(self) -> None:
        self.n = 0
        self.types: dict[str, int] = {}
        self.shapes: dict[str, int] | None = {}  # None: free text, no longer tracked
        self.shape_n = 0
        self.nums: list[float] = []
        self.num_n = 0
        self.stale = 0
        self.center = 0.0
        self.spread = 0.0  # MAD / 0.6745, or 1.2533 * mean AD; 0: constant


class RunConsistency:
    """Per-run tracker; :meth:`check` judges a value against the field's history, then learns it."""

    def __init__(self, *, min_samples: int = 20, outlier_z: float = 5.0, seed: int = 0) -> None:
        self.min_samples = min_samples
        self.outlier_z = outlier_z
        self._fields: dict[str, dict[str, _Field]] = {}
        self._random = random.Random(seed).random  # in C: randrange() is Python, 4x the time

    def check(self, item_type: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The failing checks of one item (``{"check", "field", "message"}``).

        Runs for every field of every item: the type and shape checks are written out here
        rather than called per value (what :func:`shape` computes, inline)."""
        fields = self._fields.get(item_type)
        if fields is None:
            if len(self._fields) >= MAX_TYPES:
                return []
            fields = self._fields[item_type] = {}
        failures: list[dict[str, Any]] = []
        min_samples = self.min_samples
        for name, value in data.items():
            if value is None or (not value and isinstance(value, (str, list, dict))):  # empty: nothing to judge
                continue
            f = fields.get(name)
            if f is None:
                if len(fields) >= MAX_FIELDS:
                    continue
                f = fields[name] = _Field()
            # the type: one that under RARE of the earlier values had, while one type dominates
            jtype = _JSON_TYPES.get(type(value)) or json_type(value)  # (the common types without a call)
            types = f.types
            n = f.n
            seen = types.get(jtype, 0)
            if seen != n and n >= min_samples:  # (seen == n: the field's only type so far)
                if seen < RARE * n and max(types.values()) >= DOMINANT * n:
                    usual = max(types, key=types.__getitem__)
                    failures.append({"check": "type_changed", "field": name,
                                     "message": f"a {jtype}, where earlier items had a {usual}"})
            n += 1
            f.n = n
            types[jtype] = seen + 1
            # the shape of a string, until the field turns out to be free text
            if jtype == "string" and f.shapes is not None:
                shapes = f.shapes
                if len(value) > SHORT:
                    sh = LONG
                elif value.isdigit() and value.isascii():  # an id, a count: what shape() makes of it
                    sh = "9"
                else:
                    translated = value.strip().translate(_SHAPE_TABLE)
                    sh = _SHAPES.get(translated) or _shape_of_translated(translated)
                count = shapes.get(sh, 0)
                shape_n = f.shape_n
                if shape_n >= min_samples and shapes.get(LONG, 0) >= RARE * shape_n:
                    f.shapes = None  # prose: a short value in it is no format change
                else:
                    if shape_n >= min_samples and count < RARE * shape_n:
                        usual = max(shapes, key=shapes.__getitem__)
                        failures.append({"check": "format_changed", "field": name,
                                         "message": f"{_clip(value)!r} is shaped {sh!r}, earlier values {usual!r}"})
                    shapes[sh] = count + 1
                    f.shape_n = shape_n + 1
                    if len(shapes) > MAX_SHAPES:
                        f.shapes = None
            if f.num_n or n <= min_samples:  # a field with no number in its first values has none
                if jtype == "string" and value.isdigit() and value.isascii() and len(value) <= SHORT:
                    number = float(value)  # what as_number() reads in it, without the regex
                else:
                    number = as_number(value)
                if number is not None:
                    self._check_number(name, f, number, failures)
        return failures

    def _check_number(self, name: str, f: _Field, x: float, failures: list[dict[str, Any]]) -> None:
        if f.num_n >= self.min_samples:
            if f.stale >= max(8, len(f.nums) // 8) or f.stale == f.num_n:  # or never computed
                _refresh(f)
            if f.spread > 0:
                z = (x - f.center) / f.spread
                if abs(z) > self.outlier_z:
                    failures.append({"check": "outlier", "field": name,
                                     "message": f"{x:g} is {abs(z):.1f} robust deviations from the "
                                                f"median {f.center:g}"})
        f.num_n += 1
        f.stale += 1
        if len(f.nums) < RESERVOIR:
            f.nums.append(x)
        else:  # algorithm R: each of the n values seen so far is kept with probability k/n
            j = int(self._random() * f.num_n)  # uniform in [0, n): n is far below 2**53
            if j < RESERVOIR:
                f.nums[j] = x


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence, as ``statistics.median`` gives it: here rather than
    imported, because the ``statistics`` module (with ``fractions``) weighs 0.2 MB in every
    crawl process for this one function."""
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _refresh(f: _Field) -> None:
    f.stale = 0
    values = f.nums
    center = median(values)
    deviations = list(map(abs, map(sub, values, repeat(center))))  # [abs(v - center) ...], in C
    mad = median(deviations)
    if mad > 0:
        spread = mad / 0.6745
    else:
        mean_ad = sum(deviations) / len(deviations)
        spread = 1.2533 * mean_ad
    f.center, f.spread = center, spread


def check_rules(rules: Mapping[str, Callable[[dict[str, Any]], Any]], data: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the spider's cross-field rules; a rule fails when it returns a falsy value or raises."""
    failures = []
    for name, rule in rules.items():
        try:
            ok = rule(data)
        except Exception as exc:  # a rule that cannot decide (a missing field, a bad type) fails
            failures.append({"check": "rule", "field": None, "rule": name,
                             "message": f"{name}: {type(exc).__name__}: {exc}"})
            continue
        if not ok:
            failures.append({"check": "rule", "field": None, "rule": name, "message": f"{name} is false"})
    return failures


def _clip(value: str, n: int = 40) -> str:
    return value if len(value) <= n else value[: n - 1] + "…"
