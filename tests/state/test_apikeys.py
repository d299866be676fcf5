"""Tests for scrapy_hitl.state.apikeys, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from scrapy_hitl.state import apikeys
from scrapy_hitl.state.apikeys import ApiKeyError, ApiKeyNotFound
from scrapy_hitl.state.models import ApiKey, utcnow

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    """Overrides the conftest fixture: every test here runs on both databases."""
    return request.param


def raw_row(state, key_id):
    with state.db.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM api_keys WHERE id = :i"), {"i": key_id}).mappings().one()


def test_create_shows_the_key_once_and_stores_only_its_hash(state):
    info, key, secret = apikeys.create(state, "  pricing bot ", created_by="user:admin@example.com")
    assert key.startswith("hitl_live_") and len(key) == len("hitl_live_") + 43
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[len("whsec_"):])) == 32
    assert info["name"] == "pricing bot" and info["created_by"] == "user:admin@example.com"
    assert info["prefix"] == key[:22] and key.startswith(info["prefix"])
    assert (info["last_used_at"], info["revoked_at"], info["webhook_disabled_at"]) == (None, None, None)
    assert not {"key", "key_hash", "webhook_secret"} & set(info)

    row = raw_row(state, info["id"])
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    stored = " ".join(str(v) for v in row.values()) + bytes(row["webhook_secret"]).decode("latin-1")
    assert key not in stored and key[22:] not in stored  # no plaintext key, not even its secret part
    assert secret not in stored and secret[len("whsec_"):] not in stored  # the secret is encrypted
    assert apikeys.webhook_secrets(state, info["id"]) == [secret]


def test_keys_are_distinct(state):
    keys = {apikeys.create(state, f"bot {i}")[1] for i in range(5)}
    assert len(keys) == 5


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, None, 5])
def test_create_refuses_a_bad_name(state, name):
    with pytest.raises(ApiKeyError) as excinfo:
        apikeys.create(state, name)
    assert excinfo.value.field == "name"


def test_authenticate_accepts_the_key_and_refuses_everything_else(state):
    info, key, _ = apikeys.create(state, "bot")
    other_info, other, _ = apikeys.create(state, "other")
    assert apikeys.authenticate(state, key)["id"] == info["id"]
    assert apikeys.authenticate(state, other)["id"] == other_info["id"]
    wrong_tail = key[:22] + ("A" if key[22] != "A" else "B") + key[23:]
    for presented in (wrong_tail, key[:-1], key + "x", "hitl_live_", "", "Bearer " + key,
                      key.replace("hitl_live_", "hitl_test_"), "hitl_live_" + "A" * 43):
        assert apikeys.authenticate(state, presented) is None, presented


def test_a_revoked_key_is_refused_like_an_unknown_one(state):
    info, key, _ = apikeys.create(state, "bot")
    revoked = apikeys.revoke(state, info["id"])
    assert revoked["revoked_at"] is not None
    assert apikeys.authenticate(state, key) is None
    assert apikeys.revoke(state, info["id"])["revoked_at"] == revoked["revoked_at"]  # idempotent
    with pytest.raises(ApiKeyError, match="a revoked key stays revoked"):
        apikeys.update(state, info["id"], revoked=False)


def test_last_used_is_written_at_most_once_a_minute(state):
    info, key, _ = apikeys.create(state, "bot")
    first = apikeys.authenticate(state, key)["last_used_at"]
    assert first is not None
    assert apikeys.get(state, info["id"])["last_used_at"] == first
    assert apikeys.authenticate(state, key)["last_used_at"] == first  # within the minute: no write
    with state.db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.id == info["id"])
                  .values(last_used_at=utcnow() - timedelta(seconds=61)))
    later = apikeys.authenticate(state, key)["last_used_at"]
    assert later > first and apikeys.get(state, info["id"])["last_used_at"] == later


def test_list_get_and_rename(state):
    ids = [apikeys.create(state, f"bot {i}")[0]["id"] for i in range(3)]
    assert [k["id"] for k in apikeys.list_(state)] == ids
    assert [k["id"] for k in apikeys.list_(state, after=ids[0], limit=1)] == [ids[1]]
    apikeys.revoke(state, ids[1])
    assert [k["id"] for k in apikeys.list_(state, include_revoked=False)] == [ids[0], ids[2]]
    assert apikeys.update(state, ids[0], name="renamed")["name"] == "renamed"
    assert apikeys.get(state, ids[0])["name"] == "renamed"
    for fn in (apikeys.get, apikeys.revoke, apikeys.webhook_secrets):
        with pytest.raises(ApiKeyNotFound, match="No API key with id 999"):
            fn(state, 999)


def test_rotation_keeps_the_previous_secret_for_the_grace_period(state):
    info, _key, first = apikeys.create(state, "bot")
    rotated, second = apikeys.rotate_webhook_secret(state, info["id"], grace_seconds=3600)
    assert second != first and second.startswith("whsec_")
    assert rotated["previous_secret_expires_at"] is not None
    assert apikeys.webhook_secrets(state, info["id"]) == [second, first]  # both sign meanwhile
    with state.db.session() as s:  # the grace period ends
        s.execute(update(ApiKey).where(ApiKey.id == info["id"])
                  .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1)))
    assert apikeys.webhook_secrets(state, info["id"]) == [second]
    _, third = apikeys.rotate_webhook_secret(state, info["id"], grace_seconds=0)
    assert apikeys.webhook_secrets(state, info["id"]) == [third]
    assert second not in " ".join(str(v) for v in raw_row(state, info["id"]).values())


@pytest.mark.parametrize("grace", [-1, 7 * 24 * 3600 + 1, "60", True, 1.5])
def test_rotation_refuses_a_bad_grace_period(state, grace):
    info, _, _ = apikeys.create(state, "bot")
    with pytest.raises(ApiKeyError) as excinfo:
        apikeys.rotate_webhook_secret(state, info["id"], grace_seconds=grace)
    assert excinfo.value.field == "grace_seconds"


def test_a_revoked_key_cannot_rotate(state):
    info, _, _ = apikeys.create(state, "bot")
    apikeys.revoke(state, info["id"])
    with pytest.raises(ApiKeyError) as excinfo:
        apikeys.rotate_webhook_secret(state, info["id"])
    assert excinfo.value.status == 409


def test_secrets_need_the_same_secret_key(state):
    info, _, _ = apikeys.create(state, "bot")
    elsewhere = dataclasses.replace(state, config=dataclasses.replace(state.config, secret_key="another"))
    with pytest.raises(RuntimeError, match="stored with another HITL_SECRET_KEY"):
        apikeys.webhook_secrets(elsewhere, info["id"])


def test_disable_webhook(state):
    info, _, _ = apikeys.create(state, "bot")
    disabled = apikeys.disable_webhook(state, info["id"])
    assert disabled["webhook_disabled_at"] is not None
    assert apikeys.disable_webhook(state, info["id"])["webhook_disabled_at"] == disabled["webhook_disabled_at"]
