"""Run monitors: at spider close, judge the run against the spider's earlier runs. Pure.

Spidermon alerts after the fact; here a run that looks wrong opens a ``run_anomaly``
intervention with the evidence, so a human looks before its data is used. Each monitor is a
small function of the run's stats and the spider's previous completed runs (newest first)
that returns a :class:`Finding`: ``ok``, ``alert`` or ``skipped`` (not enough to judge), in
plain words with the figures it used.

| monitor | alerts when |
|---|---|
| ``domain_without_items`` | a domain that yielded items in the previous completed run yielded none |
| ``item_count_drop`` | items < ``share`` (0.5) of the median of the last ``runs`` (5) completed runs |
| ``error_rate`` | (network errors + 5xx responses) / requests > ``max_rate`` (0.2), from ``min_requests`` (20) |
| ``block_rate`` | responses refused at their last tier / responses > ``max_rate`` (0.2), from ``min_requests`` (20) |
| ``finish_reason`` | the finish reason is not in ``allowed`` (``finished``, ``hitl_paused``; ``x_*`` ends in a wildcard) |

A run closed ``hitl_paused`` waits for a human already, and its parked pages are fetched by
a later run: the count monitors skip it. ``HITL_MONITORS`` (read once, when the crawl starts)
changes options or turns monitors off; a malformed entry stops the crawl with a
:class:`MonitorConfigError` naming the setting and the valid values.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_hitl import defaults
from scrapy_hitl.quality.consistency import median as median_of

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from scrapy.settings import BaseSettings

OK, ALERT, SKIPPED = "ok", "alert", "skipped"
ITEMS = "hitl/items"  # items the spider's callbacks yielded (before the pipelines)
DOMAIN_ITEMS = "hitl/items/domain/"  # + domain: the same, per domain of the page they came from
PAUSED = "hitl_paused"


class ItemCounts:
    """Items per domain of one run, counted by the item source middleware once per page in a
    plain dict (a stats collector call costs a few microseconds, on every page), and written
    into the stats when the spider closes, where the monitors and the run record read them."""

    __slots__ = ("by_domain", "total")

    def __init__(self) -> None:
        self.total = 0
        self.by_domain: dict[str, int] = {}

    @classmethod
    def of(cls, crawler: Any) -> ItemCounts:
        found = getattr(crawler, "_hitl_item_counts", None)
        if found is None:
            found = crawler._hitl_item_counts = cls()
        return found

    @staticmethod
    def found(crawler: Any) -> ItemCounts | None:
        """The crawler's counts, or None when nothing counted them (quality gate off)."""
        return getattr(crawler, "_hitl_item_counts", None)

    def add(self, domain: str, count: int) -> None:
        self.total += count
        by_domain = self.by_domain
        by_domain[domain] = by_domain.get(domain, 0) + count

    def write(self, stats: Any) -> None:
        """``hitl/items`` (even at 0: the monitors then know the run counted) and
        ``hitl/items/domain/<domain>``."""
        stats.set_value(ITEMS, self.total)
        for domain, count in self.by_domain.items():
            stats.set_value(DOMAIN_ITEMS + domain, count)


class MonitorConfigError(ValueError):
    """``HITL_MONITORS`` is malformed. Raised when the crawl starts, so it does not run; the
    message names the entry and the valid values."""


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the monitors read of one run: its stats (as stored) and finish reason."""

    stats: Mapping[str, Any]
    finish_reason: str = ""
    run_id: str = ""

    @property
    def items(self) -> int:
        """Items yielded; without the item source middleware's count (HITL_QUALITY_ENABLED off,
        or a run recorded before it counted), Scrapy's scraped + dropped items."""
        stats = self.stats
        if ITEMS in stats:
            return _int(stats[ITEMS])
        return _int(stats.get("item_scraped_count")) + _int(stats.get("item_dropped_count"))

    def domain_items(self) -> dict[str, int] | None:
        """Items per domain, or None when the run did not count them."""
        found = {k[len(DOMAIN_ITEMS):]: _int(v) for k, v in self.stats.items() if k.startswith(DOMAIN_ITEMS)}
        if found or ITEMS in self.stats:
            return found
        return None


