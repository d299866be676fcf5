"""Console fixtures: an app on the isolated state of ``hitl_env``, a client, users."""

from __future__ import annotations

import pytest

from hitl_console.app import create_app
from tests.support.console import PASSWORD, create_fixture_user


@pytest.fixture
def app(hitl_env, hitl_schema):
    app = create_app({"login_attempts": 5, "login_window": 60})
    app.testing = True
    yield app
    app.extensions["hitl"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def users(app):
    db = app.extensions["hitl"].db
    return {
        "admin": create_fixture_user(db, "admin@example.com", PASSWORD, "admin"),
        "reviewer": create_fixture_user(db, "reviewer@example.com", PASSWORD, "reviewer"),
    }


class Auth:
    """Log in as a user; gives a Bearer header, or leaves the browser cookies in the client."""

    def __init__(self, client):
        self.client = client

    def login(self, email: str, password: str = PASSWORD):
        return self.client.post("/api/v1/auth/login", json={"email": email, "password": password})

    def bearer(self, email: str) -> dict[str, str]:
        response = self.login(email)
        assert response.status_code == 200, response.json
        return {"Authorization": f"Bearer {response.json['access_token']}"}


@pytest.fixture
def auth(client, users):
    return Auth(client)


@pytest.fixture
def hitl(app):
    """The app's own state: what the API reads and writes."""
    return app.extensions["hitl"]


@pytest.fixture
def reviewer(auth):
    """Bearer headers of the fixture reviewer."""
    return auth.bearer("reviewer@example.com")


@pytest.fixture
def admin(auth):
    """Bearer headers of the fixture admin."""
    return auth.bearer("admin@example.com")


@pytest.fixture
def console_server(hitl_env, state, tmp_path):
    """``hitl console`` (gunicorn, gthread) on a free port, serving this test's state.

    Gives ``.url`` (http://127.0.0.1:PORT), ``.ws_url``, ``.login(email)``, ``.ws(...)``,
    ``.request(...)`` and ``.key`` (the JWT signing key, to forge tokens). Depends on
    ``state`` so the database is migrated before the server opens it.
    """
    from tests.support.console import RunningConsole

    server = RunningConsole(hitl_env, str(tmp_path / "console.log")).start()
    yield server
    server.kill()
