"""read_settled: the held page is read once a navigation in flight has settled, and any
other failure is raised at once (a reviewer presses Continue as the solved page loads)."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from scrapy_hitl.live.screencast import evaluate_settled, read_settled

NAVIGATING = RuntimeError("Page.content: Unable to retrieve content because the page is navigating "
                          "and changing the content.")
DESTROYED = RuntimeError("Execution context was destroyed, most likely because of a navigation")
CLOSED = RuntimeError("Target page, context or browser has been closed")


class ScriptedPage:
    """Answers page.content() from a script of outcomes (HTML, or an exception to raise)."""

    def __init__(self, outcomes):
        self.outcomes, self.reads, self.waits = list(outcomes), 0, 0
        self.url = "http://protected.sandbox.test/solved"

    async def content(self):
        self.reads += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def evaluate(self, expression):
        return "UA " + await self.content()

    async def wait_for_load_state(self, state, timeout):
        self.waits += 1


def run(coro_factory):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own loop, whatever ran before
        return pool.submit(lambda: asyncio.run(coro_factory())).result(timeout=30)


@pytest.mark.parametrize(("outcomes", "reads"), [
    (["<p>solved</p>"], 1),
    ([NAVIGATING, "<p>solved</p>"], 2),
    ([NAVIGATING, DESTROYED, NAVIGATING, "<p>solved</p>"], 4),
])
def test_a_navigation_in_flight_is_waited_out(outcomes, reads):
    page = ScriptedPage(outcomes)
    assert run(lambda: read_settled(page)) == ("<p>solved</p>", page.url)
    assert page.reads == reads and page.waits == reads - 1


@pytest.mark.parametrize("error", [CLOSED, ValueError("anything else")])
def test_any_other_failure_is_raised_at_once(error):
    page = ScriptedPage([error, "<p>never read</p>"])
    with pytest.raises(type(error)):
        run(lambda: read_settled(page))
    assert page.reads == 1


def test_a_page_that_keeps_navigating_fails_after_the_timeout():
    page = ScriptedPage([NAVIGATING] * 1000)
    with pytest.raises(RuntimeError, match="navigating"):
        run(lambda: read_settled(page, timeout=0.3))
    assert 2 <= page.reads < 1000


def test_a_script_run_as_the_page_redirects_once_more_is_run_again():
    page = ScriptedPage([DESTROYED, "Chromium"])
    assert run(lambda: evaluate_settled(page, "() => navigator.userAgent")) == "UA Chromium"
    assert page.reads == 2