@dataclass(frozen=True, slots=True)
class Finding:
    monitor: str
    status: str  # OK, ALERT or SKIPPED
    message: str  # plain words, for the console and the log
    values: dict[str, Any] = field(default_factory=dict)  # the figures it judged from

    def to_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "status": self.status, "message": self.message, "values": self.values}


# --- the monitors ---------------------------------------------------------------------------------
def domain_without_items(run: RunFacts, history: Sequence[RunFacts]) -> Finding:
    name = "domain_without_items"
    if run.finish_reason == PAUSED:
        return Finding(name, SKIPPED, "The run is waiting for a human; a later run fetches its parked pages.")
    if not history:
        return Finding(name, SKIPPED, "No earlier completed run to compare with.")
    before = history[0].domain_items()
    if not before:
        return Finding(name, SKIPPED, "The previous completed run recorded no items per domain.")
    now = run.domain_items()
    if now is None:
        if run.items:
            return Finding(name, SKIPPED, "This run did not count items per domain (HITL_QUALITY_ENABLED is off).")
        now = {}
    silent = sorted((d for d, n in before.items() if n > 0 and not now.get(d)), key=lambda d: (-before[d], d))
    values = {"previous_run": history[0].run_id, "domains": silent,
              "previous_items": {d: before[d] for d in silent}}
    if not silent:
        return Finding(name, OK, f"Every domain of the previous completed run yielded items "
                                 f"({_n(len([d for d, n in before.items() if n > 0]))}).", values)
    shown = ", ".join(f"{d} ({_n(before[d])} before)" for d in silent[:5])
    more = f" and {_n(len(silent) - 5)} more" if len(silent) > 5 else ""
    what = "1 domain" if len(silent) == 1 else f"{_n(len(silent))} domains"
    return Finding(name, ALERT, f"No items from {what} that yielded items in the previous completed run: "
                                f"{shown}{more}.", values)


def item_count_drop(run: RunFacts, history: Sequence[RunFacts], *, share: float, runs: int) -> Finding:
    name = "item_count_drop"
    if run.finish_reason == PAUSED:
        return Finding(name, SKIPPED, "The run is waiting for a human; a later run fetches its parked pages.")
    counts = [h.items for h in history[:runs]]
    if not counts:
        return Finding(name, SKIPPED, "No earlier completed run to compare with.")
    median = median_of(counts)
    floor = share * median
    values = {"items": run.items, "median": median, "floor": floor, "share": share, "runs": len(counts),
              "history": counts}
    where = f"the median of the last {_n(len(counts))} completed run{'s' if len(counts) > 1 else ''}"
    if run.items < floor:
        return Finding(name, ALERT, f"{_n(run.items)} items, under {share:.0%} of {where} ({_n(median)}).", values)
    return Finding(name, OK, f"{_n(run.items)} items; {where} is {_n(median)} (floor {_n(floor)}).", values)


def error_rate(run: RunFacts, history: Sequence[RunFacts], *, max_rate: float, min_requests: int) -> Finding:
    name = "error_rate"
    stats = run.stats
    requests = _int(stats.get("downloader/request_count"))
    server = sum(_int(v) for k, v in stats.items()
                 if k.startswith("downloader/response_status_count/5"))
    errors = _int(stats.get("downloader/exception_count")) + server
    return _rate(name, errors, requests, limit=max_rate, least=min_requests, counted="requests",
                 what="failed (a network error or a 5xx response)")


