"""A real crawl blocks; ``/metrics`` counts the block; the user's former system resolves it with
its own body through the API; the crawl resumes and finishes; ``/metrics`` counts the resolve.

The metrics are read with prometheus_client's own parser, as Prometheus would read them.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hitl_console.app import create_app
from tests.integration.conftest import wait_for
from tests.support.console import PASSWORD, create_fixture_user

PAGES = 6  # the sandbox serves 6 listing pages per section, 10 quotes each
METRICS_TOKEN = "metrics-token-for-the-test-0123456789"
VIP = "vip.sandbox.test"

# The body the user's former system sent once its operator had logged in by hand and exported
# the browser's cookies (its action names, its resolved_by, its captured_method).
FORMER_SYSTEM_BODY = {
    "resolution": {"action": "session_captured"},
    "resolved_by": "ops@example.com",
    "captured_session": {
        "captured_method": "manual_browser_export",
        "captured_at": "2026-12-06T05:10:00Z",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "cookies": [{"name": "vip_pass", "value": "letmein", "domain": VIP, "path": "/",
                     "expires": 1924992000, "httpOnly": True, "secure": False, "sameSite": "Lax"}],
    },
}


@pytest.fixture
def console(hitl_env, state):
    app = create_app({"metrics_token": METRICS_TOKEN})
    create_fixture_user(state.db, "reviewer@example.com", PASSWORD, "reviewer")
    client = app.test_client()
    login = client.post("/api/v1/auth/login", json={"email": "reviewer@example.com", "password": PASSWORD})
    client.bearer = {"Authorization": f"Bearer {login.json['access_token']}"}
    yield client
    app.extensions["hitl"].close()


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, as parsed by prometheus_client: (name, labels) -> value."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples}


def open_manual(samples):
    return samples[("hitl_interventions_open", (("type", "manual_access"),))]


def resolved_count(samples):
    return samples.get(("hitl_intervention_resolution_seconds_count", (("type", "manual_access"),)), 0)


def test_a_block_and_the_former_systems_resolve_move_the_metrics_and_resume_the_crawl(console, crawl):
    before = scrape(console)
    assert (open_manual(before), resolved_count(before)) == (0, 0)

    run = crawl(args={"sections": "vip"})
    run.wait_for_log("Waiting for a human")
    blocked = scrape(console)
    assert open_manual(blocked) == 1
    assert blocked[("hitl_parked_requests", (("domain", VIP),))] == 1
    assert blocked[("hitl_crawlers_live", ())] == 1

    (intervention,) = console.get("/api/v1/interventions?status=open", headers=console.bearer).json["items"]
    response = console.post(f"/api/v1/interventions/{intervention['id']}/resolve", headers=console.bearer,
                            json=FORMER_SYSTEM_BODY)
    assert response.status_code == 200, response.json
    assert response.json["requests_resumed"] == 1 and response.json["session"]["cookie_names"] == ["vip_pass"]
    resolved = response.json["intervention"]
    assert resolved["resolution"] == {"action": "cookies", "cookie_names": ["vip_pass"],
                                      "resolved_by": "ops@example.com", "captured_method": "manual_browser_export"}
    assert resolved["resolved_by"] == "console:reviewer@example.com"  # the login that called

    result = run.wait()
    assert result.stats["finish_reason"] == "finished", result.log[-3000:]
    assert result.stats["hitl/resumed"] == 1
    assert len(result.items_in("vip")) == PAGES * 10  # resumed with the former system's cookies

    after = wait_for(lambda: (s := scrape(console)) and s[("hitl_crawlers_live", ())] == 0 and s,
                     what="the crawl's heartbeat to end")
    assert open_manual(after) == 0 and resolved_count(after) == 1
    assert not [k for k in after if k[0] == "hitl_parked_requests"]
