"""The sandbox site over real HTTP: one server per module (see conftest.py), urllib as client."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING

import pytest
from parsel import Selector
from sandbox import SandboxServer, SandboxStartError
from sandbox import pages as sandbox_pages
from sandbox.control import SANDBOX_DIR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from email.message import Message
    from pathlib import Path

pytestmark = pytest.mark.filterwarnings("error")

PAGES = 5  # sandbox defaults
DRIFT_AFTER = 2
STATIC_PAGES = 120  # conftest.sandbox_server


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # surface 302s to the test instead of following them


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


@dataclass
class Response:
    status: int
    headers: Message
    text: str

    @property
    def sel(self) -> Selector:
        return Selector(text=self.text)

    @property
    def set_cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return {name: morsel.value for name, morsel in jar.items()}


def fetch(
    url: str,
    *,
    cookies: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
    user_agent: str = "sandbox-tests/1.0",
    method: str | None = None,
) -> Response:
    headers = {"User-Agent": user_agent}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with OPENER.open(request, timeout=10) as response:
            return Response(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.headers, error.read().decode())


# -- index, health, quotes ------------------------------------------------------------------------


def test_index_links_to_every_section(sandbox: SandboxServer) -> None:
    response = fetch(sandbox.url + "/")
    assert response.status == 200
    assert response.sel.css("title::text").get() == "scrapy-hitl sandbox"
    links = set(response.sel.css("a::attr(href)").getall())
    for section in ("quotes", "vip", "members", "members-redirect", "protected", "js", "guarded", "botd", "drift",
                    "static", "mixed"):
        assert f"/{section}/page/1" in links
    assert {"/login", "/health", "/__sandbox/hits"} <= links


def test_health(sandbox: SandboxServer) -> None:
    response = fetch(sandbox.url + "/health")
    assert (response.status, response.text) == (200, "ok")


@pytest.mark.parametrize(("page", "next_href"), [(1, "/quotes/page/2"), (3, "/quotes/page/4"), (PAGES, None)])
def test_quotes_listing(sandbox: SandboxServer, page: int, next_href: str | None) -> None:
    response = fetch(f"{sandbox.url}/quotes/page/{page}")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    sel = response.sel
    assert sel.css("title::text").get() == f"Quotes to Scrape - page {page}"
    quotes = sel.css("div.quote")
    assert len(quotes) == 10
    first_id = (page - 1) * 10 + 1
    assert quotes[0].css("a::attr(href)").get() == f"/quotes/detail/{first_id}"
    for quote in quotes:
        assert quote.css("span.text::text").get().startswith("\u201c")
        assert quote.css("small.author::text").get()
        assert quote.css("div.tags a.tag::text").getall()
    assert sel.css("li.next a::attr(href)").get() == next_href


def test_quote_detail(sandbox: SandboxServer) -> None:
    sel = fetch(sandbox.url + "/quotes/detail/12").sel
    assert sel.css("h1.title::text").get().startswith("Quote #12 by ")
    assert sel.css("div.quote-text::text").get().startswith("\u201c")
    assert sel.css("span.author::text").get()
    assert re.search(r"\d+", sel.css("span.born::text").get())


def test_content_is_deterministic_across_processes(sandbox: SandboxServer) -> None:
    # The server is another process with another PYTHONHASHSEED: same bytes as rendered here.
    assert fetch(sandbox.url + "/quotes/page/2").text.encode() == sandbox_pages.quote_list_page("quotes", 2, PAGES)
    assert fetch(sandbox.url + "/quotes/detail/7").text.encode() == sandbox_pages.quote_detail_page("quotes", 7)


@pytest.mark.parametrize(
    "path",
    ["/quotes/page/0", f"/quotes/page/{PAGES + 1}", "/quotes/page/x", f"/quotes/detail/{PAGES * 10 + 1}",
     f"/static/page/{STATIC_PAGES + 1}", "/static/detail/1", "/nowhere", "/quotes/page/1/extra"],
)  # fmt: skip
def test_unknown_pages_are_404(sandbox: SandboxServer, path: str) -> None:
    response = fetch(sandbox.url + path)
    assert response.status == 404
    assert response.sel.css("title::text").get() == "404 Not Found"


# -- VIP: 403 until a cookie ------------------------------------------------------------------------


@pytest.mark.parametrize("cookies", [None, {"vip_pass": "wrong"}, {"other": "letmein"}])
@pytest.mark.parametrize("path", ["/vip/page/1", "/vip/detail/3"])
def test_vip_forbidden_without_cookie(sandbox: SandboxServer, path: str, cookies: dict[str, str] | None) -> None:
    response = fetch(sandbox.url + path, cookies=cookies)
    assert response.status == 403
    assert response.sel.css("title::text").get() == "403 Forbidden"
    assert "Forbidden" in response.sel.css("h1::text").get()
    assert not response.sel.css("div.quote")


def test_vip_with_cookie(sandbox: SandboxServer) -> None:
    page = fetch(sandbox.url + "/vip/page/2", cookies={"vip_pass": "letmein"})
    assert page.status == 200
    assert len(page.sel.css("div.quote")) == 10
    assert page.sel.css("li.next a::attr(href)").get() == "/vip/page/3"
    assert page.sel.css("div.quote a::attr(href)").get() == "/vip/detail/11"
    detail = fetch(sandbox.url + "/vip/detail/11", cookies={"vip_pass": "letmein"})
    assert detail.status == 200
    assert detail.sel.css("span.born::text").get()


# -- Members: 401 / 302 until login ---------------------------------------------------------------


def login(sandbox: SandboxServer, next_url: str = "/members/page/1") -> Response:
    return fetch(sandbox.url + "/login", form={"user": "demo", "password": "demo", "next": next_url})


@pytest.mark.parametrize(
    ("cookies", "message"),
    [(None, "Please log in."), ({"member_session": "expired"}, "Your session has expired"),
     ({"member_session": "forged"}, "Your session has expired")],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/members/page/1", "/members/detail/4"])
def test_members_401_without_valid_session(
    sandbox: SandboxServer, path: str, cookies: dict[str, str] | None, message: str
) -> None:
    response = fetch(sandbox.url + path, cookies=cookies)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Cookie realm="members"'
    assert message in response.sel.css("p.error::text").get()
    assert not response.sel.css("div.quote")


def test_login_form(sandbox: SandboxServer) -> None:
    sel = fetch(sandbox.url + "/login?next=/members/page/3").sel
    assert sel.css("form::attr(method)").get() == "post"
    assert sel.css("input[name=next]::attr(value)").get() == "/members/page/3"
    assert sel.css("input[name=user]") and sel.css("input[name=password][type=password]")


@pytest.mark.parametrize("form", [{"user": "demo", "password": "nope"}, {"user": "root", "password": "demo"}, {}])
def test_login_rejects_bad_credentials(sandbox: SandboxServer, form: dict[str, str]) -> None:
    response = fetch(sandbox.url + "/login", form=form)
    assert response.status == 200
    assert response.sel.css("p.error::text").get() == "Invalid username or password."
    assert "member_session" not in response.set_cookies


def test_login_then_members_pages(sandbox: SandboxServer) -> None:
    response = login(sandbox, "/members/page/2")
    assert response.status == 302
    assert response.headers["Location"] == "/members/page/2"
    session = response.set_cookies["member_session"]
    assert session.startswith("valid-")
    page = fetch(sandbox.url + "/members/page/2", cookies={"member_session": session})
    assert page.status == 200
    assert page.sel.css("div.quote a::attr(href)").get() == "/members/detail/11"
    assert fetch(sandbox.url + "/members/detail/11", cookies={"member_session": session}).status == 200


def test_logout_expires_the_session(sandbox: SandboxServer) -> None:
    response = fetch(sandbox.url + "/logout", cookies={"member_session": "valid-abc"})
    assert (response.status, response.headers["Location"]) == (302, "/")
    assert "Max-Age=0" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("next_url", ["//evil.example/", "https://evil.example/", "members"])
def test_login_refuses_offsite_next(sandbox: SandboxServer, next_url: str) -> None:
    assert login(sandbox, next_url).headers["Location"] == "/members/page/1"


def test_members_redirect_variant(sandbox: SandboxServer) -> None:
    response = fetch(sandbox.url + "/members-redirect/page/2")
    assert response.status == 302
    location = response.headers["Location"]
    assert location == "/login?next=/members-redirect/page/2"
    next_url = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["next"][0]
    logged_in = login(sandbox, next_url)
    assert logged_in.headers["Location"] == "/members-redirect/page/2"
    cookies = {"member_session": logged_in.set_cookies["member_session"]}
    page = fetch(sandbox.url + "/members-redirect/page/2", cookies=cookies)
    assert page.status == 200
    assert len(page.sel.css("div.quote")) == 10
    expired = fetch(sandbox.url + "/members-redirect/page/2", cookies={"member_session": "expired"})
    assert expired.status == 302


# -- Account: login in localStorage, a token suspended after N uses ----------------------------------


def test_an_account_token_with_a_limit_is_suspended_after_n_data_requests(sandbox: SandboxServer) -> None:
    def token(**extra: str) -> str:
        response = fetch(sandbox.url + "/account/api/login", form={"user": "demo", "password": "demo", **extra})
        return json.loads(response.text)["token"]

    def data(bearer: str) -> int:
        request = urllib.request.Request(sandbox.url + "/account/data/1", headers={"Authorization": f"Bearer {bearer}"})
        try:
            with OPENER.open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            with error:
                return error.code

    limited, unlimited = token(limit="2"), token()
    assert limited.startswith("acct-limit2-") and not unlimited.startswith("acct-limit")
    assert [data(limited) for _ in range(3)] == [200, 200, 403]
    assert [data(unlimited) for _ in range(3)] == [200, 200, 200]
    assert data("acct-limit9-00." + "0" * 32) == 401  # a made-up token: not signed


# -- Protected: Cloudflare-like challenge -----------------------------------------------------------


def assert_challenge(response: Response) -> None:
    assert response.status == 403
    assert response.headers["Server"] == "cloudflare"
    assert response.headers["cf-mitigated"] == "challenge"
    assert re.fullmatch(r"[0-9a-f]{16}-LHR", response.headers["cf-ray"])
    assert response.headers["Content-Type"].startswith("text/html")
    sel = response.sel
    assert sel.css("title::text").get() == "Just a moment..."
    ray = response.headers["cf-ray"].removesuffix("-LHR")
    assert sel.css("script::attr(src)").get() == f"/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray={ray}"
    assert "window._cf_chl_opt={" in response.text
    assert sel.css("input[type=checkbox][name=human]")
    assert "Verify you are human" in sel.css("label span::text").get()
    assert re.fullmatch(r"[A-Z2-9]{4}", sel.css("#cf-code::text").get())
    assert sel.css("form#challenge-form::attr(action)").get() == "/cdn-cgi/challenge-platform/verify"
    assert not sel.css("div.quote")


def solve_form(response: Response, *, code: str | None = None, human: bool = True) -> dict[str, str]:
    sel = response.sel
    form = {name: sel.css(f"input[name={name}]::attr(value)").get() for name in ("ray", "next")}
    form["code"] = sel.css("#cf-code::text").get().lower() if code is None else code  # case-insensitive
    if human:
        form["human"] = "1"
    return form


@pytest.mark.parametrize("path", ["/protected/page/1", "/protected/detail/2"])
def test_protected_challenge_page(sandbox: SandboxServer, path: str) -> None:
    response = fetch(sandbox.url + path)
    assert_challenge(response)
    assert response.sel.css("input[name=next]::attr(value)").get() == path
    opt = json.loads(re.search(r"window\._cf_chl_opt=(\{.*?\});", response.text).group(1))
    assert opt["cType"] == "managed"
    assert opt["cRay"] == response.headers["cf-ray"].removesuffix("-LHR")


def test_orchestrate_script_is_served(sandbox: SandboxServer) -> None:
    response = fetch(sandbox.url + "/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=00")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/javascript"


def test_challenge_verify_flow(sandbox: SandboxServer) -> None:
    verify = sandbox.url + "/cdn-cgi/challenge-platform/verify"
    challenge = fetch(sandbox.url + "/protected/page/3")

    right_code = challenge.sel.css("#cf-code::text").get()
    wrong = fetch(verify, form=solve_form(challenge, code="ZZZZ" if right_code != "ZZZZ" else "YYYY"))
    assert_challenge(wrong)
    assert wrong.sel.css("p.cf-error::text").get() == "Incorrect code. Please try again."
    assert "cf_clearance" not in wrong.set_cookies

    unticked = fetch(verify, form=solve_form(wrong, human=False))
    assert_challenge(unticked)
    assert "Verify you are human" in unticked.sel.css("p.cf-error::text").get()

    solved = fetch(verify, form=solve_form(unticked))
    assert solved.status == 302
    assert solved.headers["Location"] == "/protected/page/3"
    assert "Path=/" in solved.headers["Set-Cookie"]
    clearance = solved.set_cookies["cf_clearance"]

    page = fetch(sandbox.url + "/protected/page/3", cookies={"cf_clearance": clearance})
    assert page.status == 200
    assert len(page.sel.css("div.quote")) == 10
    assert fetch(sandbox.url + "/protected/detail/21", cookies={"cf_clearance": clearance}).status == 200
    assert_challenge(fetch(sandbox.url + "/protected/page/3", cookies={"cf_clearance": "made-up-1-1.2.1.1-x"}))


def test_verify_requires_post(sandbox: SandboxServer) -> None:
    assert fetch(sandbox.url + "/cdn-cgi/challenge-platform/verify").status == 405


# -- JS-only, drift, static ------------------------------------------------------------------------


def js_data(response: Response) -> dict[str, object]:
    return json.loads(response.sel.css("script#page-data::text").get())


def test_js_page_has_no_quotes_in_raw_html(sandbox: SandboxServer) -> None:
    response = fetch(sandbox.url + "/js/page/1")
    assert response.status == 200
    sel = response.sel
    assert not sel.css("div.quote") and 'class="quote"' not in response.text
    assert sel.css("div#app").get() == '<div id="app"></div>'
    assert sel.css("noscript::text").get() == "Please enable JavaScript to view this page."
    data = js_data(response)
    quotes_page = fetch(sandbox.url + "/quotes/page/1").sel
    assert [q["text"] for q in data["quotes"]] == quotes_page.css("div.quote span.text::text").getall()
    assert data["next"] == "/js/page/2"
    assert js_data(fetch(sandbox.url + f"/js/page/{PAGES}"))["next"] is None


def test_js_detail_has_the_quote_as_json(sandbox: SandboxServer) -> None:
    response = fetch(sandbox.url + "/js/detail/5")
    assert not response.sel.css("h1.title")
    assert js_data(response)["quote"]["id"] == 5


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs a chromium binary")
def test_js_page_renders_quotes_in_a_browser(sandbox: SandboxServer) -> None:
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", sandbox.url + "/js/page/2"]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    quotes = Selector(text=dom).css("div.quote")
    assert len(quotes) == 10
    assert quotes[0].css("a::attr(href)").get() == "/js/detail/11"
    assert Selector(text=dom).css("li.next a::attr(href)").get() == "/js/page/3"


def test_drift_markup_changes_after_drift_after_pages(sandbox: SandboxServer) -> None:
    for page in range(1, PAGES + 1):
        sel = fetch(f"{sandbox.url}/drift/page/{page}").sel
        old, new = sel.css("div.quote"), sel.css("article.q-card")
        if page <= DRIFT_AFTER:
            assert (len(old), len(new)) == (10, 0)
        else:
            assert (len(old), len(new)) == (0, 10)
            assert new[0].css("p.q-body::text").get().startswith("\u201c")
            assert new[0].css("span.q-author::text").get()
        # Only the items drift: pagination keeps working so a crawler reaches the drifted pages.
        assert sel.css("li.next a::attr(href)").get() == (f"/drift/page/{page + 1}" if page < PAGES else None)


@pytest.mark.parametrize(
    ("page", "links"),
    [(1, ["/static/page/2", "/static/page/3"]), (STATIC_PAGES - 1, [f"/static/page/{STATIC_PAGES}"]),
     (STATIC_PAGES, [])],
)  # fmt: skip
def test_static_page_links(sandbox: SandboxServer, page: int, links: list[str]) -> None:
    response = fetch(f"{sandbox.url}/static/page/{page}")
    assert response.status == 200
    assert 900 <= len(response.text.encode()) <= 2048
    assert response.sel.css("a::attr(href)").getall() == links
    assert response.sel.css("div.quote::attr(data-id)").getall() == [str(page)]


def test_static_crawl_discovers_every_page_once(sandbox: SandboxServer) -> None:
    seen, frontier = {"/static/page/1"}, ["/static/page/1"]
    while frontier:
        path = frontier.pop()
        for href in fetch(sandbox.url + path).sel.css("a::attr(href)").getall():
            if href not in seen:
                seen.add(href)
                frontier.append(href)
    assert seen == {f"/static/page/{n}" for n in range(1, STATIC_PAGES + 1)}
    hits = sandbox.hits(prefix="/static/")
    assert hits.pop("__total__") == STATIC_PAGES
    assert set(hits.values()) == {1}


# -- control endpoints ------------------------------------------------------------------------------


def test_hits_count_every_request_and_reset(sandbox: SandboxServer) -> None:
    for path in ("/quotes/page/1", "/quotes/page/1", "/vip/page/1", "/members/page/1", "/nowhere"):
        fetch(sandbox.url + path)
    fetch(sandbox.url + "/vip/page/1", cookies={"vip_pass": "letmein"})
    assert sandbox.hits() == {
        "/quotes/page/1": 2, "/vip/page/1": 2, "/members/page/1": 1, "/nowhere": 1, "__total__": 6,
    }  # fmt: skip
    assert sandbox.hits(prefix="/vip") == {"/vip/page/1": 2, "__total__": 2}
    sandbox.reset()
    assert sandbox.hits() == {"__total__": 0}
    assert sandbox.requests("/vip/page/1") == []


def test_request_records_show_cookies_user_agent_and_status(sandbox: SandboxServer) -> None:
    fetch(sandbox.url + "/vip/page/1", user_agent="first-ua")
    fetch(sandbox.url + "/vip/page/1", cookies={"vip_pass": "letmein", "x": "1"}, user_agent="second-ua")
    assert sandbox.requests("/vip/page/1") == [
        {"method": "GET", "cookies": {}, "user_agent": "first-ua", "status": 403},
        {"method": "GET", "cookies": {"vip_pass": "letmein", "x": "1"}, "user_agent": "second-ua", "status": 200},
    ]


def test_request_records_keep_the_last_50(sandbox: SandboxServer) -> None:
    for n in range(55):
        fetch(sandbox.url + "/quotes/page/1", user_agent=f"ua-{n}")
    records = sandbox.requests("/quotes/page/1")
    assert [r["user_agent"] for r in records] == [f"ua-{n}" for n in range(5, 55)]
    assert sandbox.hits()["/quotes/page/1"] == 55


def test_control_endpoint_errors(sandbox: SandboxServer) -> None:
    assert fetch(sandbox.url + "/__sandbox/reset").status == 405
    assert fetch(sandbox.url + "/__sandbox/requests").status == 400
    assert fetch(sandbox.url + "/__sandbox/nope").status == 404
    config = json.loads(fetch(sandbox.url + "/__sandbox/config").text)
    assert config["static_pages"] == STATIC_PAGES and "secret" not in config
    assert sandbox.hits() == {"__total__": 0}  # control requests are not counted


# -- HITL_FORCE_CAPTCHA and SANDBOX_CF_BIND_UA -----------------------------------------------------


@pytest.fixture(scope="module")
def forced() -> Iterator[SandboxServer]:
    with SandboxServer(static_pages=10, env={"HITL_FORCE_CAPTCHA": "1", "SANDBOX_CF_BIND_UA": "1"}) as server:
        yield server


@pytest.mark.parametrize(
    "path", ["/quotes/page/1", "/static/page/1", "/", "/login", "/js/page/1", "/protected/page/1", "/mixed/page/1",
             "/mixed/item/1", "/mixed/app/9"],
)
def test_force_captcha_challenges_every_page(forced: SandboxServer, path: str) -> None:
    assert_challenge(fetch(forced.url + path))


def test_force_captcha_spares_health_and_control(forced: SandboxServer) -> None:
    assert fetch(forced.url + "/health").text == "ok"
    assert "__total__" in forced.hits()


def test_force_captcha_clearance_is_bound_to_the_user_agent(forced: SandboxServer) -> None:
    challenge = fetch(forced.url + "/quotes/page/2", user_agent="browser-ua")
    verify = forced.url + "/cdn-cgi/challenge-platform/verify"
    solved = fetch(verify, form=solve_form(challenge), user_agent="browser-ua")
    assert solved.headers["Location"] == "/quotes/page/2"
    cookies = {"cf_clearance": solved.set_cookies["cf_clearance"]}
    assert fetch(forced.url + "/quotes/page/2", cookies=cookies, user_agent="browser-ua").status == 200
    assert fetch(forced.url + "/static/page/3", cookies=cookies, user_agent="browser-ua").status == 200
    assert_challenge(fetch(forced.url + "/quotes/page/2", cookies=cookies, user_agent="crawler-ua"))


# -- SandboxServer lifecycle ------------------------------------------------------------------------


def test_server_prints_url_and_stops_cleanly() -> None:
    server = SandboxServer(pages=2)
    url = server.start()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    assert server.url == url
    assert fetch(url + "/quotes/page/2").sel.css("li.next") == []
    server.stop()
    assert server.process is not None and server.process.returncode == 0
    assert server.stderr() == ""
    with pytest.raises(RuntimeError, match="not running"):
        server.url  # noqa: B018
    with pytest.raises(urllib.error.URLError):
        fetch(url + "/health")
    server.stop()  # idempotent


def test_server_stdout_is_exactly_one_line() -> None:
    with SandboxServer() as server:
        fetch(server.url + "/quotes/page/1")
        assert server.stdout() == f"SANDBOX_URL={server.url}\n"


def test_sigint_also_stops_cleanly() -> None:
    server = SandboxServer()
    server.start()
    assert server.process is not None
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(10) == 0
    server.stop()


def test_server_exits_when_its_parent_dies() -> None:
    script = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from sandbox import SandboxServer\n"
        "s = SandboxServer(); s.start(); print(s.process.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(SANDBOX_DIR)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[-1][0] != "Z"


@pytest.mark.parametrize(
    ("options", "message"),
    [({"pages": 0}, "pages must be >= 1"), ({"bogus": 1}, "unrecognized arguments: --bogus 1")],
)
def test_start_error_includes_stderr(options: dict[str, object], message: str) -> None:
    server = SandboxServer(**options)
    with pytest.raises(SandboxStartError, match=message):
        server.start()
    assert server.process is not None and server.process.returncode == 2


def test_reading_the_output_never_moves_the_servers_write_position() -> None:
    # The server writes through the same open file as ours (its stdout is our temporary file),
    # so they share one file position. Reading it must leave that position alone: a seek to 0
    # that landed between the two writes of an unbuffered print() (text, then the newline) put
    # the newline over the first byte, and the URL line never ended (a CI failure).
    import tempfile

    from sandbox.control import _read_all

    with tempfile.TemporaryFile() as ours:
        server_fd = os.dup(ours.fileno())  # what the child process holds as its stdout
        try:
            os.write(server_fd, b"SANDBOX_URL=http://127.0.0.1:1")
            assert _read_all(ours) == "SANDBOX_URL=http://127.0.0.1:1"
            os.lseek(server_fd, 7, os.SEEK_SET)  # wherever the writer is, ...
            assert _read_all(ours) == "SANDBOX_URL=http://127.0.0.1:1"
            assert os.lseek(server_fd, 0, os.SEEK_CUR) == 7  # ... reading leaves it there
        finally:
            os.close(server_fd)


def test_the_url_line_is_read_however_the_server_writes_it(tmp_path: Path) -> None:
    # A line written in parts, with our polls in between, is read whole: its first half (half
    # the URL) is not taken for the line.
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, time\n"
        "class TwoPartWrites:\n"
        "    def __getattr__(self, name):\n"
        "        return getattr(sys.__stdout__, name)\n"
        "    def write(self, text):\n"
        "        if text.endswith('\\n') and len(text) > 1:\n"
        "            half = len(text) // 2\n"
        "            self.write(text[:half]); time.sleep(0.5); return self.write(text[half:]) + half\n"
        "        n = sys.__stdout__.write(text); sys.__stdout__.flush(); return n\n"
        "sys.stdout = TwoPartWrites()\n"
    )
    with SandboxServer(env={"PYTHONPATH": str(tmp_path)}, startup_timeout=15) as server:
        assert fetch(server.url + "/health").status == 200
        assert server.stdout() == f"SANDBOX_URL={server.url}\n"


def test_a_silent_start_shows_where_the_server_stood(tmp_path: Path) -> None:
    # A server that never prints its URL (here: stuck at interpreter start-up) is stopped, and
    # the error carries its stack, not an empty stderr. The SIGABRT leaves no core file in
    # projects/sandbox (its working directory), also where cores are on (`ulimit -c unlimited`,
    # as in many containers).
    (tmp_path / "sitecustomize.py").write_text("import time\ntime.sleep(120)  # stuck_here\n")
    server = SandboxServer(env={"PYTHONPATH": str(tmp_path)}, startup_timeout=1)
    with _cores_on() as new_cores, pytest.raises(SandboxStartError, match="printed no SANDBOX_URL= line") as failed:
        server.start()
    assert "sitecustomize.py\", line 2" in str(failed.value)
    assert server.process is not None and server.process.poll() is not None
    assert new_cores() == []


@contextlib.contextmanager
def _cores_on() -> Iterator[Callable[[], list[str]]]:
    """Core files allowed for the processes started inside (the soft limit raised to the hard
    one); yields what lists the core files that appeared in SANDBOX_DIR meanwhile, and removes
    them. Where no core file could land there (a hard limit of 0, or a core_pattern that pipes
    to a collector or names another directory), the list is empty and nothing is checked."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    before = {p.name for p in SANDBOX_DIR.iterdir()}
    found: list[str] = []
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    try:
        yield lambda: found
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
        for path in SANDBOX_DIR.iterdir():
            if path.name not in before and path.name.startswith("core"):
                found.append(path.name)
                path.unlink()


# -- throughput (reported, not asserted) ----------------------------------------------------------


def test_static_throughput_report(sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]) -> None:
    threads, per_thread = 4, 500
    host, port = urllib.parse.urlsplit(sandbox.url).netloc.split(":")
    statuses: list[int] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)  # keep-alive, like Scrapy
        try:
            local = []
            for i in range(per_thread):
                conn.request("GET", f"/static/page/{(offset + i) % STATIC_PAGES + 1}")
                response = conn.getresponse()
                response.read()
                local.append(response.status)
        finally:
            conn.close()
        with lock:
            statuses.extend(local)

    workers = [threading.Thread(target=worker, args=(n * 37,)) for n in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    assert statuses == [200] * threads * per_thread
    with capsys.disabled():
        print(f"\n[sandbox] /static/page/N: {len(statuses) / elapsed:,.0f} req/s ({threads} keep-alive threads)")