def block_rate(run: RunFacts, history: Sequence[RunFacts], *, max_rate: float, min_requests: int) -> Finding:
    """Responses the classifier refused (``hitl/blocks/<reason>``) less those that climbed a
    tier (``hitl/escalations/<from>/<to>``): a page fetched again one tier up is no block."""
    name = "block_rate"
    stats = run.stats
    refused = sum(_int(v) for k, v in stats.items()
                  if k.startswith("hitl/blocks/") and k.count("/") == 2 and k != "hitl/blocks/not_paused")
    climbed = sum(_int(v) for k, v in stats.items() if k.startswith("hitl/escalations/"))
    responses = _int(stats.get("downloader/response_count"))
    return _rate(name, max(0, refused - climbed), responses, limit=max_rate, least=min_requests, counted="responses",
                 what="were refused by the site (blocked, rate-limited, challenged)")


def finish_reason(run: RunFacts, history: Sequence[RunFacts], *, allowed: Sequence[str]) -> Finding:
    name = "finish_reason"
    reason = run.finish_reason or "(none)"
    values = {"finish_reason": run.finish_reason, "allowed": list(allowed)}
    if any(reason == a or (a.endswith("*") and reason.startswith(a[:-1])) for a in allowed):
        return Finding(name, OK, f"Finished with {reason!r}.", values)
    return Finding(name, ALERT, f"The run ended with {reason!r}, not {_or(allowed)}: it may have stopped early.",
                   values)



def _rate(name: str, bad: int, total: int, *, limit: float, least: int, counted: str, what: str) -> Finding:
    values = {"count": bad, counted: total, "max_rate": limit, "min_requests": least}
    if total < least or total == 0:
        return Finding(name, SKIPPED, f"Only {_n(total)} {counted}; judged from {_n(max(least, 1))}.", values)
    rate = bad / total
    values["rate"] = round(rate, 4)
    said = f"{_n(bad)} of {_n(total)} {counted} ({rate:.0%}) {what}"
    if rate > limit:
        return Finding(name, ALERT, f"{said}, above the {limit:.0%} allowed.", values)
    return Finding(name, OK, f"{said}; up to {limit:.0%} allowed.", values)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _or(values: Sequence[str]) -> str:
    shown = [repr(v) for v in values]
    return " or ".join(shown) if len(shown) < 3 else ", ".join(shown[:-1]) + " or " + shown[-1]


# --- options ------------------------------------------------------------------------------------
def _share(name: str, value: Any) -> float:
    number = _number(name, value)
    if not 0 < number <= 1:
        raise MonitorConfigError(f"{name} must be a share in (0, 1], such as 0.5; got {value!r}")
    return number


def _rate_option(name: str, value: Any) -> float:
    number = _number(name, value)
    if not 0 <= number <= 1:
        raise MonitorConfigError(f"{name} must be a rate in [0, 1], such as 0.2; got {value!r}")
    return number


