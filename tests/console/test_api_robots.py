"""`GET /api/v1/robots?url=`: the verdict and the deciding rule, from a real robots.txt served
on 127.0.0.1 (allowed by HITL_ROBOTS_ALLOW_PRIVATE, refused without it)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hitl_console.app import create_app
from tests.support.servers import free_port

ROBOTS = """\
User-agent: *
Disallow: /private
Allow: /private/open
Disallow: /*.pdf$

User-agent: mybot
Disallow: /
"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.server.gate is not None:
            self.server.gate.wait(10)  # a slow site: holds the console's thread until opened
        if self.path == "/robots.txt" and self.server.robots is not None:
            self.send_response(301 if self.server.redirect else 200)
            if self.server.redirect:
                self.send_header("Location", "/robots.txt" if self.server.redirect == "loop" else "/moved-robots.txt")
                self.end_headers()
                return
            body = self.server.robots.encode()
        elif self.path == "/moved-robots.txt":
            self.send_response(200)
            body = b"User-agent: *\nDisallow: /moved\n"
        else:
            self.send_response(404)
            body = b"<html>not here</html>"
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.robots, server.redirect, server.gate = ROBOTS, False, None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_client(hitl_env, hitl_schema, users):
    app = create_app({"robots_allow_private": True})
    app.testing = True
    yield app.test_client()
    app.extensions["hitl"].close()


def ask(client, headers, url, **params):
    return client.get("/api/v1/robots", query_string={"url": url, **params}, headers=headers)


@pytest.mark.parametrize(("path", "user_agent", "allowed", "rule", "group"), [
    ("/private/page", None, False, ("disallow", "/private"), "*"),
    ("/private/open/page", None, True, ("allow", "/private/open"), "*"),  # the longer pattern wins
    ("/docs/a.pdf", None, False, ("disallow", "/*.pdf$"), "*"),
    ("/docs/a.pdf?x=1", None, True, None, "*"),  # $ anchors the end
    ("/public", None, True, None, "*"),
    ("/public", "MyBot/1.0 (+https://example.com)", False, ("disallow", "/"), "mybot"),
    ("/robots.txt", "mybot", True, None, None),
])
def test_the_verdict_names_the_rule(private_client, reviewer, site, path, user_agent, allowed, rule, group):
    url = f"http://127.0.0.1:{site.server_port}{path}"
    answer = ask(private_client, reviewer, url, **({"user_agent": user_agent} if user_agent else {}))
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["allowed"] is allowed and body["robots_status"] == 200 and body["group"] == group
    assert (body["rule"] and (body["rule"]["directive"], body["rule"]["pattern"])) == (rule or None)
    if rule:
        assert body["reason"] == "rule" and rule[1] in body["message"]
    if not user_agent:
        assert body["user_agent"].startswith("Scrapy/")


def test_missing_robots_redirects_and_unreachable_hosts(private_client, reviewer, site):
    base = f"http://127.0.0.1:{site.server_port}"
    site.robots = None  # a 404 page: no rules, as Scrapy reads it
    body = ask(private_client, reviewer, f"{base}/private").json
    assert body["allowed"] is True and body["robots_status"] == 404 and body["reason"] == "no_group"
    site.robots, site.redirect = ROBOTS, True  # followed, like Scrapy's downloader does
    body = ask(private_client, reviewer, f"{base}/moved/x").json
    assert body["allowed"] is False and body["rule"]["pattern"] == "/moved"
    site.redirect = "loop"
    looping = ask(private_client, reviewer, f"{base}/x").json
    assert looping["allowed"] is True and looping["reason"] == "unreachable"
    assert looping["robots_error"] == "more than 5 redirects"
    closed = ask(private_client, reviewer, f"http://127.0.0.1:{free_port()}/x").json
    assert closed["allowed"] is True and closed["reason"] == "unreachable" and closed["robots_status"] is None
    assert "lets every request through" in closed["message"]


@pytest.mark.parametrize(("url", "status", "words"), [
    ("", 400, "required"),
    ("http://example.com/a b", 400, "without spaces"),
    ("http://example.com:port/x", 400, "absolute http or https"),
    ("http://" + "a" * 9000 + ".com/", 400, "at most 8192"),
    ("ftp://example.com/x", 400, "absolute http or https"),
    ("/relative/path", 400, "absolute http or https"),
    ("http://127.0.0.1:9/x", 422, "HITL_ROBOTS_ALLOW_PRIVATE"),
    ("http://169.254.169.254/latest/meta-data", 422, "metadata"),
    ("http://localhost/x", 422, "loopback"),
])
def test_bad_or_internal_urls_are_refused(client, reviewer, url, status, words):
    answer = ask(client, reviewer, url)
    assert answer.status_code == status, answer.json
    assert set(answer.json) == {"error", "detail"} and words in str(answer.json["detail"])


@pytest.mark.parametrize("user_agent", ["bot\r\nX-Injected: 1", "x" * 501, "tab\tbot", "bot/\u20ac"])
def test_a_bad_user_agent_is_refused(client, reviewer, user_agent):
    answer = ask(client, reviewer, "https://example.com/x", user_agent=user_agent)
    assert answer.status_code == 400 and "user_agent" in answer.json["detail"]


def test_slow_calls_beyond_the_cap_get_429_and_the_rest_of_the_api_stays_up(private_client, reviewer, site):
    """A robots.txt check holds a thread while the site answers; past the process's share of
    slow calls (robots checks and project refreshes together) the next gets 429 at once."""
    from hitl_console.slots import SLOW_CALLS_KEY

    app = private_client.application
    app.config[SLOW_CALLS_KEY] = 1
    site.gate = threading.Event()
    url = f"http://127.0.0.1:{site.server_port}/private/page"
    held = {}
    thread = threading.Thread(target=lambda: held.update(response=ask(app.test_client(), reviewer, url)))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while app.extensions["hitl_slow_calls"].open < 1:
            assert time.monotonic() < deadline, "the first check never started"
            time.sleep(0.01)
        refused = ask(private_client, reviewer, url)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
        assert refused.json["error"] == "too_many_slow_calls" and "retry the check in 5 s" in refused.json["detail"]
        assert private_client.get("/api/v1/projects", headers=reviewer).status_code == 200
        assert private_client.post("/api/v1/projects/nope/refresh", headers=reviewer).status_code == 404
    finally:
        site.gate.set()
        thread.join(15)
    assert held["response"].status_code == 200 and held["response"].json["allowed"] is False
    assert app.extensions["hitl_slow_calls"].open == 0
    assert ask(private_client, reviewer, url).status_code == 200  # the slot is free again
