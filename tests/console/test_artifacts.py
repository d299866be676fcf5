"""Evidence files in the console: the artifacts API, the screenshot page and the evidence
frame's document, on the real state layer (SQLite, Redis)."""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest
from sqlalchemy import select

from hitl_console.api.interventions import ARTIFACT_CSP
from hitl_console.pages import EVIDENCE_CSP, SCREENSHOT_CSP
from scrapy_hitl.state import artifacts, interventions
from scrapy_hitl.state.models import Artifact

RENDERED = (b'<!doctype html><html><head><meta charset="utf-8"><title>Blocked</title></head>'
            b"<body><h1>Just a moment\xe2\x80\xa6</h1><p>Checking your browser.</p></body></html>")
EXCERPT = "<h1>Access denied</h1>"


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG of one colour, ``width`` x ``height`` (8-bit RGB, no filter)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


SCREENSHOT = png()


def open_(hitl, domain="shop.example.com", **evidence):
    data, _ = interventions.open_or_update(
        hitl, type="manual_access", reason="http_403", domain=domain, spider="shop",
        url=f"https://{domain}/p/1", response_status=403,
        evidence={"status": 403, "body_excerpt": EXCERPT, **evidence})
    return data["id"]


@pytest.fixture
def captured(hitl):
    """An intervention from a browser tier: a screenshot and the rendered HTML."""
    intervention_id = open_(hitl, tier="browser")
    artifacts.attach(hitl.db, intervention_id, {"screenshot": ("image/png", SCREENSHOT),
                                                "html": ("text/html; charset=utf-8", RENDERED)})
    return intervention_id


def url(intervention_id, kind):
    return f"/api/v1/interventions/{intervention_id}/artifacts/{kind}"


def rows(hitl, intervention_id):
    with hitl.db.session() as s:
        return [(a.kind, a.encoding, a.size, a.data) for a in s.scalars(
            select(Artifact).where(Artifact.intervention_id == intervention_id).order_by(Artifact.kind))]


# --- the API ------------------------------------------------------------------------------------------


def test_the_files_round_trip_with_their_types_as_downloads(client, reviewer, captured):
    shot = client.get(url(captured, "screenshot"), headers=reviewer)
    assert shot.status_code == 200 and shot.data == SCREENSHOT
    assert shot.mimetype == "image/png"
    assert shot.headers["Content-Disposition"] == f'attachment; filename="intervention-{captured}-screenshot.png"'

    html = client.get(url(captured, "html"), headers=reviewer)
    assert html.status_code == 200 and html.data == RENDERED
    assert html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert html.headers["Content-Disposition"] == f'attachment; filename="intervention-{captured}-html.html"'
    for response in (shot, html):
        assert response.headers["Content-Security-Policy"] == ARTIFACT_CSP == "sandbox; default-src 'none'"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def test_text_is_stored_compressed_and_a_png_as_it_is(hitl, captured):
    stored = {kind: (encoding, size, data) for kind, encoding, size, data in rows(hitl, captured)}
    encoding, size, data = stored["html"]
    assert (encoding, size) == ("gzip", len(RENDERED))
    assert data != RENDERED and gzip.decompress(data) == RENDERED
    assert stored["screenshot"] == ("identity", len(SCREENSHOT), SCREENSHOT)


def test_the_intervention_lists_its_files_and_tier(client, reviewer, captured):
    evidence = client.get(f"/api/v1/interventions/{captured}", headers=reviewer).json["evidence"]
    assert evidence["tier"] == "browser" and evidence["body_excerpt"] == EXCERPT
    assert set(evidence["artifacts"]) == {"screenshot", "html"}
    assert evidence["artifacts"]["html"]["content_type"] == "text/html; charset=utf-8"
    assert evidence["artifacts"]["html"]["size"] == len(RENDERED)
    assert evidence["artifacts"]["screenshot"]["size"] == len(SCREENSHOT)


def test_a_newer_capture_replaces_the_older_one(client, hitl, reviewer, captured):
    before = client.get(f"/api/v1/interventions/{captured}", headers=reviewer).json["evidence"]["artifacts"]
    newer = png(8, 8, (0, 90, 200))
    artifacts.attach(hitl.db, captured, {"screenshot": ("image/png", newer)})
    assert [kind for kind, *_ in rows(hitl, captured)] == ["html", "screenshot"]  # one row per kind
    assert client.get(url(captured, "screenshot"), headers=reviewer).data == newer
    after = client.get(f"/api/v1/interventions/{captured}", headers=reviewer).json["evidence"]["artifacts"]
    assert after["screenshot"]["id"] != before["screenshot"]["id"]
    assert after["screenshot"]["size"] == len(newer) and after["html"] == before["html"]


