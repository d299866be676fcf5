"""The API-keys API and ``hitl apikey``, and API-key authentication everywhere, on the real
state layer."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from hitl_console.cli import main as cli
from hitl_console.openapi import document_bytes
from scrapy_hitl.state import apikeys
from tests.support.console import PASSWORD

SPEC = json.loads(document_bytes())


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def raw_row(hitl, key_id):
    with hitl.db.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM api_keys WHERE id = :i"), {"i": key_id}).mappings().one()
    return " ".join(str(v) for v in row.values()) + bytes(row["webhook_secret"]).decode("latin-1")


# --- create, show once ---------------------------------------------------------------------------


def test_a_key_is_shown_once_and_stored_only_hashed(client, admin, hitl):
    response = client.post("/api/v1/api-keys", json={"name": "pricing bot"}, headers=admin)
    assert response.status_code == 201, response.json
    created = response.json
    key, secret = created["key"], created["webhook_secret"]
    assert key.startswith("hitl_live_") and secret.startswith("whsec_")
    assert created["name"] == "pricing bot" and created["prefix"] == key[:22]
    assert created["created_by"] == "user:admin@example.com"

    for answer in (client.get(f"/api/v1/api-keys/{created['id']}", headers=admin),
                   client.get("/api/v1/api-keys", headers=admin)):
        text_ = answer.get_data(as_text=True)
        assert answer.status_code == 200
        assert key not in text_ and key[22:] not in text_ and secret not in text_
    shown = client.get(f"/api/v1/api-keys/{created['id']}", headers=admin).json
    assert shown == {k: v for k, v in created.items() if k not in ("key", "webhook_secret")}

    stored = raw_row(hitl, created["id"])
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert key[22:] not in stored and secret[len("whsec_"):] not in stored
    assert apikeys.webhook_secrets(hitl, created["id"]) == [secret]  # encrypted, recoverable


@pytest.mark.parametrize(("body", "status", "detail"), [
    pytest.param({}, 422, {"name": "required: a name of 1 to 200 characters"}, id="no-name"),
    pytest.param({"name": " "}, 422, {"name": "required: a name of 1 to 200 characters"}, id="blank"),
    pytest.param({"name": "x" * 201}, 422, {"name": "required: a name of 1 to 200 characters"}, id="long"),
    pytest.param({"name": "bot", "scopes": ["all"]}, 422, {"scopes": "unknown field"}, id="unknown-field"),
    pytest.param(["bot"], 400, None, id="not-an-object"),
])
def test_create_refuses_bad_bodies(client, admin, body, status, detail):
    response = client.post("/api/v1/api-keys", json=body, headers=admin)
    assert response.status_code == status
    if detail is not None:
        assert response.json == {"error": "invalid", "detail": detail}


def test_only_admins_manage_keys(app, client, reviewer, hitl):
    _, key, _ = apikeys.create(hitl, "bot")
    anonymous = app.test_client()  # ``client`` keeps the reviewer's login cookie
    calls = [("post", "/api/v1/api-keys"), ("get", "/api/v1/api-keys"), ("get", "/api/v1/api-keys/1"),
             ("patch", "/api/v1/api-keys/1"), ("post", "/api/v1/api-keys/1/rotate-webhook-secret")]
    for method, path in calls:
        assert anonymous.open(path, method=method, json={"name": "x"}).status_code == 401
        as_reviewer = client.open(path, method=method, json={"name": "x"}, headers=reviewer)
        assert (as_reviewer.status_code, as_reviewer.json["error"]) == (403, "forbidden")
        as_agent = client.open(path, method=method, json={"name": "x"}, headers=bearer(key))
        assert (as_agent.status_code, as_agent.json["error"]) == (403, "forbidden")


def test_cookie_writes_need_the_csrf_token(app, users):
    browser = app.test_client()
    login = browser.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD})
    csrf = login.json["csrf_token"]
    refused = browser.post("/api/v1/api-keys", json={"name": "bot"})
    assert (refused.status_code, refused.json["error"]) == (403, "csrf_failed")
    assert browser.get("/api/v1/api-keys").json["items"] == []  # reads need no token
    created = browser.post("/api/v1/api-keys", json={"name": "bot"}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201
    key_id = created.json["id"]
    assert browser.patch(f"/api/v1/api-keys/{key_id}", json={"name": "b"}).status_code == 403
    assert browser.post(f"/api/v1/api-keys/{key_id}/rotate-webhook-secret").status_code == 403
    assert browser.patch(f"/api/v1/api-keys/{key_id}", json={"name": "b"},
                         headers={"X-CSRF-Token": csrf}).status_code == 200


# --- list, show, rename, revoke ------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "pages"), [(1, 5), (2, 3), (5, 1), (50, 1)])
def test_keys_page_by_id_oldest_first(client, admin, hitl, limit, pages):
    ids = [apikeys.create(hitl, f"bot {i}")[0]["id"] for i in range(5)]
    seen, cursor, n = [], None, 0
    while True:
        body = client.get(f"/api/v1/api-keys?limit={limit}" + (f"&cursor={cursor}" if cursor else ""),
                          headers=admin).json
        seen, cursor, n = seen + [k["id"] for k in body["items"]], body["next_cursor"], n + 1
        if cursor is None:
            break
    assert seen == ids and n == pages


def test_rename_and_revoke(client, admin, hitl):
    info, key, _ = apikeys.create(hitl, "bot")
    assert client.get("/api/v1/consultations", headers=bearer(key)).status_code == 200
    renamed = client.patch(f"/api/v1/api-keys/{info['id']}", json={"name": "pricing"}, headers=admin)
    assert (renamed.status_code, renamed.json["name"], renamed.json["revoked_at"]) == (200, "pricing", None)
    assert renamed.json["last_used_at"] is not None  # the call above
    revoked = client.patch(f"/api/v1/api-keys/{info['id']}", json={"revoked": True}, headers=admin)
    assert revoked.status_code == 200 and revoked.json["revoked_at"]
    assert client.get("/api/v1/consultations", headers=bearer(key)).status_code == 401
    back = client.patch(f"/api/v1/api-keys/{info['id']}", json={"revoked": False}, headers=admin)
    assert back.status_code == 422 and back.json["detail"] == {
        "revoked": "a revoked key stays revoked: create a new key"}


@pytest.mark.parametrize(("body", "status", "detail"), [
    pytest.param({"revoked": "yes"}, 422, {"revoked": "must be true (revoking is final)"}, id="not-bool"),
    pytest.param({"name": 5}, 422, {"name": "must be a string"}, id="name-not-string"),
    pytest.param({"name": ""}, 422, {"name": "required: a name of 1 to 200 characters"}, id="empty-name"),
    pytest.param({"owner": "x"}, 422, {"owner": "unknown field"}, id="unknown-field"),
    pytest.param("revoke", 400, "send a JSON object with Content-Type: application/json", id="not-json"),
])
def test_patch_refuses_bad_bodies(client, admin, hitl, body, status, detail):
    info, _, _ = apikeys.create(hitl, "bot")
    response = client.patch(f"/api/v1/api-keys/{info['id']}", json=body, headers=admin)
    assert (response.status_code, response.json["detail"]) == (status, detail)


def test_unknown_key_ids_are_404(client, admin):
    for method, path in (("get", "/api/v1/api-keys/99"), ("patch", "/api/v1/api-keys/99"),
                         ("post", "/api/v1/api-keys/99/rotate-webhook-secret")):
        response = client.open(path, method=method, json={"name": "x"}, headers=admin)
        assert (response.status_code, response.json["error"]) == (404, "not_found")
        assert response.json["detail"] == "No API key with id 99. List them with `hitl apikey list`."


# --- webhook secret rotation ---------------------------------------------------------------------


def test_rotation_shows_the_new_secret_once_and_keeps_the_old_one_for_a_while(client, admin, hitl):
    info, _, first = apikeys.create(hitl, "bot")
    response = client.post(f"/api/v1/api-keys/{info['id']}/rotate-webhook-secret", headers=admin)
    assert response.status_code == 200
    second = response.json["webhook_secret"]
    assert second.startswith("whsec_") and second != first
    assert response.json["previous_secret_expires_at"] is not None
    assert apikeys.webhook_secrets(hitl, info["id"]) == [second, first]
    assert second not in client.get(f"/api/v1/api-keys/{info['id']}", headers=admin).get_data(as_text=True)
    assert second[len("whsec_"):] not in raw_row(hitl, info["id"])
    now = client.post(f"/api/v1/api-keys/{info['id']}/rotate-webhook-secret", json={"grace_seconds": 0},
                      headers=admin)
    assert now.json["previous_secret_expires_at"] is None
    assert apikeys.webhook_secrets(hitl, info["id"]) == [now.json["webhook_secret"]]


def test_rotation_errors(client, admin, hitl):
    info, _, _ = apikeys.create(hitl, "bot")
    path = f"/api/v1/api-keys/{info['id']}/rotate-webhook-secret"
    bad = client.post(path, json={"grace_seconds": -1}, headers=admin)
    assert (bad.status_code, bad.json["error"], list(bad.json["detail"])) == (422, "invalid", ["grace_seconds"])
    unknown = client.post(path, json={"grace": 1}, headers=admin)
    assert (unknown.status_code, unknown.json["detail"]) == (422, {"grace": "unknown field"})
    apikeys.revoke(hitl, info["id"])
    revoked = client.post(path, headers=admin)
    assert (revoked.status_code, revoked.json["error"]) == (409, "conflict")


# --- API-key authentication ----------------------------------------------------------------------


def test_a_revoked_key_and_an_unknown_key_get_the_same_401(client, hitl):
    info, key, _ = apikeys.create(hitl, "bot")
    apikeys.revoke(hitl, info["id"])
    unknown = "hitl_live_" + "A" * 43
    answers = [client.get("/api/v1/consultations", headers=bearer(k)) for k in
               (key, unknown, key[:-2], "hitl_live_short")]
    assert {a.status_code for a in answers} == {401}
    assert all(a.get_data() == answers[0].get_data() for a in answers)
    assert answers[0].json == {"error": "unauthorized", "detail": "invalid API key"}
    # and the same on an endpoint for console users, where a valid key would be 403
    assert client.get("/api/v1/interventions", headers=bearer(key)).get_data() == answers[0].get_data()


def test_an_api_key_is_never_accepted_where_the_document_does_not_say_so(client, hitl):
    """Every documented operation: with an agent key, those whose security lists ``apiKey``
    let it in, the others answer 403 (and the open ones, such as /health, do not care)."""
    _, key, _ = apikeys.create(hitl, "bot")
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            security = op.get("security", SPEC["security"])
            if security == [] or path == "/api/v1/auth/logout":
                continue
            url = re.sub(r"\{\w+\}", "1", path)
            status = client.open(url, method=method.upper(), json={}, headers=bearer(key)).status_code
            if any("apiKey" in s for s in security):
                assert status not in (401, 403), (method, path, status)
            else:
                assert status == 403, (method, path, status)


def test_a_jwt_is_not_an_api_key(app, client, reviewer, hitl):
    body = {"title": "q"}
    response = client.post("/api/v1/consultations", json=body, headers=reviewer)
    assert (response.status_code, response.json["error"]) == (403, "forbidden")
    garbage = client.post("/api/v1/consultations", json=body, headers=bearer("not.a.jwt"))
    assert garbage.status_code == 401
    # a fresh client: ``client`` keeps the reviewer's login cookie (a console user: 403, above)
    assert app.test_client().post("/api/v1/consultations", json=body).status_code == 401


# --- hitl apikey ---------------------------------------------------------------------------------


def test_cli_create_list_revoke(hitl):
    runner = CliRunner()
    result = runner.invoke(cli, ["apikey", "create", "pricing bot", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"id", "key", "webhook_secret"}
    assert apikeys.authenticate(hitl, created["key"])["name"] == "pricing bot"

    human = runner.invoke(cli, ["apikey", "create", "other"], catch_exceptions=False)
    assert human.exit_code == 0
    assert "hitl_live_" in human.output and "whsec_" in human.output
    assert "shown only this once" in human.output

    listed = runner.invoke(cli, ["apikey", "list", "--json"], catch_exceptions=False)
    rows = json.loads(listed.output)
    assert [r["name"] for r in rows] == ["pricing bot", "other"]
    assert created["key"] not in listed.output and created["key"][:22] == rows[0]["prefix"]
    table = runner.invoke(cli, ["apikey", "list"], catch_exceptions=False).output
    assert "pricing bot" in table and created["key"] not in table and "active" in table

    revoked = runner.invoke(cli, ["apikey", "revoke", str(created["id"])], catch_exceptions=False)
    assert revoked.exit_code == 0 and "Revoked API key" in revoked.output
    assert apikeys.authenticate(hitl, created["key"]) is None
    assert "revoked" in runner.invoke(cli, ["apikey", "list"], catch_exceptions=False).output
    missing = runner.invoke(cli, ["apikey", "revoke", "999"])
    assert missing.exit_code == 1 and "No API key with id 999" in missing.output
    empty_name = runner.invoke(cli, ["apikey", "create", " "])
    assert empty_name.exit_code == 1 and "a name of 1 to 200 characters" in empty_name.output


def test_cli_show_rename_rotate(hitl):
    runner = CliRunner()
    info, _, first = apikeys.create(hitl, "bot")
    shown = runner.invoke(cli, ["apikey", "show", str(info["id"]), "--json"], catch_exceptions=False)
    assert json.loads(shown.output) == info
    assert "prefix:" in runner.invoke(cli, ["apikey", "show", str(info["id"])], catch_exceptions=False).output

    renamed = runner.invoke(cli, ["apikey", "rename", str(info["id"]), "pricing"], catch_exceptions=False)
    assert renamed.exit_code == 0 and apikeys.get(hitl, info["id"])["name"] == "pricing"
    assert runner.invoke(cli, ["apikey", "rename", str(info["id"]), " "]).exit_code == 1

    rotated = runner.invoke(cli, ["apikey", "rotate-secret", str(info["id"]), "--json"], catch_exceptions=False)
    body = json.loads(rotated.output)
    assert body["webhook_secret"].startswith("whsec_") and body["previous_secret_expires_at"]
    assert apikeys.webhook_secrets(hitl, info["id"]) == [body["webhook_secret"], first]
    now = runner.invoke(cli, ["apikey", "rotate-secret", str(info["id"]), "--grace", "0"], catch_exceptions=False)
    assert "no longer signs" in now.output and "shown only this once" in now.output
    assert len(apikeys.webhook_secrets(hitl, info["id"])) == 1
    bad = runner.invoke(cli, ["apikey", "rotate-secret", str(info["id"]), "--grace", "-5"])
    assert bad.exit_code == 1 and "an integer from 0 to 604800" in bad.output

    other = apikeys.create(hitl, "other")[0]
    runner.invoke(cli, ["apikey", "revoke", str(other["id"]), "--json"], catch_exceptions=False)
    active = json.loads(runner.invoke(cli, ["apikey", "list", "--active", "--json"], catch_exceptions=False).output)
    assert [k["id"] for k in active] == [info["id"]]
    refused = runner.invoke(cli, ["apikey", "rotate-secret", str(other["id"])])
    assert refused.exit_code == 1 and "revoked" in refused.output
    assert runner.invoke(cli, ["apikey", "show", "999"]).exit_code == 1
