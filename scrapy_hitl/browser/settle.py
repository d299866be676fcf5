"""Wait for a browser page to settle before it is judged.

scrapy-playwright reads a page's content right after its ``load`` event. Many pages only
fetch their data after that, with a script (``fetch()`` on load, a framework's hydration), so
the content read at ``load`` is an empty template: the block middleware would see the
spider's ``hitl_expect`` selector missing on a page that shows it a moment later. On a busy
machine that moment grows, which made such pages fail at random.

So a browser request that carries ``hitl_expect`` waits, after ``load``, until one of:

- the expected selector is in the page (the common case: the wait ends as soon as it is);
- the page's network has been idle for 500 ms (Playwright's ``networkidle``): nothing more
  is coming, e.g. a block page or a JavaScript shell that fetches nothing;
- ``HITL_BROWSER_SETTLE_TIMEOUT`` seconds have passed.

Then the page is read and judged as before; the wait never fails a request by itself.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

# parsel's pseudo-elements, which select text or attributes rather than elements: the
# browser waits for the element they apply to.
_PSEUDO_ELEMENTS = re.compile(r"::(?:text|attr\([^)]*\))")


def browser_selector(expect: str) -> str:
    """``hitl_expect`` (a parsel CSS selector) as a selector the browser understands."""
    return _PSEUDO_ELEMENTS.sub("", expect).strip()


async def settle(page: Any, selector: str, timeout: float) -> None:
    """Return once ``selector`` is attached, the network is idle, or ``timeout`` has passed."""
    timeout_ms = timeout * 1000
    waits = [
        asyncio.ensure_future(page.wait_for_selector(selector, state="attached", timeout=timeout_ms)),
        asyncio.ensure_future(page.wait_for_load_state("networkidle", timeout=timeout_ms)),
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()  # Playwright aborts a cancelled call in the browser too
        # Collect the outcomes (a timeout, an invalid selector, a closed page): the page is
        # judged as it is, and nothing is left to log "exception was never retrieved".
        await asyncio.gather(*waits, return_exceptions=True)


def add_settle(meta: dict[str, Any], expect: str | None, timeout: float) -> None:
    """Append the settle wait to the request's ``playwright_page_methods`` (once).

    It runs after the spider's own page methods, right before the content is read.
    """
    selector = browser_selector(expect) if expect else ""
    if not selector or timeout <= 0:
        return
    from scrapy_playwright.page import PageMethod  # here: a static crawl never imports it

    method = PageMethod(settle, selector, timeout)
    methods = meta.get("playwright_page_methods")
    if isinstance(methods, dict):
        methods["hitl_settle"] = method
        return
    kept = [m for m in methods or () if not (isinstance(m, PageMethod) and m.method is settle)]
    meta["playwright_page_methods"] = [*kept, method]
