"""The console as users run it: `hitl user create`, `hitl console` (gunicorn), /health."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner

from hitl_console.cli import main
from tests.support.servers import free_port


def test_health_reports_database_redis_and_last_event_age(client, app):
    app.extensions["hitl"].events.emit("domain.resumed", {"parked": 0}, domain="a.example")
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok" and body["database"]["ok"] and body["redis"]["ok"]
    assert 0 <= body["last_event_age_seconds"] < 60


def test_user_create_from_the_cli(hitl_env, client):
    result = CliRunner().invoke(main, ["user", "create", "boss@example.com", "--role", "admin",
                                       "--password", "long enough pw"])
    assert result.exit_code == 0, result.output
    assert "Created admin boss@example.com" in result.output
    again = CliRunner().invoke(main, ["user", "create", "boss@example.com", "--password", "long enough pw"])
    assert again.exit_code == 1 and "already exists" in again.output
    short = CliRunner().invoke(main, ["user", "create", "x@example.com", "--password", "short"])
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    login = client.post("/api/v1/auth/login", json={"email": "boss@example.com", "password": "long enough pw"})
    assert login.status_code == 200 and login.json["user"]["role"] == "admin"


def test_hitl_console_serves_with_gunicorn(hitl_env):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hitl_console.cli", "console", "--port", str(port)],
                            env={**os.environ, **hitl_env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.loads(r.read())
                    assert r.headers["X-Content-Type-Options"] == "nosniff"
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode() if proc.poll() is not None else "timeout")
                time.sleep(0.1)
        assert body["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        proc.stdout.close()
