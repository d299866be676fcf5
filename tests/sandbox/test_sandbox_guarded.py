"""The guarded section: no data in the HTML, a data endpoint behind a cookie and a header, and a
client-side automation check that a plain headless Chromium fails and a masked one passes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
from parsel import Selector

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sandbox import SandboxServer

pytestmark = pytest.mark.filterwarnings("error")

PAGES = 5  # sandbox default
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TIMEOUT_MS = 30_000  # a hang guard, not a timing assertion
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
# Masks every marker the guard script checks; each test context may leave one out.
MASKS = {
    "webdriver": "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => undefined});",
    "plugins": (
        "Object.defineProperty(Navigator.prototype, 'plugins', {get: () => "
        "[{name: 'PDF Viewer'}, {name: 'Chrome PDF Viewer'}, {name: 'Chromium PDF Viewer'}]});"
    ),
    "chrome": "window.chrome = {runtime: {}};",
}
# Force the marker on, whatever this Chromium build does by default (new headless has plugins
# and window.chrome; --disable-blink-features=AutomationControlled clears navigator.webdriver).
UNMASKED = {
    "webdriver": ("Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => true});",),
    "plugins": ("Object.defineProperty(Navigator.prototype, 'plugins', {get: () => []});",),
    "chrome": ("delete window.chrome;",),
}
MARKER_NAMES = {  # as the guard script reports them in div#bot-detected[data-markers]
    "webdriver": "navigator.webdriver",
    "user_agent": "HeadlessChrome user agent",
    "plugins": "no plugins",
    "chrome": "no window.chrome",
}


def get(url: str, *, headers: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """(status, content type, body) without raising on 4xx."""
    request = urllib.request.Request(url, headers={"User-Agent": "sandbox-tests/1.0", **(headers or {})})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


def guard_token(sandbox: SandboxServer, path: str = "/guarded/page/1") -> str:
    status, _, html = get(sandbox.url + path)
    assert status == 200
    return json.loads(Selector(text=html).css("script#guard-config::text").get())["token"]


# -- plain HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "data_url"), [("/guarded/page/2", "/guarded/data/2"),
                                                ("/guarded/detail/7", "/guarded/data/detail/7")])
def test_guarded_page_holds_no_data(sandbox: SandboxServer, path: str, data_url: str) -> None:
    status, content_type, html = get(sandbox.url + path)
    assert status == 200 and content_type.startswith("text/html")
    sel = Selector(text=html)
    assert not sel.css("div.quote, h1.title") and 'class="quote"' not in html
    assert "“" not in html  # no quote text at all
    assert sel.css("div#app").get() == '<div id="app"></div>'
    assert sel.css("noscript::text").get() == "Please enable JavaScript to view this page."
    config = json.loads(sel.css("script#guard-config::text").get())
    assert config["data"] == data_url
    script = sel.css("script:not([type])::text").get()
    for marker in ("navigator.webdriver", "HeadlessChrome", "navigator.plugins", "window.chrome", "X-Guard"):
        assert marker in script
    assert sandbox.hits(prefix="/guarded/data") == {"__total__": 0}


def test_guarded_pages_carry_fresh_tokens(sandbox: SandboxServer) -> None:
    assert guard_token(sandbox) != guard_token(sandbox)


@pytest.mark.parametrize(
    ("cookie", "headers", "reason"),
    [
        (None, {}, "cookie"),
        (None, {"X-Guard": "1"}, "cookie"),
        ("valid", {}, "X-Guard"),
        ("valid", {"X-Guard": "0"}, "X-Guard"),
        ("forged", {"X-Guard": "1"}, "cookie"),
        ("tampered", {"X-Guard": "1"}, "cookie"),
    ],
)
def test_data_endpoint_refuses_without_cookie_and_header(
    sandbox: SandboxServer, cookie: str | None, headers: dict[str, str], reason: str
) -> None:
    token = guard_token(sandbox)
    values = {"valid": token, "forged": "0123.abcdef", "tampered": token[:-1] + ("0" if token[-1] != "0" else "1")}
    if cookie is not None:
        headers = {**headers, "Cookie": f"guard_ok={values[cookie]}"}
    status, content_type, body = get(sandbox.url + "/guarded/data/1", headers=headers)
    assert status == 403 and content_type == "application/json"
    answer = json.loads(body)
    assert answer["error"] == "forbidden" and reason in answer["reason"]
    assert "quotes" not in answer


def test_data_endpoint_with_cookie_and_header(sandbox: SandboxServer) -> None:
    headers = {"Cookie": f"guard_ok={guard_token(sandbox)}", "X-Guard": "1"}
    status, content_type, body = get(sandbox.url + "/guarded/data/1", headers=headers)
    assert status == 200 and content_type == "application/json"
    data = json.loads(body)
    quotes_page = Selector(text=get(sandbox.url + "/quotes/page/1")[2])
    assert [q["text"] for q in data["quotes"]] == quotes_page.css("div.quote span.text::text").getall()
    assert [q["id"] for q in data["quotes"]] == list(range(1, 11))
    assert (data["previous"], data["next"]) == (None, "/guarded/page/2")
    last = json.loads(get(sandbox.url + f"/guarded/data/{PAGES}", headers=headers)[2])
    assert (last["previous"], last["next"]) == (f"/guarded/page/{PAGES - 1}", None)
    detail = json.loads(get(sandbox.url + "/guarded/data/detail/7", headers=headers)[2])
    assert detail["quote"]["id"] == 7 and detail["quote"]["born"]


@pytest.mark.parametrize("path", ["/guarded/page/0", f"/guarded/page/{PAGES + 1}", "/guarded/detail/999",
                                  f"/guarded/data/{PAGES + 1}", "/guarded/data/x", "/guarded/data/detail/0"])
def test_guarded_out_of_range_is_404(sandbox: SandboxServer, path: str) -> None:
    assert get(sandbox.url + path)[0] == 404


def test_guarded_section_is_listed_on_the_index(sandbox: SandboxServer) -> None:
    assert "/guarded/page/1" in Selector(text=get(sandbox.url + "/")[2]).css("a::attr(href)").getall()


def test_guarded_host_routes_like_the_others(sandbox: SandboxServer) -> None:
    status, _, html = get(sandbox.url + "/guarded/page/1", headers={"Host": "guarded.sandbox.test"})
    assert status == 200 and "guard-config" in html


# -- a real browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_browser(playwright):
    browser = playwright.chromium.launch(executable_path=playwright.executable, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def stealth_browser(playwright):
    browser = playwright.chromium.launch(
        executable_path=playwright.executable, headless=True, args=["--disable-blink-features=AutomationControlled"]
    )
    yield browser
    browser.close()


def open_guarded(browser, url: str, *, user_agent: str | None = None, scripts: tuple[str, ...] = ()):
    """Load ``url`` in a fresh context with init ``scripts``; return (title, rendered HTML, cookies)
    once the guard script has finished (``html[data-guard]``)."""
    context = browser.new_context(user_agent=user_agent) if user_agent else browser.new_context()
    try:
        for script in scripts:
            context.add_init_script(script)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_selector("html[data-guard]", state="attached")
        assert errors == []
        return page.title(), page.content(), {c["name"]: c["value"] for c in context.cookies()}
    finally:
        context.close()


@pytest.mark.browser
def test_plain_headless_chromium_is_detected(sandbox: SandboxServer, plain_browser) -> None:
    title, html, cookies = open_guarded(plain_browser, sandbox.url + "/guarded/page/1")
    sel = Selector(text=html)
    assert title == "Access denied"
    assert sel.css("div#bot-detected h1::text").get() == "Access denied"
    assert "Access denied: automated browser detected" in sel.css("div#bot-detected").get()
    assert "navigator.webdriver" in sel.css("div#bot-detected::attr(data-markers)").get()
    assert not sel.css("div.quote")
    assert "guard_ok" not in cookies
    assert sandbox.hits(prefix="/guarded/data") == {"__total__": 0}


@pytest.mark.browser
def test_masked_chromium_sees_the_quotes(sandbox: SandboxServer, stealth_browser) -> None:
    title, html, cookies = open_guarded(
        stealth_browser, sandbox.url + "/guarded/page/2", user_agent=DESKTOP_UA, scripts=tuple(MASKS.values())
    )
    sel = Selector(text=html)
    assert title == "Quotes (guarded) - page 2"
    assert not sel.css("#bot-detected")
    quotes = sel.css("div.quote")
    assert len(quotes) == 10
    quotes_page = Selector(text=get(sandbox.url + "/quotes/page/2")[2])
    assert quotes.css("span.text::text").getall() == quotes_page.css("div.quote span.text::text").getall()
    assert quotes.css("small.author::text").getall() == quotes_page.css("div.quote small.author::text").getall()
    assert quotes[0].css("a::attr(href)").get() == "/guarded/detail/11"
    assert sel.css("li.next a::attr(href)").get() == "/guarded/page/3"
    assert sel.css("li.previous a::attr(href)").get() == "/guarded/page/1"
    assert "guard_ok" in cookies
    [record] = sandbox.requests("/guarded/data/2")
    assert record["status"] == 200 and record["cookies"]["guard_ok"] == cookies["guard_ok"]
    assert record["user_agent"] == DESKTOP_UA


@pytest.mark.browser
def test_masked_chromium_sees_a_detail_page(sandbox: SandboxServer, stealth_browser) -> None:
    _, html, _ = open_guarded(stealth_browser, sandbox.url + "/guarded/detail/7", user_agent=DESKTOP_UA,
                              scripts=tuple(MASKS.values()))
    sel = Selector(text=html)
    assert sel.css("h1.title::text").get().startswith("Quote #7 by ")
    assert sel.css("span.born::text").get()


@pytest.mark.browser
@pytest.mark.parametrize("unmasked", ["webdriver", "user_agent", "plugins", "chrome"])
def test_each_marker_alone_is_detected(sandbox: SandboxServer, stealth_browser, unmasked: str) -> None:
    """With all but one marker masked the guard still blocks: every check counts on its own."""
    scripts = tuple(source for name, source in MASKS.items() if name != unmasked) + UNMASKED.get(unmasked, ())
    user_agent = None if unmasked == "user_agent" else DESKTOP_UA  # None: Chromium's HeadlessChrome UA
    title, html, _ = open_guarded(stealth_browser, sandbox.url + "/guarded/page/1", user_agent=user_agent,
                                  scripts=scripts)
    assert title == "Access denied"
    assert Selector(text=html).css("div#bot-detected::attr(data-markers)").get() == MARKER_NAMES[unmasked]
    assert sandbox.hits(prefix="/guarded/data") == {"__total__": 0}
