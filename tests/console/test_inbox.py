"""The inbox API, the plain words behind it, a running run's counts, and the error pages."""

from __future__ import annotations

import pytest

from hitl_console import words
from scrapy_hitl.state import consultations, interventions, items, ownership, runs
from scrapy_hitl.state.parking import ParkEntry


def held_items(st, run_id: str, n: int, score: float = 0.3) -> None:
    items.record(st.db, [{"run_id": run_id, "spider": "shop", "item_type": "Product", "url": f"http://shop.test/{i}",
                          "status": "pending_review", "score": score, "data": {"name": f"p{i}"}} for i in range(n)])


def park(st, domain: str, n: int) -> None:
    st.parking.park("shop", [ParkEntry.build(domain=domain, fingerprint=f"{domain}-{i}".encode().hex(),
                                             request={"url": f"http://{domain}/{i}"}, reason="domain_paused")
                             for i in range(n)])


def test_the_inbox_lists_every_kind_by_priority_then_age_in_words(client, auth, app):
    st = app.extensions["hitl"]
    old, _ = interventions.open_or_update(st, type="manual_access", reason="http_403", domain="shop.example.com",
                                          spider="shop")
    run = runs.create_run(st.db, "run-inbox-1", "shop", {}, "/tmp")
    held_items(st, run["id"], 3)
    urgent = consultations.create(st, title="Is this the right price?", priority=80, actor="agent:1")
    anomaly, _ = interventions.open_or_update(st, type="run_anomaly", reason="item_count_drop", domain="b.test")
    park(st, "shop.example.com", 1834)

    auth.login("reviewer@example.com")
    data = client.get("/api/v1/inbox").get_json()
    kinds = [(r["kind"], r["id"]) for r in data["items"]]
    # urgent first; then priority 0, oldest first
    assert kinds == [("consultation", urgent["id"]), ("intervention", old["id"]), ("review", run["id"]),
                     ("intervention", anomaly["id"])]
    assert data["counts"] == {"interventions": 2, "reviews": 3, "consultations": 1}
    assert data["more"] is False
    first = data["items"][1]
    assert first["title"] == "403 Forbidden on shop.example.com — 1,834 requests waiting — needs a logged-in session"
    assert first["codes"] == ["manual_access", "http_403"]
    assert first["label"] == "Needs access"
    assert data["items"][2]["title"].startswith("3 items from shop held for review")
    assert data["items"][2]["href"] == f"/items?run_id={run['id']}"
    assert "requests waiting" not in data["items"][3]["title"]  # a run anomaly holds no request
    assert first["owner"] is None

    ownership.take(st, "intervention", old["id"], owner="console:ana@example.com")  # "I'm on it"
    ownership.take(st, "consultation", urgent["id"], owner="console:bo@example.com")
    owners = {r["kind"]: r["owner"] for r in client.get("/api/v1/inbox").get_json()["items"][:2]}
    assert owners == {"consultation": "bo@example.com", "intervention": "ana@example.com"}


def test_the_inbox_limit_says_when_more_are_waiting(client, auth, app):
    st = app.extensions["hitl"]
    for n in range(3):
        interventions.open_or_update(st, type="manual_access", reason="http_403", domain=f"d{n}.test")
    auth.login("reviewer@example.com")
    data = client.get("/api/v1/inbox?limit=2").get_json()
    assert len(data["items"]) == 2 and data["more"] is True
    for bad in ("0", "201", "x"):
        response = client.get(f"/api/v1/inbox?limit={bad}")
        assert response.status_code == 400
        assert response.get_json()["error"] == "bad_request"


def test_the_inbox_needs_a_login(client):
    response = client.get("/api/v1/inbox")
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_a_run_without_stats_yet_shows_its_saved_progress(client, auth, app):
    st = app.extensions["hitl"]
    run = runs.create_run(st.db, "run-progress-1", "shop", {}, "/tmp")
    runs.save_progress(st.redis, run["id"], {"requests": 12, "responses": 11, "items": 7, "parked": 2, "resumed": 0})
    auth.login("reviewer@example.com")
    listed = client.get("/api/v1/runs").get_json()["items"]
    assert listed[0]["progress"]["items"] == 7
    assert client.get(f"/api/v1/runs/{run['id']}").get_json()["progress"]["requests"] == 12
    runs.update_run(st.db, run["id"], status="completed", stats={"item_scraped_count": 7})
    assert client.get(f"/api/v1/runs/{run['id']}").get_json()["progress"] is None  # the stats say it now


@pytest.mark.parametrize(("row", "sentence"), [
    ({"type": "manual_access", "reason": "http_403", "domain": "a.test", "parked_count": 1},
     "403 Forbidden on a.test — 1 request waiting — needs a logged-in session"),
    ({"type": "login_refresh", "reason": "http_401", "domain": "a.test", "parked_count": 0},
     "401 Unauthorized on a.test — 0 requests waiting — needs fresh cookies"),
    ({"type": "captcha_solve", "reason": "cloudflare_challenge", "domain": "a.test", "parked_count": 2000},
     "cloudflare challenge on a.test — 2,000 requests waiting — needs a captcha solved"),
    ({"type": "run_anomaly", "reason": "item_count_drop", "domain": "a.test", "parked_count": 0},
     "far fewer items than usual on a.test — needs a look at the data"),
])
def test_intervention_sentences(row, sentence):
    assert words.intervention_sentence(row) == sentence


@pytest.mark.parametrize(("type_", "reason", "says"), [
    ("manual_access", "http_403", "Export the cookies"),
    ("manual_access", "session_required", "Log in through a live browser"),
    ("manual_access", "hard_block", "solving a captcha will not clear it"),
    ("captcha_solve", "recaptcha", "live page"),
    ("selector_fix", "selector_missing", "selector fixer"),
    ("login_refresh", "http_401", "Log in to the site again"),
])
def test_each_kind_of_intervention_has_its_steps(type_, reason, says):
    assert any(says in step for step in words.howto(type_, reason))


@pytest.mark.parametrize(("n", "text"), [(0, "0 cookies"), (1, "1 cookie"), (2, "2 cookies"), (1834, "1,834 cookies")])
def test_plural(n, text):
    assert words.plural(n, "cookie") == text


def test_the_words_module_is_javascript(client):
    response = client.get("/words.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert b'export const TYPES = {"manual_access": {"label": "Needs access"' in response.data


def test_an_unknown_page_is_an_error_page_with_navigation_and_the_api_answers_json(client, auth):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'id="error-page"' in html and "Nothing here" in html and 'href="/login"' in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]

    auth.login("reviewer@example.com")
    html = client.get("/no/such/page").get_data(as_text=True)
    assert 'id="nav"' in html and "Back to the inbox" in html
    assert client.get("/interventions/999999").status_code == 404

    response = client.get("/api/v1/no/such/thing")
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "detail": response.get_json()["detail"]}


def test_an_unexpected_error_is_a_500_page_for_people_and_the_json_shape_for_the_api(app, auth, client):
    def boom():
        raise RuntimeError("the database went away")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error handlers answer
    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    auth.login("reviewer@example.com")
    response = client.get("/boom")
    assert response.status_code == 500 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Something broke on our side" in html and 'id="nav"' in html
    assert "the database went away" not in html  # no internals on the page
    response = client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_server_error"
