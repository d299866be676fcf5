"""The escalation ladder and what the crawler learns about it. Pure: no I/O, no Scrapy.

A request climbs the ladder ``static -> browser -> stealth -> human`` one tier at a time until
a tier gets an ok response. :class:`TierMemory` remembers, per domain and per URL path pattern
(:func:`path_pattern`), the tier that last succeeded, and new requests start there.

The rules (they are the spec; tests/unit/test_tiers.py pins them):

- **Known pattern** (last success at tier L): start at L, predicted L. When L is above the
  ladder's first automated tier, every such request is counted; when the count reaches the
  pattern's interval, ``ceil(1 / recheck_share) * 2 ** recheck_failures`` (exponent capped at
  10), the count restarts and this request is a *re-check*: it starts one configured tier below
  L, so a domain that dropped its protection can come back down. Counter-based, no randomness:
  with the default share of 0.1 the 10th request re-checks.
- **Unknown pattern of a known domain**: start at the domain's floor (the lowest tier among its
  learned patterns), predicted that floor. An educated guess: the new page types of a JS-only
  site skip the static fetch.
- **Unknown domain**: start at the first configured automated tier, predicted nothing.
- **A re-check succeeded at the lower tier**: learn it, reset ``recheck_failures``; this is a
  misprediction (we predicted too high).
- **A re-check had to climb back**: learn the tier it reached and add one to
  ``recheck_failures``: each failed re-check doubles the pattern's interval, so a site that
  really needs a browser wastes few static fetches (5 in 500 requests at the default share).
- **Any other success**: a misprediction when something was predicted and the tier differs.
  Learn the tier; ``recheck_failures`` is kept while the tier stays, reset when it changes.
- At most ``max_patterns`` patterns per domain; the least recently updated is forgotten.
- Every change marks the (domain, pattern) dirty with its full entry
  ``{"tier", "recheck_failures", "updated"}`` (``updated`` in epoch seconds), for the stats
  flush to persist (``domains.tiers`` = ``{"patterns": {pattern: entry}}``).
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "AUTOMATED",
    "MAX_PATTERNS",
    "TIERS",
    "Ladder",
    "Plan",
    "TierError",
    "TierMemory",
    "lowest",
    "parse_tiers",
    "path_pattern",
]

TIERS = ("static", "browser", "stealth", "human")  # the ladder, in order
AUTOMATED = ("static", "browser", "stealth")
MAX_PATTERNS = 256  # learned patterns kept per domain, in memory and in the database
MAX_RECHECK_EXPONENT = 10  # a pattern's re-check interval grows to at most 1024 times the base

_LADDER_ORDER = ", ".join(TIERS)


class TierError(ValueError):
    """A tier setting or request meta key names an unknown tier, or tiers in the wrong order.

    Raised when the settings are read (the crawl does not start) or when a request is planned
    (that request fails); the message names the setting or meta key and the fix.
    """


def parse_tiers(value: Any) -> tuple[str, ...]:
    """Validate ``HITL_TIERS``: a list/tuple of tier names or a comma-separated string.

    Names are case-insensitive; they must be known, unique, in ladder order, and include at
    least one automated tier.
    """
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise TierError(
            f"HITL_TIERS must be a list or a comma-separated string, not {type(value).__name__}; "
            f'e.g. "{_LADDER_ORDER}"'
        )
    names = []
    for item in items:
        if not isinstance(item, str):
            raise TierError(f"HITL_TIERS lists {item!r}, which is not a tier name; choose from: {_LADDER_ORDER}")
        name = item.strip().lower()
        if name:  # a trailing comma is harmless
            names.append(name)
    if not names:
        raise TierError(f'HITL_TIERS is empty; list at least one automated tier, e.g. "{_LADDER_ORDER}"')
    for name in names:
        if name not in TIERS:
            raise TierError(f'HITL_TIERS lists unknown tier "{name}"; choose from: {_LADDER_ORDER}')
    for i, name in enumerate(names):
        if name in names[:i]:
            raise TierError(f'HITL_TIERS lists "{name}" twice; list each tier once')
    for prev, name in zip(names, names[1:]):
        if TIERS.index(name) < TIERS.index(prev):
            raise TierError(
                f'HITL_TIERS lists "{prev}" before "{name}"; list tiers in ladder order: {_LADDER_ORDER}'
            )
    if not any(name in AUTOMATED for name in names):
        raise TierError(
            f"HITL_TIERS has no automated tier (only {', '.join(names)}); "
            f"add at least one of {', '.join(AUTOMATED)}"
        )
    return tuple(names)


def _check(tier: str, key: str) -> int:
    """The rank of ``tier``; TierError naming the meta key ``key`` when it is not a tier."""
    if tier not in TIERS:
        raise TierError(f'request.meta["{key}"] is {tier!r}, not a tier; use one of: {_LADDER_ORDER}')
    return TIERS.index(tier)


class Ladder:
    """The configured tiers (HITL_TIERS), and moves along them.

    ``tiers``: every configured tier, in order; ``automated``: the configured automated ones;
    ``human``: whether ``human`` is configured; ``first``: the first automated tier, where a
    request with nothing known starts. Tiers that are not configured are skipped by every move.
    """

    __slots__ = ("_caps", "_lowers", "_nexts", "automated", "first", "human", "tiers")

    def __init__(self, tiers: Sequence[str]) -> None:
        self.tiers = parse_tiers(tiers)
        self.automated = tuple(t for t in self.tiers if t in AUTOMATED)
        self.human = "human" in self.tiers
        self.first = self.automated[0]
        self._caps: dict[tuple[str, str | None], str] = {}
        self._nexts: dict[tuple[str, str | None], str | None] = {}
        self._lowers: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"Ladder({self.tiers!r})"

    def rank(self, tier: str) -> int:
        """Position in TIERS (the global order), for comparisons."""
        return _check(tier, "hitl_tier")

    def cap(self, tier: str, max_tier: str | None) -> str:
        """The highest configured automated tier at or below both ``tier`` and ``max_tier``.

        ``max_tier`` None or ``"human"`` caps nothing. When no configured automated tier is
        that low, ``first`` (a request cannot start below the ladder).
        """
        # Asked once or twice per request: answers are remembered (a handful of pairs).
        found = self._caps.get((tier, max_tier))
        if found is None:
            found = self._caps[(tier, max_tier)] = self._cap(tier, max_tier)
        return found

    def _cap(self, tier: str, max_tier: str | None) -> str:
        limit = _check(tier, "hitl_tier")
        if max_tier is not None:
            limit = min(limit, _check(max_tier, "hitl_max_tier"))
        below = [t for t in self.automated if TIERS.index(t) <= limit]
        return below[-1] if below else self.first

    def next(self, tier: str, max_tier: str | None = None) -> str | None:
        """The next configured automated tier above ``tier`` and not above ``max_tier``, or None."""
        key = (tier, max_tier)
        if key in self._nexts:
            return self._nexts[key]
        found = self._nexts[key] = self._next(tier, max_tier)
        return found

    def _next(self, tier: str, max_tier: str | None) -> str | None:
        rank = _check(tier, "hitl_tier")
        limit = len(TIERS) if max_tier is None else _check(max_tier, "hitl_max_tier")
        for t in self.automated:
            if rank < TIERS.index(t) <= limit:
                return t
        return None

    def lower(self, tier: str) -> str | None:
        """The configured automated tier just below ``tier``, or None."""
        if tier in self._lowers:  # asked for every request of a known pattern
            return self._lowers[tier]
        found = self._lowers[tier] = self._lower(tier)
        return found

    def _lower(self, tier: str) -> str | None:
        rank = _check(tier, "hitl_tier")
        below = [t for t in self.automated if TIERS.index(t) < rank]
        return below[-1] if below else None


def lowest(tiers: Iterable[str]) -> str | None:
    """The lowest of ``tiers`` in ladder order (unknown names ignored), or None."""
    known = [TIERS.index(t) for t in tiers if t in TIERS]
    return TIERS[min(known)] if known else None


# --- path patterns -------------------------------------------------------------------------
_MAX_SEGMENTS = 4
_MAX_SEGMENT_LEN = 40
_HEX_ID = re.compile(r"[0-9a-f]{16,}")
_DIGIT = re.compile(r"[0-9]")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}={0,2}")


def _looks_like_id(segment: str) -> bool:
    if len(segment) < 16:  # both shapes below need 16 characters: most words stop here
        return False
    # Ids with no digit (those with one are caught before): long hex ("deadbeefcafebabe"), or
    # a long base64 token, about half of whose letters are capitals; CamelCase words have far
    # fewer ("XyZqWeRtYuIoPaSd" is an id, "JavaScriptTutorials" is not).
    if _HEX_ID.fullmatch(segment.lower()):
        return True
    if not _TOKEN.fullmatch(segment) or not any(c.islower() for c in segment):
        return False
    return sum(c.isupper() for c in segment) * 4 >= len(segment)


def _segment(segment: str) -> str:
    if segment.isdigit():
        return "{n}"
    if len(segment) > _MAX_SEGMENT_LEN or (len(segment) > 1 and _DIGIT.search(segment)):
        return "{id}"
    if _looks_like_id(segment):
        return "{id}"
    return segment.lower()


# segment -> what _segment() makes of it: a site's paths repeat the same words ("product",
# "page"), and every request's path is turned into its pattern. Numbers are not kept (each is
# new, and "{n}" is one isdigit() away).
_SEGMENTS: dict[str, str] = {}
_MAX_CACHED_SEGMENTS = 4096


def path_pattern(url_or_path: str) -> str:
    """The page template a URL belongs to: ``https://x/shop/item/17?a=1`` -> ``/shop/item/{n}``.

    Only the path counts (scheme, host, query and fragment are dropped), percent-decoded and
    split on ``/`` (empty segments, so a trailing slash, are ignored). A segment of digits
    becomes ``{n}``; one with a digit and more than one character, longer than 40 characters,
    or shaped like a hex or base64 id becomes ``{id}``; others are lower-cased. At most four
    segments are kept, then ``/*``. An empty path is ``/``.
    """
    if "://" in url_or_path or "?" in url_or_path or "#" in url_or_path:
        path = urlsplit(url_or_path).path
    else:
        path = url_or_path  # already a path (the middleware passes Scrapy's cached parse)
    if "%" in path:
        path = unquote(path)
    segments = []
    cache = _SEGMENTS
    for s in path.split("/"):
        if not s:
            continue
        if s.isdigit():
            segments.append("{n}")
            continue
        found = cache.get(s)
        if found is None:
            if len(cache) >= _MAX_CACHED_SEGMENTS:
                cache.clear()
            found = cache[s] = _segment(s)
        segments.append(found)
    if not segments:
        return "/"
    more = len(segments) > _MAX_SEGMENTS
    return "/" + "/".join(segments[:_MAX_SEGMENTS]) + ("/*" if more else "")


# --- memory --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Plan:
    """Where one request starts on the ladder, and why."""

    tier: str  # where this request starts
    predicted: str | None  # what memory predicted (None: nothing known, a first try)
    recheck: bool  # started one tier below the prediction on purpose
    known: bool = False  # the pattern itself was learned (not guessed from the domain)


_PLANS: dict[tuple[str, str | None, bool, bool], Plan] = {}


def plan_of(tier: str, predicted: str | None, recheck: bool, known: bool = False) -> Plan:
    """``Plan(tier, predicted, recheck, known)``, shared: a plan is frozen, and a crawl uses a
    handful (tiers x flags), so the one or two a request needs are not built for each request
    (a frozen dataclass sets every field through ``object.__setattr__``)."""
    key = (tier, predicted, recheck, known)
    found = _PLANS.get(key)
    if found is None:
        found = Plan(tier, predicted, recheck, known)
        if len(_PLANS) < 256:
            _PLANS[key] = found
    return found


@dataclass(slots=True)
class _Entry:
    tier: str
    recheck_failures: int
    updated: float
    count: int = 0  # requests since the last re-check; not persisted

    def as_dict(self) -> dict[str, Any]:
        return {"tier": self.tier, "recheck_failures": self.recheck_failures, "updated": self.updated}


class TierMemory:
    """Per (domain, path pattern): the tier that last succeeded. See the module docstring.

    Only touched on the reactor thread (no locks).

    ``ladder``: the configured tiers. ``recheck_share``: the share of a known pattern's requests
    that start one tier lower (0 disables re-checks). ``max_patterns``: patterns kept per domain.
    ``clock``: epoch seconds for ``updated`` (tests pass a fake one).
    """

    def __init__(
        self,
        ladder: Ladder,
        *,
        recheck_share: float = 0.1,
        max_patterns: int = MAX_PATTERNS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= recheck_share <= 1:
            raise ValueError(f"HITL_TIER_RECHECK_SHARE must be from 0 to 1; got {recheck_share!r}")
        if max_patterns < 1:
            raise ValueError(f"max_patterns must be at least 1; got {max_patterns!r}")
        self.ladder = ladder
        self.recheck_share = recheck_share
        self.max_patterns = max_patterns
        self._clock = clock
        # round(): 1 / 0.1 is exactly 10.0, but other shares may land a hair above an integer
        self._base_interval = math.ceil(round(1 / recheck_share, 9)) if recheck_share else 0
        self._domains: dict[str, OrderedDict[str, _Entry]] = {}  # least recently updated first
        self._dirty: dict[str, dict[str, dict[str, Any]]] = {}

    def load(self, domain: str, data: Mapping[str, Any] | None) -> None:
        """Merge persisted tiers (``{"patterns": {pattern: entry}}``, as ``domain_to_dict`` gives).

        A persisted entry replaces the one in memory only when it is newer, so reloading after
        each flush keeps what was learned meanwhile. Tiers that are not configured automated
        tiers, and malformed entries, are ignored. Nothing loaded is marked dirty.
        """
        patterns = data.get("patterns") if data else None
        if not isinstance(patterns, dict):
            return
        entries = self._domains.setdefault(domain, OrderedDict())
        for pattern, raw in patterns.items():
            entry = _parse_entry(raw, self.ladder)
            if entry is None or not isinstance(pattern, str):
                continue
            old = entries.get(pattern)
            if old is not None and old.updated >= entry.updated:
                continue
            if old is not None and old.tier == entry.tier:
                entry.count = old.count
            entries[pattern] = entry
        ordered = sorted(entries.items(), key=lambda kv: kv[1].updated)[-self.max_patterns:]
        if ordered:
            self._domains[domain] = OrderedDict(ordered)
        else:
            del self._domains[domain]

    def plan(self, domain: str, pattern: str) -> Plan:
        """Where a new request for ``pattern`` on ``domain`` starts (counts it toward a re-check)."""
        entries = self._domains.get(domain)
        if not entries:
            return plan_of(self.ladder.first, None, False)
        entry = entries.get(pattern)
        if entry is None:
            floor = self.floor(domain)
            return plan_of(floor, floor, False)
        learned = entry.tier
        lower = self.ladder.lower(learned)
        if lower is not None and self._base_interval:
            entry.count += 1
            exponent = min(entry.recheck_failures, MAX_RECHECK_EXPONENT)
            if entry.count >= self._base_interval * 2**exponent:
                entry.count = 0
                return plan_of(lower, learned, True, True)
        return plan_of(learned, learned, False, True)

    def succeeded(self, domain: str, pattern: str, plan: Plan, tier: str) -> bool:
        """A request planned with ``plan`` got an ok response at ``tier``; True: a misprediction.

        ``tier`` is first mapped onto the configured automated tiers with ``Ladder.cap`` (a
        ``human`` success is learned as the top automated tier).
        """
        tier = self.ladder.cap(tier, None)
        entries = self._domains.setdefault(domain, OrderedDict())
        old = entries.get(pattern)
        if old is not None and old.tier == tier and not plan.recheck:
            # Confirmed, nothing to persist: the common case, once per ok response.
            entries.move_to_end(pattern)
            return plan.predicted is not None and tier != plan.predicted
        failures = old.recheck_failures if old is not None else 0
        if plan.recheck:
            mispredicted = tier == plan.tier
            failures = 0 if mispredicted else failures + 1
        else:
            mispredicted = plan.predicted is not None and tier != plan.predicted
            if old is None or old.tier != tier:
                failures = 0
        count = old.count if old is not None and old.tier == tier else 0
        entry = _Entry(tier, failures, self._clock(), count)
        entries[pattern] = entry
        entries.move_to_end(pattern)
        while len(entries) > self.max_patterns:
            entries.popitem(last=False)
        self._dirty.setdefault(domain, {})[pattern] = entry.as_dict()
        return mispredicted

    def floor(self, domain: str) -> str:
        """The lowest learned tier among the domain's patterns, else the ladder's first tier."""
        return lowest(e.tier for e in self._domains.get(domain, {}).values()) or self.ladder.first

    def learned(self, domain: str) -> dict[str, str]:
        """Pattern -> learned tier (for logs and tests)."""
        return {p: e.tier for p, e in self._domains.get(domain, {}).items()}

    def take_dirty(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Domain -> {pattern: entry} changed since the last call; then forgotten."""
        dirty, self._dirty = self._dirty, {}
        return dirty


def _parse_entry(raw: Any, ladder: Ladder) -> _Entry | None:
    if not isinstance(raw, dict) or raw.get("tier") not in ladder.automated:
        return None
    failures, updated = raw.get("recheck_failures", 0), raw.get("updated", 0)
    if isinstance(failures, bool) or not isinstance(failures, int):
        return None
    if isinstance(updated, bool) or not isinstance(updated, (int, float)):
        return None
    return _Entry(raw["tier"], max(failures, 0), float(updated))
