"""Redis or the database not answering: a 503 that says what is down, never a 500."""

from __future__ import annotations

import pytest

from hitl_console.app import create_app
from tests.support.console import PASSWORD, create_fixture_user


@pytest.fixture
def own_redis_app(hitl_env, hitl_schema, monkeypatch):
    from tests.support.servers import RedisServer

    server = RedisServer().start()
    monkeypatch.setenv("HITL_REDIS_URL", server.url)
    app = create_app({"login_attempts": 5, "login_window": 60})
    app.testing = True
    create_fixture_user(app.extensions["hitl"].db, "reviewer@example.com", PASSWORD, "reviewer")
    yield app, server
    app.extensions["hitl"].close()
    server.stop()


def test_redis_down_is_a_503_naming_it_for_the_api_and_the_pages(own_redis_app):
    app, server = own_redis_app
    client = app.test_client()
    token = client.post("/api/v1/auth/login", json={"email": "reviewer@example.com", "password": PASSWORD}).json
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert client.get("/api/v1/interventions", headers=headers).status_code == 200
    server.stop()

    answer = client.get("/api/v1/interventions", headers=headers)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json["error"] == "redis_unavailable" and "Redis is not answering" in answer.json["detail"]
    page = client.get("/interventions", headers={**headers, "Accept": "text/html"})
    assert page.status_code == 503
    assert b"Something the console needs is down" in page.data and b"Traceback" not in page.data


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_the_database_down_is_a_503_naming_it(own_redis_app, hitl_env, postgres_server, backend):
    import psycopg
    from sqlalchemy.engine import make_url

    app, _server = own_redis_app
    client = app.test_client()
    token = client.post("/api/v1/auth/login", json={"email": "reviewer@example.com", "password": PASSWORD}).json
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    name = make_url(hitl_env["HITL_DATABASE_URL"]).database
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            answer = client.get("/api/v1/interventions", headers=headers)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert answer.status_code == 503 and answer.json["error"] == "database_unavailable", answer.json
    assert client.get("/api/v1/interventions", headers=headers).status_code == 200  # back by itself
