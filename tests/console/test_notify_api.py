"""The notifications API on the real state layer: channels (Apprise URLs checked, stored
encrypted, answered redacted), rules, the messages' audit, "I'm on it", and /health."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from scrapy_hitl.state import consultations, interventions, notify_channels
from tests.notify.conftest import free_port

SLACK = "slack://T1234ABCD/B5678EFGH/SeCrEtToKeN0123456789abcd"


def test_a_channel_is_checked_stored_encrypted_and_answered_redacted(client, admin, hitl):
    response = client.post("/api/v1/notify/channels", json={"url": SLACK, "name": "team"}, headers=admin)
    assert response.status_code == 201, response.json
    channel = response.json
    assert channel["name"] == "team" and channel["scheme"] == "slack" and not channel["failing"]
    assert "SeCrEtToKeN" not in channel["url"] and channel["url"].startswith("slack://T...D/")
    listed = client.get("/api/v1/notify/channels", headers=admin).json["items"]
    assert [c["name"] for c in listed] == ["team"] and "SeCrEtToKeN" not in str(listed)
    with hitl.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT url_secret FROM notify_channels")).scalar_one()
    assert b"SeCrEtToKeN" not in bytes(stored)
    assert notify_channels.secret_url(hitl, channel["id"]) == SLACK
    # the first channel brings the default rules: every intervention, high-priority consultations
    rules = client.get("/api/v1/notify/rules", headers=admin).json["items"]
    assert [(r["event"], r["filters"], r["channels"]) for r in rules] == [
        ("intervention.created", {}, []), ("consultation.created", {"min_priority": 50}, [])]


def test_bad_channels_and_rules_get_422_naming_the_problem(client, admin):
    unknown = client.post("/api/v1/notify/channels", json={"url": "foo://bar"}, headers=admin)
    assert unknown.status_code == 422
    assert unknown.json["detail"]["url"].startswith("Apprise does not know the scheme foo://")
    incomplete = client.post("/api/v1/notify/channels", json={"url": "slack://only-one-part"}, headers=admin)
    assert incomplete.status_code == 422 and "not a valid slack:// URL" in incomplete.json["detail"]["url"]
    assert client.post("/api/v1/notify/channels", json={"url": SLACK, "name": "a"}, headers=admin).status_code == 201
    again = client.post("/api/v1/notify/channels", json={"url": SLACK, "name": "a"}, headers=admin)
    assert again.status_code == 422 and "exists already" in again.json["detail"]["name"]

    bad = client.post("/api/v1/notify/rules", headers=admin, json={
        "event": "intervention.exploded", "channels": ["nowhere"], "filters": {"types": ["captcha"]},
        "escalate": [{"after": -1, "channel": "a"}]})
    assert bad.status_code == 422
    detail = bad.json["detail"]
    assert detail["event"].startswith("unknown event 'intervention.exploded'; one of intervention.created")
    assert detail["channels"] == "unknown channel 'nowhere'; see `hitl notify list`"
    assert "filters.types" in detail and "escalate[0].after" in detail
    run_rule = client.post("/api/v1/notify/rules", headers=admin, json={
        "event": "run.failed", "escalate": [{"after": 60, "channel": "a"}]})
    assert run_rule.status_code == 422 and "only rules on" in run_rule.json["detail"]["escalate"]
    assert client.post("/api/v1/notify/rules", data="x", headers=admin).status_code == 400
    assert client.patch("/api/v1/notify/rules/999", json={}, headers=admin).status_code == 404


def test_rules_are_edited_and_only_admins_manage_channels(client, admin, reviewer):
    client.post("/api/v1/notify/channels", json={"url": SLACK, "name": "team"}, headers=admin)
    made = client.post("/api/v1/notify/rules", headers=admin, json={
        "event": "intervention.created", "name": "captchas", "channels": ["team"],
        "filters": {"types": ["captcha_solve"], "domains": ["*.Example.com"]},
        "escalate": [{"after": 900, "channel": "team"}]})
    assert made.status_code == 201, made.json
    rule = made.json
    assert rule["filters"] == {"types": ["captcha_solve"], "domains": ["*.example.com"]}
    assert rule["escalate"] == [{"after": 900.0, "channel": rule["channels"][0]}]
    off = client.patch(f"/api/v1/notify/rules/{rule['id']}", json={"enabled": False}, headers=admin)
    assert off.status_code == 200 and off.json["enabled"] is False and off.json["name"] == "captchas"
    assert client.get("/api/v1/notify/channels", headers=reviewer).status_code == 403
    assert client.post("/api/v1/notify/rules", json={"event": "run.failed"}, headers=reviewer).status_code == 403
    assert client.get("/api/v1/notifications", headers=reviewer).status_code == 200
    assert client.delete(f"/api/v1/notify/rules/{rule['id']}", headers=admin).status_code == 200


def test_a_test_message_to_an_unreachable_smtp_server_reports_the_answer(client, admin):
    url = f"mailto://127.0.0.1:{free_port()}?from=hitl@example.org&to=ops@example.org&mode=insecure"
    channel = client.post("/api/v1/notify/channels", json={"url": url, "name": "mail"}, headers=admin).json
    result = client.post(f"/api/v1/notify/channels/{channel['id']}/test", headers=admin)
    assert result.status_code == 200
    assert result.json["outcome"] == "failed" and "Connection refused" in result.json["error"]
    (sent,) = client.get("/api/v1/notifications", headers=admin).json["items"]
    assert sent["event_type"] == "test" and sent["state"] == "failed" and sent["channel"] == "mail"
    (attempt,) = client.get(f"/api/v1/notifications/{sent['id']}/attempts", headers=admin).json["items"]
    assert attempt["outcome"] == "error" and "Connection refused" in attempt["error"]
    assert client.get("/api/v1/notifications/999/attempts", headers=admin).status_code == 404


def test_a_channel_that_keeps_failing_is_flagged_on_health(client, admin, hitl):
    url = f"json://127.0.0.1:{free_port()}/x"
    channel = client.post("/api/v1/notify/channels", json={"url": url, "name": "hook"}, headers=admin).json
    assert client.get("/health").json["notifications"] == {"ok": True, "failing_channels": []}
    for _ in range(3):  # HITL_NOTIFY_FAILING_AFTER
        client.post(f"/api/v1/notify/channels/{channel['id']}/test", headers=admin)
    health = client.get("/health")
    assert health.status_code == 200 and health.json["status"] == "ok"  # flagged, still ready
    assert health.json["notifications"] == {"ok": False, "failing_channels": ["hook"]}
    (listed,) = client.get("/api/v1/notify/channels", headers=admin).json["items"]
    assert listed["failing"] and listed["failures"] == 3


def test_im_on_it_shows_the_owner_and_a_closed_item_cannot_be_taken(client, reviewer, hitl):
    opened, _ = interventions.open_or_update(hitl, type="manual_access", reason="http_403", domain="shop.example.com")
    taken = client.post(f"/api/v1/interventions/{opened['id']}/owner", headers=reviewer)
    assert taken.status_code == 200 and taken.json["owner"] == "reviewer@example.com"
    shown = client.get(f"/api/v1/interventions/{opened['id']}", headers=reviewer).json
    assert shown["owner"] == "reviewer@example.com" and shown["owned_at"]
    assert shown["history"][-1]["action"] == "owned"
    listed = client.get("/api/v1/interventions", headers=reviewer).json["items"]
    assert listed[0]["owner"] == "reviewer@example.com"
    released = client.delete(f"/api/v1/interventions/{opened['id']}/owner", headers=reviewer)
    assert released.status_code == 200 and released.json["owner"] is None
    interventions.cancel(hitl, opened["id"], actor="test")
    closed = client.post(f"/api/v1/interventions/{opened['id']}/owner", headers=reviewer)
    assert closed.status_code == 409 and closed.json["error"] == "closed"
    assert client.post("/api/v1/interventions/999/owner", headers=reviewer).status_code == 404

    asked = consultations.create(hitl, title="Is this the same shop?", options=["yes", "no"], actor="cli")
    taken = client.post(f"/api/v1/consultations/{asked['id']}/owner", headers=reviewer)
    assert taken.status_code == 200
    assert client.get(f"/api/v1/consultations/{asked['id']}", headers=reviewer).json["owner"] == "reviewer@example.com"


def test_a_failed_attempt_never_shows_the_channels_token(client, admin, reviewer, hitl):
    """Apprise's connection errors quote the request's URL, whose path is the service's token
    (Slack, Discord, Telegram, Mattermost...): the audit, the channel's health and the answers
    say the error with the token masked."""
    token = "SeCrEtToKeN0123456789abcd"
    url = f"mmost://127.0.0.1:{free_port()}/{token}"
    channel = client.post("/api/v1/notify/channels", json={"url": url, "name": "mm"}, headers=admin).json
    result = client.post(f"/api/v1/notify/channels/{channel['id']}/test", headers=admin)
    assert result.json["outcome"] == "failed" and "Connection refused" in result.json["error"]
    (sent,) = client.get("/api/v1/notifications", headers=reviewer).json["items"]
    attempts = client.get(f"/api/v1/notifications/{sent['id']}/attempts", headers=reviewer).json["items"]
    channels = client.get("/api/v1/notify/channels", headers=admin).json["items"]
    with hitl.db.engine.connect() as conn:
        stored = [conn.execute(text(f"SELECT * FROM {table}")).all()
                  for table in ("notifications", "notification_attempts", "notify_channels")]
    for shown in (result.json, sent, attempts, channels, stored):
        assert token not in str(shown)
    assert "/hooks/****" in attempts[0]["error"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_ids_past_range_odd_digits_and_nul_bytes_are_refused_not_500(client, admin, hitl):
    """Channel refs a column cannot hold (past 2**31 - 1: SQLite's OverflowError, PostgreSQL's
    'integer out of range'), digits int() does not read ('²'.isdigit() is true), NUL bytes
    (PostgreSQL refuses the query) and lone surrogates (no UTF-8) get the one JSON error."""
    assert client.post("/api/v1/notify/channels", json={"url": SLACK, "name": "team"}, headers=admin).status_code == 201
    for ref in (2**70, str(2**70), "²", "a\x00", "a\ud800"):
        for body in ({"event": "run.failed", "channels": [ref]},
                     {"event": "intervention.created", "escalate": [{"after": 60, "channel": ref}]}):
            refused = client.post("/api/v1/notify/rules", json=body, headers=admin)
            assert refused.status_code == 422 and "unknown channel" in str(refused.json["detail"]), (ref, body)
    for bad in ("a\x00b", "a\ud800b"):  # a NUL byte; a lone surrogate, which UTF-8 cannot encode
        named = client.post("/api/v1/notify/rules", json={"event": "run.failed", "name": bad}, headers=admin)
        assert named.status_code == 422 and "name" in named.json["detail"]
        channel = client.post("/api/v1/notify/channels", json={"url": SLACK, "name": bad}, headers=admin)
        assert channel.status_code == 422 and "name" in channel.json["detail"]
        url = client.post("/api/v1/notify/channels", json={"url": f"json://host/{bad}", "name": "j"}, headers=admin)
        assert url.status_code == 422 and "url" in url.json["detail"]
    for value in ("²", str(2**70)):
        listed = client.get(f"/api/v1/notifications?channel_id={value}", headers=admin)
        assert listed.status_code == 400 and listed.json["error"] == "bad_request", value
    with pytest.raises(notify_channels.ChannelNotFound):
        notify_channels.get(hitl, "²")  # `hitl notify test ²`


def test_headers_and_parameters_of_a_json_channel_are_redacted(client, admin, hitl):
    """Apprise's privacy form keeps json://, form:// and xml:// URLs' custom headers
    (``+Authorization=...``), GET parameters (``-key=...``) and payload fields (``:key=...``)
    in clear, and a JSON endpoint's bearer token is usually one of them."""
    url = (f"jsons://127.0.0.1:{free_port()}/hook?+Authorization=Bearer%20HdRtOkEn42&-apikey=QuErYkEy42"
           "&:extra=PaYlOaDkEy42")
    channel = client.post("/api/v1/notify/channels", json={"url": url, "name": "hook"}, headers=admin)
    assert channel.status_code == 201, channel.json
    shown = channel.json["url"]
    assert "Authorization" in shown and "apikey" in shown and "extra" in shown  # the names stay
    result = client.post(f"/api/v1/notify/channels/{channel.json['id']}/test", headers=admin).json
    assert result["outcome"] == "failed"
    with hitl.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM notify_channels")).all()
    for where in (shown, result, client.get("/api/v1/notify/channels", headers=admin).json, stored):
        for secret in ("HdRtOkEn42", "QuErYkEy42", "PaYlOaDkEy42"):
            assert secret not in str(where)
