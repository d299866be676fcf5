"""A run's error snapshots in the console: the list, the files as downloads, and the page and
screenshot as the run page shows them (sandboxed), on the real state layer."""

from __future__ import annotations

import pytest

from hitl_console.api.interventions import ARTIFACT_CSP
from hitl_console.pages import EVIDENCE_CSP, SCREENSHOT_CSP
from scrapy_hitl.state import runs, snapshots
from tests.console.test_artifacts import png

PAGE = b"<html><body><p>Price: <span class=price></span></p><script>alert(1)</script></body></html>"
SHOT = png()


@pytest.fixture
def kept(hitl):
    """Run r1 with two snapshots: a callback's exception (HTML only), a browser pause (both files)."""
    runs.create_run(hitl.db, "r1", "shop", {}, "/tmp")
    runs.create_run(hitl.db, "r2", "shop", {}, "/tmp")
    error = snapshots.store(hitl.db, run_id="r1", spider="shop", domain="shop.example.com",
                            source="spider_error", code="KeyError", message="'price'",
                            url="https://shop.example.com/p/1", status=200, html=("text/html; charset=utf-8", PAGE))
    pause = snapshots.store(hitl.db, run_id="r1", spider="shop", domain="shop.example.com", source="pause",
                            code="cloudflare_challenge", message="captcha_solve", tier="browser", status=403,
                            url="https://shop.example.com/p/2", html=("text/html", b"<h1>Just a moment</h1>"),
                            screenshot=SHOT)
    return error, pause


def test_a_runs_snapshots_list_and_serve_only_as_untrusted_documents(client, reviewer, kept):
    error, pause = kept
    listed = client.get("/api/v1/runs/r1/snapshots", headers=reviewer).json
    assert [(s["id"], s["source"], s["code"], s["domain"]) for s in listed["items"]] == [
        (error, "spider_error", "KeyError", "shop.example.com"), (pause, "pause", "cloudflare_challenge", "shop.example.com")]
    assert listed["next_cursor"] is None
    first = listed["items"][0]
    assert first["summary"] == "The spider's callback raised KeyError: 'price'"
    assert first["files"] == {"html": {"content_type": "text/html; charset=utf-8", "size": len(PAGE)}}
    assert set(listed["items"][1]["files"]) == {"html", "screenshot"}
    assert client.get("/api/v1/runs/r2/snapshots", headers=reviewer).json["items"] == []

    download = client.get(f"/api/v1/runs/r1/snapshots/{error}/html", headers=reviewer)
    assert download.status_code == 200 and download.data == PAGE
    assert download.headers["Content-Disposition"] == f'attachment; filename="run-r1-snapshot-{error}.html"'
    assert download.headers["Content-Security-Policy"] == ARTIFACT_CSP

    framed = client.get(f"/runs/r1/snapshots/{error}/html", headers=reviewer)  # the run page's iframe
    assert framed.status_code == 200 and framed.data == PAGE
    assert framed.headers["Content-Security-Policy"] == EVIDENCE_CSP and "Content-Disposition" not in framed.headers
    assert framed.headers["X-Content-Type-Options"] == "nosniff"

    shot = client.get(f"/runs/r1/snapshots/{pause}/screenshot", headers=reviewer)
    assert shot.status_code == 200 and shot.data == SHOT and shot.mimetype == "image/png"
    assert shot.headers["Content-Security-Policy"] == SCREENSHOT_CSP


@pytest.mark.parametrize("path", [
    "/api/v1/runs/nope/snapshots",
    "/api/v1/runs/r1/snapshots/{error}/screenshot",  # none kept: a static page
    "/api/v1/runs/r2/snapshots/{error}/html",  # another run's
    "/api/v1/runs/r1/snapshots/{error}/body",
    "/runs/r1/snapshots/{error}/screenshot",
    "/runs/r2/snapshots/{pause}/html",
])
def test_what_is_not_there_is_404(client, reviewer, kept, path):
    error, pause = kept
    assert client.get(path.format(error=error, pause=pause), headers=reviewer).status_code == 404


def test_login_is_required(client, users, kept):
    assert client.get("/api/v1/runs/r1/snapshots").status_code == 401
    assert client.get(f"/api/v1/runs/r1/snapshots/{kept[0]}/html").status_code == 401
    assert client.get(f"/runs/r1/snapshots/{kept[0]}/html").status_code == 302  # to the login page


@pytest.mark.parametrize("query", ["cursor=garbage", "cursor=WyJ4Il0", "limit=0"])  # WyJ4Il0: ["x"]
def test_bad_paging_is_400(client, reviewer, kept, query):
    response = client.get(f"/api/v1/runs/r1/snapshots?{query}", headers=reviewer)
    assert response.status_code == 400 and response.json["error"] in ("bad_cursor", "bad_request")
