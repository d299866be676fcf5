"""Stealth page loads on one domain are spaced by a random pause (HITL_STEALTH_DELAY), as a
person's would be; other domains, and a delay of 0, are not held. (The integration crawls
run with 0,0: their sandboxes are not watching the pace, and the pauses cost the suite.)"""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest
from scrapy.utils.test import get_crawler

from scrapy_hitl.browser import pool as pool_module
from scrapy_hitl.browser.pool import BrowserPool


def paced_sleeps(delay: str, domains: list[str], monkeypatch) -> tuple[list[float], int]:
    """The pauses ``_pace`` asks for on loads of ``domains`` in order (time frozen), and the
    crawl's ``hitl/stealth/paced`` count."""
    crawler = get_crawler(settings_dict={"HITL_STEALTH_DELAY": delay})
    pool = BrowserPool(crawler)
    monkeypatch.setattr(pool_module.time, "monotonic", lambda: 1000.0)
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(round(seconds, 6))

    async def main() -> None:
        monkeypatch.setattr(pool_module.asyncio, "sleep", sleep)
        for domain in domains:
            await pool._pace(domain)

    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        executor.submit(lambda: asyncio.run(main())).result(timeout=30)
    return asked, crawler.stats.get_value("hitl/stealth/paced", 0)


@pytest.mark.parametrize(("delay", "domains", "sleeps"), [
    ("2,2", ["a.test"], []),  # the first load of a domain starts at once
    ("2,2", ["a.test", "a.test", "a.test"], [2.0, 4.0]),  # each one after the one before it
    ("2,2", ["a.test", "b.test", "a.test", "b.test"], [2.0, 2.0]),  # per domain
    ("0,0", ["a.test", "a.test", "a.test"], []),  # no pacing
])
def test_stealth_loads_on_one_domain_are_spaced(delay, domains, sleeps, monkeypatch):
    asked, paced = paced_sleeps(delay, domains, monkeypatch)
    assert asked == sleeps and paced == len(sleeps)


def test_each_pause_is_drawn_within_the_range(monkeypatch):
    asked, _ = paced_sleeps("1,3", ["a.test"] * 40, monkeypatch)
    gaps = [later - earlier for earlier, later in zip([0.0, *asked], asked)]
    assert all(1.0 <= gap <= 3.0 for gap in gaps) and len(set(gaps)) > 1