def test_a_body_keeps_the_type_the_site_sent(client, hitl, reviewer):
    intervention_id = open_(hitl, tier="static")
    artifacts.attach(hitl.db, intervention_id, {"body": ("application/json", b'{"blocked": true}')})
    body = client.get(url(intervention_id, "body"), headers=reviewer)
    assert (body.status_code, body.mimetype, body.data) == (200, "application/json", b'{"blocked": true}')
    assert body.headers["Content-Disposition"].endswith(f'filename="intervention-{intervention_id}-body.json"')
    assert body.headers["Content-Security-Policy"] == ARTIFACT_CSP


def test_the_cookie_login_works_too_and_nobody_else_gets_in(client, auth, captured):
    assert client.get(url(captured, "html")).status_code == 401
    assert client.get(url(captured, "html")).json["error"] == "unauthorized"
    auth.login("reviewer@example.com")  # the browser's cookie: what the download links use
    assert client.get(url(captured, "html")).data == RENDERED


def test_an_admin_may_download_too(client, auth, captured):
    assert client.get(url(captured, "screenshot"), headers=auth.bearer("admin@example.com")).data == SCREENSHOT


@pytest.mark.parametrize(("path", "detail"), [
    ("{id}/artifacts/cookies", "Unknown artifact kind 'cookies'"),
    ("{id}/artifacts/body", "has no body"),
    ("999/artifacts/html", "No intervention with id 999"),
    ("999/artifacts/nope", "Unknown artifact kind"),
])  # fmt: skip
def test_what_is_not_there_is_a_json_404(client, reviewer, captured, path, detail):
    response = client.get("/api/v1/interventions/" + path.format(id=captured), headers=reviewer)
    assert response.status_code == 404 and response.mimetype == "application/json"
    assert response.json["error"] == "not_found" and detail in response.json["detail"]


# --- the pages ----------------------------------------------------------------------------------------


def test_the_screenshot_page_serves_the_png_inline(client, auth, captured):
    assert client.get(f"/interventions/{captured}/screenshot").status_code == 302  # to the login page
    auth.login("reviewer@example.com")
    response = client.get(f"/interventions/{captured}/screenshot")
    assert (response.status_code, response.mimetype, response.data) == (200, "image/png", SCREENSHOT)
    assert "Content-Disposition" not in response.headers
    assert response.headers["Content-Security-Policy"] == SCREENSHOT_CSP == "default-src 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_no_screenshot_or_one_that_is_not_a_png_is_a_404(client, auth, hitl):
    auth.login("reviewer@example.com")
    plain = open_(hitl)
    assert client.get(f"/interventions/{plain}/screenshot").status_code == 404
    assert client.get("/interventions/999/screenshot").status_code == 404
    artifacts.attach(hitl.db, plain, {"screenshot": ("image/png", b"<script>alert(1)</script>")})
    assert client.get(f"/interventions/{plain}/screenshot").status_code == 404


def test_the_evidence_frame_shows_the_rendered_page_sandboxed(client, auth, captured):
    auth.login("reviewer@example.com")
    response = client.get(f"/interventions/{captured}/evidence")
    assert response.status_code == 200 and response.data == RENDERED
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == EVIDENCE_CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = client.get(f"/interventions/{captured}").text
    assert 'data-source="html"' in page and "rendered" in page


def test_the_evidence_frame_falls_back_to_a_text_body_then_the_excerpt(client, auth, hitl):
    auth.login("reviewer@example.com")
    without = open_(hitl)
    response = client.get(f"/interventions/{without}/evidence")
    assert response.text == EXCERPT and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == EVIDENCE_CSP
    assert 'data-source="excerpt"' in client.get(f"/interventions/{without}").text

    latin = "<p>Accès refusé</p>".encode("latin-1")
    body = open_(hitl, domain="blog.example.com")
    artifacts.attach(hitl.db, body, {"body": ("text/html; charset=iso-8859-1", latin)})
    response = client.get(f"/interventions/{body}/evidence")
    assert response.data == latin and response.headers["Content-Type"] == "text/html; charset=iso-8859-1"
    assert response.headers["Content-Security-Policy"] == EVIDENCE_CSP
    assert 'data-source="body"' in client.get(f"/interventions/{body}").text

    binary = open_(hitl, domain="img.example.com")
    artifacts.attach(hitl.db, binary, {"body": ("image/gif", b"GIF89a...")})
    assert client.get(f"/interventions/{binary}/evidence").text == EXCERPT


def test_without_any_html_the_page_says_so(client, auth, hitl):
    auth.login("reviewer@example.com")
    data, _ = interventions.open_or_update(hitl, type="manual_access", reason="http_403",
                                           domain="bare.example.com", spider="shop")
    page = client.get(f"/interventions/{data['id']}").text
    assert 'id="no-excerpt"' in page and "evidence-frame" not in page
    response = client.get(f"/interventions/{data['id']}/evidence")
    assert response.data == b"" and response.headers["Content-Security-Policy"] == EVIDENCE_CSP
