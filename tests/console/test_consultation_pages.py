"""The consultations and API-key pages without a browser: logins, roles, security headers.

What they do in a browser is in tests/console/browser/test_consultations.py.
"""

from __future__ import annotations

import re

import pytest

from hitl_console.pages import HIGH_PRIORITY
from scrapy_hitl.state import consultations

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture
def asked(app):
    st = app.extensions["hitl"]
    return consultations.create(st, title=f"Is this right? {HOSTILE}", description=HOSTILE,
                                context={"html": HOSTILE}, priority=70)["id"]


def paths(asked: int) -> list[str]:
    return ["/consultations", "/consultations?state=&min_priority=50", f"/consultations/{asked}", "/api-keys"]


def test_the_pages_send_a_visitor_without_a_login_to_the_login_page(client, asked):
    for path in paths(asked):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path
    assert client.get("/api-keys").headers["Location"] == "/login?next=/api-keys"


def test_the_api_key_page_is_for_admins_only(client, auth, asked):
    auth.login("reviewer@example.com")
    response = client.get("/api-keys")
    assert response.status_code == 403
    assert "Content-Security-Policy" in response.headers
    assert 'href="/api-keys"' not in client.get("/consultations").text  # no nav link either
    auth.login("admin@example.com")
    assert client.get("/api-keys").status_code == 200
    assert 'href="/api-keys"' in client.get("/consultations").text


@pytest.mark.parametrize("email", ["reviewer@example.com", "admin@example.com"])
def test_the_pages_render_with_csp_nosniff_and_no_inline_script(client, auth, asked, email):
    auth.login(email)
    for path in paths(asked):
        if path == "/api-keys" and email.startswith("reviewer"):
            continue
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp, path
        html = response.text
        for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
            assert re.fullmatch(r'<script type="module" src="/static/js/[a-z]+\.js">', tag), (path, tag)
        assert not re.search(r"\son\w+\s*=|\sstyle\s*=|<style", html, flags=re.I), path
        # The consultation's own text is filled in by the page's script, never rendered here.
        assert "__pwned" not in html, path


def test_the_pages_carry_what_their_scripts_need(client, auth, asked, app):
    auth.login("reviewer@example.com")
    queue = client.get("/consultations").text
    assert f'data-high-priority="{HIGH_PRIORITY}"' in queue
    assert 'src="/static/js/consultations.js"' in queue
    assert re.search(r'<option value="pending" selected>', queue)  # the queue opens on pending
    assert re.search(r'<option value="" selected>any', client.get("/consultations?state=").text)
    detail = client.get(f"/consultations/{asked}").text
    assert f'data-consultation-id="{asked}"' in detail and 'src="/static/js/consultation.js"' in detail
    assert f'data-last-event-id="{app.extensions["hitl"].events.last_id()}"' in detail


def test_an_unknown_consultation_is_a_404_page(client, auth):
    auth.login("reviewer@example.com")
    assert client.get("/consultations/999").status_code == 404
