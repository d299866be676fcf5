"""Pause flags in Redis: which domains and spiders are paused, shared by every process.

A domain is paused while it has an open intervention; the flag mirrors the database so
crawlers can load it in one read and keep it in memory (the event stream keeps it fresh).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

    from scrapy_hitl.state import HitlState

DOMAINS = "hitl:paused:domains"
SPIDERS = "hitl:paused:spiders"


def _load(raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    return {
        (k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()
    }


def paused_domains(client: redis.Redis) -> dict[str, dict[str, Any]]:
    return _load(client.hgetall(DOMAINS))


def set_domain(client: redis.Redis, domain: str, intervention_ids: list[int]) -> None:
    if intervention_ids:
        client.hset(DOMAINS, domain, json.dumps({"interventions": intervention_ids, "since": time.time()}))
    else:
        client.hdel(DOMAINS, domain)


def paused_spiders(client: redis.Redis) -> dict[str, dict[str, Any]]:
    return _load(client.hgetall(SPIDERS))


def pause_spider(client: redis.Redis, spider: str, *, by: str = "", reason: str = "manual") -> bool:
    """True if the spider was not paused before."""
    value = json.dumps({"by": by, "reason": reason, "since": time.time()})
    return bool(client.hsetnx(SPIDERS, spider, value))


def unpause_spider(client: redis.Redis, spider: str) -> bool:
    return bool(client.hdel(SPIDERS, spider))


def set_spider_paused(state: HitlState, spider: str, paused: bool, *, by: str) -> bool:
    """Pause or unpause ``spider`` on every host, and tell the crawlers (``spider.paused`` /
    ``spider.resumed``, payload ``{"by"}``). The CLI and the console both call this.

    True if the flag changed; only then is the event emitted, so of two people pausing at
    once exactly one event goes out.
    """
    if paused:
        changed = pause_spider(state.redis, spider, by=by)
    else:
        changed = unpause_spider(state.redis, spider)
    if changed:
        state.events.emit("spider.paused" if paused else "spider.resumed", {"by": by}, spider=spider)
    return changed
