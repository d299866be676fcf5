"""Browser probes: a session whose login lives only in localStorage (the sandbox's account
section) is checked in headless Chromium from its storage state, where a plain HTTP probe of
the same URL and selector sees only the signed-out shell; a token the site suspends (after N
uses) or refuses fails the browser probe, and the session is invalidated like any failed probe."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from hitl_console.session_worker import SessionWorker, SessionWorkerConfig, probe_session
from scrapy_hitl.state import interventions, pauses, session_health

DOMAIN = "account.sandbox.test"
SELECTOR = "div.quote"


def origin(site) -> str:
    return f"http://{DOMAIN}:{urlsplit(site.url).port}"


def token_session(state, site, name: str, token: str) -> None:
    """A session as a live login saves it: no cookie, the token in the origin's localStorage."""
    state.vault.put(DOMAIN, [], name=name,
                    origins=[{"origin": origin(site), "localStorage": [{"name": "account_token", "value": token}]}])


def check(state) -> dict:
    (probed,) = SessionWorker(state, SessionWorkerConfig()).check(force=True)["probed"]
    return probed


@pytest.mark.browser
def test_a_browser_probe_sees_a_localstorage_login_and_fails_a_refused_token(state, fresh_sandbox, monkeypatch):
    # Chromium (PLAYWRIGHT_LAUNCH_OPTIONS, read from the worker's environment) and requests
    # both reach the sandbox under its host name.
    monkeypatch.setenv("PLAYWRIGHT_LAUNCH_OPTIONS",
                       json.dumps({"args": ["--host-resolver-rules=MAP *.sandbox.test 127.0.0.1"]}))
    monkeypatch.setenv("NO_PROXY", "*")
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if str(host).endswith(".sandbox.test") else host, *a, **k))
    def login(**extra: str) -> str:
        response = requests.post(f"{origin(fresh_sandbox)}/account/api/login", timeout=10,
                                 data={"user": "demo", "password": "demo", **extra})
        return response.json()["token"]

    token_session(state, fresh_sandbox, "alice", login())
    token_session(state, fresh_sandbox, "bob", login(limit="1"))  # suspended after one page
    url = f"{origin(fresh_sandbox)}/account/page/1"

    # A plain HTTP probe cannot see either login: both get the signed-out shell.
    http_probe = session_health.set_probe(state.db, DOMAIN, url=url, selector=SELECTOR)["probe"]
    assert http_probe["browser"] is False
    for session in state.vault.pool(DOMAIN):
        ok, detail = probe_session(http_probe, session)
        assert not ok and detail.endswith(f"no {SELECTOR!r} on the page"), detail

    info = session_health.set_probe(state.db, DOMAIN, url=url, selector=SELECTOR, browser=True)
    assert info["probe"]["browser"] is True
    probed = check(state)
    assert probed["browser"] is True and (probed["passed"], probed["failed"], probed["errors"]) == (
        ["alice", "bob"], {}, {})
    assert session_health.info(state.db, DOMAIN)["probe_result"]["result"] == "ok"

    # The site has suspended bob's account since; carol's token was never valid (expired).
    token_session(state, fresh_sandbox, "carol", "acct-0123456789abcdef." + "0" * 32)
    probed = check(state)
    assert probed["passed"] == ["alice"] and sorted(probed["failed"]) == ["bob", "carol"]
    assert probed["failed"]["bob"] == f"HTTP 200 at {url} in a browser, no {SELECTOR!r} on the page"
    pool = {s["name"]: s["health"] for s in state.vault.pool_info(DOMAIN)}
    assert pool == {"alice": "valid", "bob": "invalid", "carol": "invalid"}
    advisory = probed["intervention"]
    assert (advisory["reason"], advisory["priority"]) == ("probe_failed", interventions.ADVISORY_PRIORITY)
    assert DOMAIN not in pauses.paused_domains(state.redis)  # alice still works
    result = session_health.info(state.db, DOMAIN)["probe_result"]
    assert result["result"] == "failed" and "bob: HTTP 200" in result["detail"] and "in a browser" in result["detail"]


def test_a_browser_probe_without_chromium_says_so_and_judges_no_session(state, monkeypatch):
    monkeypatch.setenv("HITL_BROWSER_EXECUTABLE", "/nonexistent/chromium")
    state.vault.put("shop.example", [], name="alice",
                    origins=[{"origin": "https://shop.example", "localStorage": [{"name": "t", "value": "v"}]}])
    session_health.set_probe(state.db, "shop.example", url="https://shop.example/account", selector="a.logout",
                             browser=True)

    probed = check(state)

    assert probed["passed"] == [] and probed["failed"] == {} and probed["intervention"] is None
    assert "HITL_BROWSER_EXECUTABLE='/nonexistent/chromium' is not an executable file" in probed["errors"]["alice"]
    assert state.vault.pool_info("shop.example")[0]["health"] == "unknown"  # not judged
    result = session_health.info(state.db, "shop.example")["probe_result"]
    assert result["result"] == "error" and result["detail"].startswith("the probe could not run: could not start")
