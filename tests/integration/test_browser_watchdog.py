"""The watchdog against the Playwright hang it exists for, in real Chromium.

A ``context.new_page()`` sent a few tens of milliseconds before the browser is killed is,
now and then, never answered by Playwright (1.65), though the browser reports itself
disconnected. In a crawl that was one request, and so the whole crawl, waiting forever.
Each round here sends the call, kills the browser under it, and needs the watched call
to end: with Playwright's own error when it answers, with BrowserGone when it does not.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from playwright._impl._errors import TargetClosedError

from scrapy_hitl.browser.config import find_chromium
from scrapy_hitl.browser.watchdog import BrowserGone, watch

pytestmark = pytest.mark.browser

ROUNDS = 6  # at these delays most rounds hang without the watchdog (2 to 11 of 12, measured)


def browser_processes(marker: str) -> set[psutil.Process]:
    """The browser launched with the argument ``marker`` (not its zygotes or renderers, which
    inherit no such argument) among this process's children: the one Playwright talks to
    over a pipe."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = child.cmdline()
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        if "--remote-debugging-pipe" in cmdline and not any(a.startswith("--type=") for a in cmdline):
            if marker in cmdline:
                found.add(child)
    return found


def run_script(script: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (with the system Chromium as ``%(executable)s``) in a process of its
    own, which scrapy-playwright needs for Scrapy's asyncio reactor; it must exit 0."""
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium")
    run = subprocess.run([sys.executable, "-c", script % {"executable": executable}],
                         capture_output=True, text=True, timeout=timeout, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_a_call_left_waiting_by_a_killed_browser_ends() -> None:
    from playwright.async_api import async_playwright

    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium")
    outcomes: list[str] = []

    async def main() -> None:
        async with async_playwright() as playwright:
            for n in range(ROUNDS):
                # This round's browser, told apart by an argument Chromium ignores: another
                # test's browser may start or stop in this worker meanwhile.
                marker = f"--hitl-watchdog-round={uuid.uuid4().hex}"
                browser = await playwright.chromium.launch(executable_path=executable, headless=True,
                                                           args=[marker])
                disconnected = asyncio.Event()
                browser.on("disconnected", lambda _: disconnected.set())
                context = await browser.new_context()
                await context.new_page()  # the browser is fully up
                (process,) = browser_processes(marker)
                call = context.new_page()
                watched = asyncio.ensure_future(watch(call, lambda: context.browser, grace=0.5,
                                                      timeout=None, url=f"round {n}"))
                await asyncio.sleep(0.04 + 0.01 * (n % 3))  # the window where Playwright loses the call
                process.kill()
                try:
                    await asyncio.wait_for(watched, 15)
                except TargetClosedError:
                    outcomes.append("playwright answered")
                except BrowserGone:
                    outcomes.append("watchdog")
                except asyncio.TimeoutError:
                    raise AssertionError(f"round {n}: the call never ended") from None
                else:
                    outcomes.append("page made before the kill")
                await asyncio.wait_for(disconnected.wait(), 15)  # it was this round's browser that died

    with ThreadPoolExecutor(1) as pool:  # a loop of its own: sync Playwright's may be running here
        pool.submit(lambda: asyncio.run(main())).result(timeout=300)
    assert len(outcomes) == ROUNDS, outcomes



# In a process of its own: scrapy-playwright needs Scrapy's asyncio reactor installed, and
# this worker's may be another. One site accepts connections and never answers; at the
# other's address nothing listens. Every page starts a context of its own.
FAILED_PAGES = """
import asyncio, socket, threading
from twisted.internet import asyncioreactor
asyncioreactor.install()
from scrapy import Request
from scrapy.utils.test import get_crawler
from scrapy_hitl.browser.pool import BrowserPool

silent = socket.create_server(("127.0.0.1", 0))
threading.Thread(target=lambda: [silent.accept() for _ in iter(int, 1)], daemon=True).start()
refused = socket.create_server(("127.0.0.1", 0))
port = refused.getsockname()[1]
refused.close()
urls = [f"http://127.0.0.1:{silent.getsockname()[1]}/", f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/again"]

async def main():
    pool = BrowserPool(get_crawler(settings_dict={"HITL_BROWSER_EXECUTABLE": %(executable)r,
                                                  "HITL_BROWSER_CONTEXT_PAGES": 1}))
    try:
        for url in urls:
            try:
                await pool.download(Request(url, meta={"download_timeout": 1}), "browser", "127.0.0.1")
            except Exception as exc:
                print(type(exc).__name__)
        browser = pool._handler.browser
        for _ in range(100):  # contexts close in the background
            if len(browser.contexts) <= 1:
                break
            await asyncio.sleep(0.1)
        print("open contexts:", len(browser.contexts))
    finally:
        await pool.close()

asyncio.run(main())
"""


def test_the_context_of_pages_that_all_failed_is_closed() -> None:
    # A context no page had come back from was never seen by the pool, so neither a
    # timeout's fresh context nor the recycling of contexts closed it: each stayed open
    # until the crawl ended. Only the context the next page would use may stay.
    run = run_script(FAILED_PAGES, timeout=120)
    *failures, contexts = run.stdout.splitlines()
    assert len(failures) == 3 and failures[0] == "DownloadTimeoutError", run.stderr[-3000:]
    assert contexts == "open contexts: 1"


# As above, in a process of its own. A page loads; the next one waits on a site that never
# answers when the browser is killed, and scrapy-playwright makes its context again in the
# relaunched browser, where it waits again, until its download_timeout.
RELAUNCHED_CONTEXT = """
import asyncio, http.server, socket, threading
import psutil
from twisted.internet import asyncioreactor
asyncioreactor.install()
from scrapy import Request
from scrapy.utils.test import get_crawler
from scrapy_hitl.browser.pool import BrowserPool

accepted = threading.Event()
silent = socket.create_server(("127.0.0.1", 0))
held = []
def hold():
    while True:
        held.append(silent.accept())
        accepted.set()
threading.Thread(target=hold, daemon=True).start()

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html><body>ok</body></html>")

    def log_message(self, *args):
        pass

site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
threading.Thread(target=site.serve_forever, daemon=True).start()

def browser_process():
    for child in psutil.Process().children(recursive=True):
        cmdline = child.cmdline()
        if "--remote-debugging-pipe" in cmdline and not any(a.startswith("--type=") for a in cmdline):
            return child

async def main():
    pool = BrowserPool(get_crawler(settings_dict={"HITL_BROWSER_EXECUTABLE": %(executable)r}))
    try:
        first = Request(f"http://127.0.0.1:{site.server_address[1]}/")
        await pool.download(first, "browser", "127.0.0.1")
        pool.close_page(first)
        waiting = asyncio.ensure_future(pool.download(
            Request(f"http://127.0.0.1:{silent.getsockname()[1]}/", meta={"download_timeout": 8}),
            "browser", "127.0.0.1"))
        await asyncio.to_thread(accepted.wait, 30)
        browser_process().kill()
        try:
            await waiting
        except Exception as exc:
            print(type(exc).__name__)
        browser = pool._handler.browser
        for _ in range(100):  # contexts close in the background
            if not browser.contexts:
                break
            await asyncio.sleep(0.1)
        print("browsers:", pool._handler.stats.get_value("playwright/browser_count"))
        print("open contexts:", len(browser.contexts))
    finally:
        await pool.close()

asyncio.run(main())
"""


def test_a_context_made_again_in_a_relaunched_browser_is_closed() -> None:
    # The pool had moved on to a new context when the crash closed the first; the one
    # scrapy-playwright made again, under the old name, was nobody's to close.
    run = run_script(RELAUNCHED_CONTEXT, timeout=120)
    *_, browsers, contexts = run.stdout.splitlines()
    assert browsers == "browsers: 2", run.stdout
    assert contexts == "open contexts: 0"


# As above, in a process of its own, with a Chromium that takes 5 s to start again (more
# than the watchdog's 3 s grace). The site never answers its first connection, and answers the next.
SLOW_RELAUNCH = """
import asyncio, os, socket, sys, tempfile, threading
import psutil
from twisted.internet import asyncioreactor
asyncioreactor.install()
from scrapy import Request
from scrapy.utils.test import get_crawler
from scrapy_hitl.browser.pool import BrowserPool

slow = os.path.join(tempfile.mkdtemp(), "chromium")
with open(slow, "w") as f:
    f.write(f'#!/bin/sh\\n[ -e {slow}.ran ] && sleep 5\\ntouch {slow}.ran\\nexec %(executable)s "$@"\\n')
os.chmod(slow, 0o755)

accepted = threading.Event()
site = socket.create_server(("127.0.0.1", 0))
held = []
def serve():
    held.append(site.accept()[0])
    accepted.set()
    while True:
        conn, _ = site.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\nContent-Length: 9\\r\\n"
                     b"Connection: close\\r\\n\\r\\n<p>ok</p>")
        conn.close()
threading.Thread(target=serve, daemon=True).start()

def browser_process():
    for child in psutil.Process().children(recursive=True):
        cmdline = child.cmdline()
        if "--remote-debugging-pipe" in cmdline and not any(a.startswith("--type=") for a in cmdline):
            return child

async def main():
    pool = BrowserPool(get_crawler(settings_dict={"HITL_BROWSER_EXECUTABLE": slow}))
    try:
        waiting = asyncio.ensure_future(pool.download(
            Request(f"http://127.0.0.1:{site.getsockname()[1]}/", meta={"download_timeout": 60}),
            "browser", "127.0.0.1"))
        await asyncio.to_thread(accepted.wait, 60)
        browser_process().kill()
        try:
            print("status", (await waiting).status)
        except Exception as exc:
            print(type(exc).__name__)
    finally:
        await pool.close()

asyncio.run(main())
"""


def test_a_request_retried_in_a_browser_still_launching_is_left_alone() -> None:
    # scrapy-playwright retries the request that was in flight in the browser it relaunches;
    # the watchdog counted the launch as time on the dead browser and failed the request.
    run = run_script(SLOW_RELAUNCH, timeout=180)
    assert run.stdout.splitlines()[-1] == "status 200", run.stderr[-3000:]
