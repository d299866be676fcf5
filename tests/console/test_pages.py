"""The HTML pages without a browser: login redirects, security headers, no inline script.

What the pages do in a browser is in tests/console/browser/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hitl_console.pages import EVIDENCE_CSP, safe_next
from scrapy_hitl.state import interventions, items, runs

STATIC = Path(__file__).resolve().parents[2] / "hitl_console" / "static"
XSS_EXCERPT = '<script>window.parent.__pwned=1</script><img src=x onerror="window.parent.__pwned=2">'


@pytest.fixture
def seeded(app):
    """One run and one intervention with hostile evidence, for the detail pages."""
    st = app.extensions["hitl"]
    run = runs.create_run(st.db, "run0123456789", "sandbox", {"base": "http://x"}, "/tmp")
    found, _ = interventions.open_or_update(
        st, type="manual_access", reason="http_403", domain="evil.test", spider="sandbox",
        run_id=run["id"], url="http://evil.test/page", response_status=403,
        response_headers={"x-evil": "<img src=x onerror=alert(1)>"},
        evidence={"body_excerpt": XSS_EXCERPT},
    )
    page = XSS_EXCERPT.encode()
    items.record(st.db, [{"run_id": run["id"], "spider": "sandbox", "item_type": "Product", "url": "http://evil.test/p",
                          "status": "pending_review", "score": 0.3, "evidence_key": "p",
                          "failing": [{"check": "missing", "field": "price", "message": "required field missing"}],
                          "data": {"name": "<img src=x onerror=alert(3)>"}}],
                 {"p": {"kind": "body", "content_type": "text/html", "data": page, "size": len(page)}})
    item = items.list_items(st.db, run_id=run["id"])[0]
    return {"run": run["id"], "intervention": found["id"], "item": item["id"]}


def page_paths(seeded) -> list[str]:
    i, r = seeded["intervention"], seeded["run"]
    return ["/", "/interventions", "/interventions?status=open&domain=evil.test", f"/interventions/{i}",
            f"/interventions/{i}/evidence", "/sessions", "/domains", "/domains/evil.test", "/runs",
            f"/runs/{r}", "/items", "/items?status=&run_id=run0123456789", f"/items/{seeded['item']}",
            f"/items/{seeded['item']}/evidence"]


def test_every_page_sends_a_visitor_without_a_login_to_the_login_page(client, seeded):
    for path in page_paths(seeded):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path
    response = client.get("/interventions?status=open")
    assert response.headers["Location"] == "/login?next=/interventions?status%3Dopen"


def test_a_bad_or_revoked_token_also_goes_to_the_login_page(client, auth, seeded):
    client.set_cookie("hitl_token", "not-a-jwt")
    assert client.get("/").status_code == 302
    auth.login("reviewer@example.com")
    csrf = client.get_cookie("hitl_csrf").value
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/").status_code == 302


def test_logged_in_pages_render_with_csp_and_nosniff(client, auth, seeded):
    auth.login("reviewer@example.com")
    for path in page_paths(seeded):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        csp = response.headers["Content-Security-Policy"]
        if path.endswith("/evidence"):
            assert csp == EVIDENCE_CSP
        else:
            assert "script-src 'self'" in csp and "style-src 'self'" in csp, path
            assert "unsafe-inline" not in csp, path


def test_the_login_page_is_public_and_sends_the_logged_in_on(client, auth):
    response = client.get("/login?next=/runs")
    assert response.status_code == 200
    assert 'data-next="/runs"' in response.text
    assert "X-Content-Type-Options" in response.headers and "Content-Security-Policy" in response.headers
    auth.login("reviewer@example.com")
    response = client.get("/login?next=/runs")
    assert (response.status_code, response.headers["Location"]) == (302, "/runs")


@pytest.mark.parametrize(("target", "expected"), [
    ("/interventions/3", "/interventions/3"),
    ("/runs?status=running", "/runs?status=running"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("", "/"),
    (None, "/"),
])  # fmt: skip
def test_next_is_only_ever_a_local_path(target, expected):
    assert safe_next(target) == expected


def test_the_evidence_is_served_sandboxed_and_never_executable_here(client, auth, seeded):
    auth.login("reviewer@example.com")
    i = seeded["intervention"]
    evidence = client.get(f"/interventions/{i}/evidence")
    assert evidence.mimetype == "text/html"
    assert evidence.headers["Content-Security-Policy"] == (
        "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'")
    assert evidence.headers["X-Content-Type-Options"] == "nosniff"
    assert evidence.text == XSS_EXCERPT  # the page as scraped; the CSP and sandbox disarm it

    detail = client.get(f"/interventions/{i}").text
    assert XSS_EXCERPT not in detail and "onerror" not in detail  # only the iframe shows it
    frame = re.search(r"<iframe[^>]*>", detail).group(0)
    assert re.search(r"\ssandbox[\s>]", frame) and "allow-" not in frame
    assert f'src="/interventions/{i}/evidence"' in frame

    item = seeded["item"]
    evidence = client.get(f"/items/{item}/evidence")
    assert (evidence.mimetype, evidence.text) == ("text/html", XSS_EXCERPT)
    assert evidence.headers["Content-Security-Policy"] == EVIDENCE_CSP
    assert evidence.headers["X-Content-Type-Options"] == "nosniff"
    detail = client.get(f"/items/{item}").text
    assert XSS_EXCERPT not in detail and "onerror" not in detail  # fields are filled by script, as text
    frame = re.search(r"<iframe[^>]*>", detail).group(0)
    assert re.search(r"\ssandbox[\s>]", frame) and "allow-" not in frame
    assert f'src="/items/{item}/evidence"' in frame
    assert client.get("/items/999999").status_code == 404


def test_rendered_pages_have_no_inline_script_or_style(client, auth, users, seeded):
    auth.login("admin@example.com")
    for path in ["/login", *page_paths(seeded)]:
        if path.endswith("/evidence"):
            continue  # scraped HTML, under the sandbox CSP (see above)
        html = client.get(path).text
        for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
            assert re.search(r'\ssrc="/static/js/[a-z]+\.js"', tag), (path, tag)
            assert 'type="module"' in tag
        assert not re.search(r"\son\w+\s*=", html, flags=re.I), path
        assert not re.search(r"\sstyle\s*=|<style", html, flags=re.I), path
        assert "<script>" not in html


def test_every_page_script_exists_and_never_uses_inner_html(client, auth, seeded):
    auth.login("reviewer@example.com")
    for path in ["/login", *page_paths(seeded)]:
        for src in re.findall(r'<script[^>]*src="/static/([^"]+)"', client.get(path).text):
            assert (STATIC / src).is_file(), src
    for script in (STATIC / "js").glob("*.js"):
        code = script.read_text()
        assert not re.search(r"\.(innerHTML|outerHTML|insertAdjacentHTML)\b|\beval\(|document\.write",
                             code), script.name


def test_the_domain_edit_form_is_for_admins_only(client, auth, seeded):
    auth.login("reviewer@example.com")
    assert 'id="domain-form"' not in client.get("/domains/evil.test").text
    auth.login("admin@example.com")
    assert 'id="domain-form"' in client.get("/domains/evil.test").text


def test_unknown_ids_are_404_pages(client, auth, seeded):
    auth.login("reviewer@example.com")
    assert client.get("/interventions/999").status_code == 404
    assert client.get("/interventions/999/evidence").status_code == 404
    assert client.get("/runs/no-such-run").status_code == 404


def test_pages_carry_their_ids_and_the_stream_position_for_scripts(client, auth, seeded, app):
    last = app.extensions["hitl"].events.last_id()
    auth.login("reviewer@example.com")
    html = client.get(f"/interventions/{seeded['intervention']}").text
    assert f'data-intervention-id="{seeded["intervention"]}"' in html
    assert f'data-last-event-id="{last}"' in html and 'data-user-role="reviewer"' in html
    assert f'data-run-id="{seeded["run"]}"' in client.get(f"/runs/{seeded['run']}").text
