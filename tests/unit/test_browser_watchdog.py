"""The browser watchdog's decisions, with stand-in browsers whose connection the test
flips (the real Playwright hang it guards against runs in
tests/integration/test_browser_watchdog.py)."""

from __future__ import annotations

import asyncio
from functools import partial
from concurrent.futures import ThreadPoolExecutor

import pytest

from scrapy_hitl.browser import watchdog
from scrapy_hitl.browser.watchdog import RELAUNCHING, BrowserGone, DownloadTimeout, watch


class Browser:
    def __init__(self, connected: bool = True) -> None:
        self.connected = connected

    def is_connected(self) -> bool:
        return self.connected


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(watchdog, "_POLL", 0.01)


def run(download, browser_of, **kwargs):
    """Watch ``download()`` in a loop of its own thread (a test before may have left sync
    Playwright's loop running in this one)."""
    kwargs = {"grace": 0.05, "timeout": None, "url": "https://example.test/p", **kwargs}

    async def main():
        return await watch(download(), browser_of, **kwargs)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result(timeout=30)


async def never():
    await asyncio.Event().wait()


async def never_till_cancelled(cancelled: asyncio.Event):
    """A download that never ends, and says when it is cancelled."""
    try:
        await never()
    finally:
        cancelled.set()


def test_a_finished_download_is_returned() -> None:
    async def download():
        await asyncio.sleep(0.03)
        return "response"

    assert run(download, lambda: Browser()) == "response"


def test_a_failed_download_fails_with_its_own_error() -> None:
    async def download():
        raise ValueError("navigation failed")

    with pytest.raises(ValueError, match="navigation failed"):
        run(download, lambda: Browser())


@pytest.mark.parametrize(
    ("case", "browsers"),
    [
        ("its browser is gone", [Browser(connected=False)]),
        # the crash cleared the context (browser_of says None): the last browser seen counts
        ("gone, then unknown", [Browser(connected=False), None]),
        ("connected, then gone", [Browser(), Browser(connected=False)]),
    ],
)
def test_a_download_left_waiting_on_a_dead_browser_fails_as_a_crash(case, browsers) -> None:
    seen = iter(browsers)
    last = browsers[-1]
    cancelled = asyncio.Event()

    download = partial(never_till_cancelled, cancelled)

    with pytest.raises(BrowserGone, match="example.test/p"):
        run(download, lambda: next(seen, last))
    assert cancelled.is_set()


@pytest.mark.parametrize(
    "then",
    [
        Browser(),  # scrapy-playwright moved the request to a relaunched browser
        # ... or retries it in the browser it is still launching: no page, no context, and
        # the last browser seen is dead, for as long as the launch takes (not counted)
        RELAUNCHING,
    ],
    ids=["moved to a new browser", "waiting for a launch"],
)
def test_a_download_that_left_its_dead_browser_within_the_grace_is_left_alone(then) -> None:
    dead = Browser(connected=False)
    calls = 0

    def browser_of():
        nonlocal calls
        calls += 1
        return dead if calls <= 2 else then

    async def download():
        await asyncio.sleep(0.4)  # longer than the grace
        return "response"

    assert run(download, browser_of, grace=0.1) == "response"


@pytest.mark.parametrize("then", [None, RELAUNCHING], ids=["never seen", "a launch, then never seen"])
def test_a_download_whose_browser_died_before_the_first_look_fails_as_a_crash(then) -> None:
    # Its context was made and cleared by the crash within the first poll: browser_of never
    # sees a browser, and the browser it started in is the one that counts.
    seen = iter([then])
    with pytest.raises(BrowserGone):
        run(never, lambda: next(seen, None), started_in=Browser(connected=False), timeout=5)


def test_a_download_that_started_in_a_dead_browser_and_moved_on_is_left_alone() -> None:
    # scrapy-playwright relaunched and retried it in a new browser, within the grace.
    seen = iter([None, RELAUNCHING, Browser()])

    async def download():
        await asyncio.sleep(0.4)  # longer than the grace
        return "response"

    assert run(download, lambda: next(seen, Browser()), started_in=Browser(connected=False), grace=0.1) == "response"


def test_gone_only_from_the_browser_it_started_in_a_download_gets_the_longer_grace() -> None:
    # After a relaunch its context waits its turn to be made again: no browser of its own
    # shows for longer than the grace (0.05 s), and it is still left alone within 5 x that...
    async def download():
        await asyncio.sleep(0.15)
        return "response"

    assert run(download, lambda: None, started_in=Browser(connected=False)) == "response"
    # ... but not once a browser of its own was seen gone.
    seen = iter([Browser(connected=False)])
    with pytest.raises(BrowserGone, match="still waiting 0.05 s later"):
        run(download, lambda: next(seen, None), started_in=Browser(connected=False))


def test_a_dead_browser_counts_again_once_another_launch_is_over() -> None:
    # Another request's launch only holds the count: a call left waiting on the dead
    # browser still fails once the launch is over.
    seen = iter([Browser(connected=False), RELAUNCHING, RELAUNCHING, RELAUNCHING])

    with pytest.raises(BrowserGone):
        run(never, lambda: next(seen, None))


@pytest.mark.parametrize("browser", [None, Browser()])
def test_a_download_past_its_timeout_fails_as_scrapy_s_own_would(browser) -> None:
    with pytest.raises(DownloadTimeout, match=r"took longer than 0\.1 seconds"):
        run(never, lambda: browser, timeout=0.1)


def test_no_timeout_and_no_browser_only_waits() -> None:
    async def download():
        await asyncio.sleep(0.2)
        return "late"

    assert run(download, lambda: None, timeout=None) == "late"


def test_the_timeout_is_an_error_scrapy_s_retry_middleware_retries() -> None:
    from scrapy.settings.default_settings import RETRY_EXCEPTIONS
    from scrapy.utils.misc import load_object

    retried = tuple(load_object(e) if isinstance(e, str) else e for e in RETRY_EXCEPTIONS)
    assert isinstance(DownloadTimeout("took longer"), retried)


def test_cancelling_the_watch_cancels_the_download() -> None:
    # As awaiting the download itself would: Scrapy cancelling the request must not leave
    # the download running unwatched (its page would open after the pool gave its slot back).
    cancelled = asyncio.Event()

    download = partial(never_till_cancelled, cancelled)

    async def main():
        watcher = asyncio.ensure_future(watch(download(), lambda: Browser(), grace=0.05, timeout=None))
        await asyncio.sleep(0.05)
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
        await asyncio.sleep(0.05)
        return cancelled.is_set()

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: asyncio.run(main())).result(timeout=30)
