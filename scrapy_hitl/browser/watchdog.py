"""A bound on every browser-tier download, so that no request waits forever on a dead browser.

Playwright can leave a call unanswered when the browser dies under it: a
``context.new_page()`` sent just as the browser was killed never returns, and nothing
else fails it. scrapy-playwright relaunches the browser for the next page, so the crawl
goes on, but that one request never finishes, and neither does the crawl.

:func:`watch` runs the download as a task and looks at it every ``_POLL`` seconds:

- Once the browser the request was using has disconnected (the browser of its page, or
  of its context before the page exists) and the download is still pending ``grace``
  seconds later, the download is cancelled and fails with :class:`BrowserGone`. The
  escalation middleware retries that once, as it does any browser crash. A request that
  scrapy-playwright has meanwhile moved to a new browser is left alone.
- Past the request's ``download_timeout`` (Scrapy's ``DOWNLOAD_TIMEOUT``, 180 s by
  default), it is cancelled and fails with the timeout error a download by Scrapy's own
  HTTP handler raises, so ``RetryMiddleware`` retries it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

try:  # what RetryMiddleware retries: Scrapy's own since 2.14, Twisted's before
    from scrapy.exceptions import DownloadTimeoutError as DownloadTimeout
except ImportError:  # pragma: no cover - Scrapy 2.13
    from twisted.internet.error import TimeoutError as DownloadTimeout  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_POLL = 0.25  # seconds between looks at a pending download
_UNWIND = 5.0  # seconds a cancelled download gets to unwind before it is given up


RELAUNCHING = object()  # what ``browser_of`` returns while a new browser is being launched


class BrowserGone(Exception):
    """The browser died under a download, and Playwright left the download waiting."""


async def watch(download: Awaitable[Any], browser_of: Callable[[], Any], *, grace: float,
                timeout: float | None, url: str = "", started_in: Any = None,
                unseen_grace: float | None = None) -> Any:
    """Await ``download``, failing it once ``browser_of()``'s browser has been gone for
    ``grace`` seconds, or once ``timeout`` seconds have passed (None: no limit).

    ``browser_of`` returns the Playwright ``Browser`` the download is using right now, or
    None while that is not known (before its context exists, after a crash has cleared it),
    or :data:`RELAUNCHING` while a browser is being launched: the time that takes is not
    counted, as the download may be waiting for that browser.

    ``started_in`` is the browser the download starts in, counted until ``browser_of`` sees
    one: a crash within the first look's ``_POLL`` can clear the download's context before
    it was ever seen, and the download then waited out the whole ``timeout`` (180 s). Gone
    from it alone, a download gets ``unseen_grace`` (5 x ``grace``): after a relaunch the
    contexts of the requests in flight are made again one at a time, and one far back in
    that queue shows no browser of its own for a while, though nothing is wrong with it.
    """
    task = asyncio.ensure_future(download)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None
    browser: Any = started_in  # the last browser the download was seen using
    own = False  # browser_of has seen one: the download's own, not only the one it started in
    unseen_grace = 5 * grace if unseen_grace is None else unseen_grace
    gone_since: float | None = None
    try:
        while True:
            done, _ = await asyncio.wait((task,), timeout=_POLL)
            if done:
                return task.result()
            now = loop.time()
            seen = browser_of()
            own = own or (seen is not None and seen is not RELAUNCHING)
            if seen is RELAUNCHING:
                gone_since = None
            elif (browser := seen or browser) is not None and not browser.is_connected():
                gone_since = gone_since if gone_since is not None else now
                if now - gone_since >= (waited := grace if own else unseen_grace):
                    await _cancel(task)
                    raise BrowserGone(f"The browser disconnected under {url or 'a request'}, "
                                      f"and the download was still waiting {waited:g} s later")
            else:
                gone_since = None
            if deadline is not None and now >= deadline:
                await _cancel(task)
                raise DownloadTimeout(f"Getting {url} took longer than {timeout:g} seconds.")
    finally:
        if not task.done():  # the watch itself was cancelled (Scrapy dropped the request):
            task.cancel()  # the download goes with it, as it would if awaited directly


async def _cancel(task: asyncio.Future[Any]) -> None:
    task.cancel()
    await asyncio.wait((task,), timeout=_UNWIND)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: nothing logs "exception was never retrieved"