def _count(least: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit() \
                or int(value) < least:
            raise MonitorConfigError(f"{name} must be a whole number of at least {least}; got {value!r}")
        return int(value)

    return check


def _reasons(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise MonitorConfigError(f"{name} must be a non-empty list of finish reasons, such as "
                                 f'["finished", "hitl_paused"]; got {value!r}')
    return tuple(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise MonitorConfigError(f"{name} must be a number; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MonitorConfigError(f"{name} must be a number; got {value!r}") from None
    if math.isnan(number):
        raise MonitorConfigError(f"{name} must be a number; got {value!r}")
    return number


# name -> (function, option -> check); the defaults are in defaults.HITL_MONITORS
MONITORS: dict[str, tuple[Callable[..., Finding], dict[str, Callable[[str, Any], Any]]]] = {
    "domain_without_items": (domain_without_items, {}),
    "item_count_drop": (item_count_drop, {"share": _share, "runs": _count(1)}),
    "error_rate": (error_rate, {"max_rate": _rate_option, "min_requests": _count(0)}),
    "block_rate": (block_rate, {"max_rate": _rate_option, "min_requests": _count(0)}),
    "finish_reason": (finish_reason, {"allowed": _reasons}),
}


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    enabled: bool
    monitors: dict[str, dict[str, Any]]  # name -> options, in MONITORS order; only the ones on

    @property
    def history_runs(self) -> int:
        """How many earlier completed runs the monitors read (the one query at close)."""
        return max([1, *(o.get("runs", 1) for o in self.monitors.values())])

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> MonitorSettings:
        enabled = settings.getbool("HITL_MONITORS_ENABLED", defaults.HITL_MONITORS_ENABLED)
        return cls(enabled=enabled, monitors=parse(settings.get("HITL_MONITORS")) if enabled else {})


def parse(raw: Any) -> dict[str, dict[str, Any]]:
    """``HITL_MONITORS`` over the defaults: an entry's options replace the default ones they
    name; ``None`` or ``False`` turns a monitor off. A JSON string works (``-s``)."""
    if raw is None or raw == "":
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise MonitorConfigError(f"HITL_MONITORS is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MonitorConfigError(f"HITL_MONITORS must be a dict: monitor name -> options (or None to turn it "
                                 f"off); the monitors are {', '.join(MONITORS)}; got {raw!r}")
    merged: dict[str, Any] = {k: dict(v) for k, v in defaults.HITL_MONITORS.items()}
    for name, options in dict(raw).items():
        if name not in MONITORS:
            raise MonitorConfigError(f"HITL_MONITORS has an unknown monitor {name!r}; the monitors are "
                                     f"{', '.join(MONITORS)}")
        if options is None or options is False:
            merged[name] = None
            continue
        if options is True:
            options = {}
        if not isinstance(options, dict):
            raise MonitorConfigError(f"HITL_MONITORS[{name!r}] must be a dict of options (or None to turn it "
                                     f"off); got {options!r}")
        merged[name] = {**(merged.get(name) or defaults.HITL_MONITORS.get(name, {})), **options}
    out: dict[str, dict[str, Any]] = {}
    for name, (_fn, checks) in MONITORS.items():
        options = merged.get(name)
        if options is None:
            continue
        unknown = sorted(set(options) - set(checks))
        if unknown:
            valid = ", ".join(checks) if checks else "none"
            raise MonitorConfigError(f"HITL_MONITORS[{name!r}] has unknown options {unknown}; its options "
                                     f"are: {valid}")
        out[name] = {k: checks[k](f"HITL_MONITORS[{name!r}][{k!r}]", v) for k, v in options.items()}
    return out


# --- running them ---------------------------------------------------------------------------------
def run_monitors(config: MonitorSettings, run: RunFacts, history: Sequence[RunFacts]) -> list[Finding]:
    """Every monitor that is on, in MONITORS order."""
    return [MONITORS[name][0](run, history, **options) for name, options in config.monitors.items()]


def anomaly(findings: Sequence[Finding], run: RunFacts, history: Sequence[RunFacts], *,
            spider: str, fallback_domain: str) -> dict[str, Any] | None:
    """The ``run_anomaly`` intervention to open (``domain``, ``reason``, ``evidence``), or None
    when no monitor alerted. One per run: its domain is the first domain that yielded no items,
    else the domain that yielded most (this run, else the previous one), else
    ``fallback_domain``; its reason is the first alerting monitor."""
    alerts = [f for f in findings if f.status == ALERT]
    if not alerts:
        return None
    domain = ""
    for f in alerts:
        if f.monitor == "domain_without_items" and f.values.get("domains"):
            domain = f.values["domains"][0]
    if not domain:
        for counts in (run.domain_items(), history[0].domain_items() if history else None):
            if counts:
                domain = min(counts, key=lambda d: (-counts[d], d))
                break
    evidence = {
        "run_id": run.run_id, "spider": spider, "finish_reason": run.finish_reason, "items": run.items,
        "alerts": [f.to_dict() for f in alerts], "monitors": [f.to_dict() for f in findings],
        "history": [{"run_id": h.run_id, "items": h.items} for h in history],
    }
    return {"domain": domain or fallback_domain, "reason": alerts[0].monitor, "evidence": evidence}
