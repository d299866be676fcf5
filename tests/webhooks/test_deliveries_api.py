"""``GET /api/v1/consultations/{id}/deliveries`` and ``POST .../redeliver``, every answer checked
against the OpenAPI document (the strict copy: no undocumented field)."""

from __future__ import annotations

import pytest
from openapi_core import OpenAPI
from openapi_core.validation.request.exceptions import SecurityValidationError
from rq import Queue

from hitl_console.webhooks.config import WebhookConfig
from hitl_console.webhooks.delivery import deliver_event
from scrapy_hitl.state import apikeys, consultations, webhook_events
from tests.console.test_openapi import SPEC, Recorder, mismatches, strict
from tests.webhooks.conftest import event_ids

CONFIG = WebhookConfig(allow_private=True, retry_schedule=(0.0,), timeout=2)


@pytest.fixture(scope="module")
def openapi():
    return OpenAPI.from_dict(SPEC), OpenAPI.from_dict(strict(SPEC))


@pytest.fixture
def recorder(app, openapi):
    """Records every call; at teardown, each must match the document. ``recorder.refused``
    maps a call's index to the error the document must refuse that request with."""
    recorder = Recorder(app.wsgi_app)
    recorder.refused = {}
    app.wsgi_app = recorder
    yield recorder
    assert mismatches(openapi, recorder, recorder.refused) == []


@pytest.fixture
def agents(hitl):
    out = {}
    for name in ("a", "b"):
        info, key, _ = apikeys.create(hitl, f"agent {name}")
        out[name] = (info["id"], {"Authorization": f"Bearer {key}"})
    return out


@pytest.fixture
def delivered(hitl, agents, receiver, webhook_env):
    """Agent a's consultation, answered, its webhook delivered."""
    key_id, _headers = agents["a"]
    asked = consultations.create(hitl, title="Right person?", options=["yes", "no"],
                                 callback_url=receiver().url, api_key_id=key_id)
    consultations.respond(hitl, asked["id"], "yes", actor="user:reviewer@example.com")
    (event_id,) = event_ids(hitl, asked["id"])
    assert deliver_event(hitl, CONFIG, event_id) == "delivered"
    return asked["id"], event_id


def test_reviewers_and_the_asking_agent_read_the_deliveries(app, client, auth, agents, delivered, recorder):
    consultation_id, _ = delivered
    reviewer = auth.bearer("reviewer@example.com")
    url = f"/api/v1/consultations/{consultation_id}/deliveries"
    as_reviewer = client.get(url, headers=reviewer)
    assert as_reviewer.status_code == 200
    (webhook,) = as_reviewer.json["webhooks"]
    (attempt,) = as_reviewer.json["attempts"]
    assert (webhook["state"], webhook["attempts"], webhook["next_attempt_at"]) == ("delivered", 1, None)
    assert (attempt["attempt"], attempt["status_code"], attempt["webhook_id"]) == (1, 200, webhook["webhook_id"])
    assert client.get(url, headers=agents["a"][1]).json == as_reviewer.json
    other = client.get(url, headers=agents["b"][1])
    assert (other.status_code, other.json["error"]) == (404, "not_found")  # as if it did not exist
    assert client.get("/api/v1/consultations/999/deliveries", headers=reviewer).status_code == 404
    recorder.refused[len(recorder.calls)] = SecurityValidationError
    assert app.test_client(use_cookies=False).get(url).status_code == 401  # no login


def test_a_reviewer_redelivers_with_the_same_webhook_id(app, client, auth, hitl, agents, delivered, recorder):
    consultation_id, event_id = delivered
    reviewer = auth.bearer("reviewer@example.com")
    url = f"/api/v1/consultations/{consultation_id}/redeliver"
    assert client.post(url, headers=agents["a"][1]).status_code == 403  # agents cannot
    queue = Queue(webhook_events.QUEUE, connection=hitl.redis)
    queue.empty()
    response = client.post(url, headers=reviewer)
    assert response.status_code == 202
    assert response.json["webhook"]["state"] == "pending" and len(queue) == 1
    assert deliver_event(hitl, CONFIG, event_id) == "delivered"
    log = client.get(f"/api/v1/consultations/{consultation_id}/deliveries", headers=reviewer).json
    assert [a["attempt"] for a in log["attempts"]] == [1, 2]
    assert {a["webhook_id"] for a in log["attempts"]} == {log["webhooks"][0]["webhook_id"]}
    history = consultations.get(hitl, consultation_id)["history"]
    assert ("redeliver", "user:reviewer@example.com") in [(h["action"], h["actor"]) for h in history]


def test_redeliver_from_the_browser_needs_the_csrf_token(client, auth, delivered, recorder):
    consultation_id, _ = delivered
    login = auth.login("reviewer@example.com")  # the browser: cookies
    url = f"/api/v1/consultations/{consultation_id}/redeliver"
    refused = client.post(url)
    assert (refused.status_code, refused.json["error"]) == (403, "csrf_failed")
    assert client.post(url, headers={"X-CSRF-Token": login.json["csrf_token"]}).status_code == 202


def test_redeliver_refusals(client, auth, hitl, agents, delivered, recorder):
    consultation_id, _ = delivered
    reviewer = auth.bearer("reviewer@example.com")
    quiet = consultations.create(hitl, title="No callback", options=["a"], api_key_id=agents["a"][0])
    nothing = client.post(f"/api/v1/consultations/{quiet['id']}/redeliver", headers=reviewer)
    assert (nothing.status_code, nothing.json["error"]) == (409, "no_webhook")
    assert client.post("/api/v1/consultations/999/redeliver", headers=reviewer).status_code == 404
    apikeys.disable_webhook(hitl, agents["a"][0])
    gone = client.post(f"/api/v1/consultations/{consultation_id}/redeliver", headers=reviewer)
    assert (gone.status_code, gone.json["error"]) == (409, "webhook_disabled")
