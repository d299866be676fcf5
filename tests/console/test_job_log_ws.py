"""``/ws/jobs/<id>/log`` under the real server (gunicorn gthread): refusals before the
upgrade, the lines already logged then each new one, resuming after a stream id, and the
``end`` message once the job has ended."""

from __future__ import annotations

import json

import pytest
from simple_websocket import ConnectionClosed, ConnectionError as HandshakeRefused

from scrapy_hitl.state import jobs
from scrapy_hitl.state.models import Project, utcnow
from tests.console.test_api_jobs import DEMO
from tests.support.console import PASSWORD, create_fixture_user


def receive(ws, timeout: float = 30) -> dict:
    raw = ws.receive(timeout=timeout)  # a hang guard, not a timing assertion
    assert raw is not None, "nothing came"
    return json.loads(raw)


def test_the_log_streams_live_resumes_after_an_id_and_ends_with_the_job(console_server, state):
    create_fixture_user(state.db, "reviewer@example.com", PASSWORD, "reviewer")
    token = console_server.login("reviewer@example.com")["access_token"]
    with state.db.session() as s:
        s.add(Project(name="demo", path=str(DEMO), spiders=["sandbox"], spiders_at=utcnow()))
    job = jobs.create(state, project="demo", spider="sandbox", enqueue=False)
    path = f"/ws/jobs/{job['id']}/log"

    for kwargs, target, status in (({}, path, 401), ({"token": token}, "/ws/jobs/999999/log", 404),
                                   ({"token": token}, path + "?after=yesterday", 400)):
        with pytest.raises(HandshakeRefused) as refused:
            console_server.ws(target, **kwargs)
        assert refused.value.status_code == status, target

    jobs.append_log(state.redis, job["id"], ["first", "second"])
    ws = console_server.ws(path, token=token)
    got = receive(ws)
    assert got["type"] == "log" and got["lines"] == ["first", "second"]
    jobs.append_log(state.redis, job["id"], ["third"])
    third = receive(ws)
    assert third["lines"] == ["third"]
    ws.close()

    again = console_server.ws(f"{path}?after={got['after']}", token=token)  # where a page left off
    assert receive(again)["lines"] == ["third"]
    jobs.transition(state, job["id"], "running")
    jobs.append_log(state.redis, job["id"], ["Spider closed (finished)"])
    assert receive(again)["lines"] == ["Spider closed (finished)"]
    jobs.transition(state, job["id"], "finished", reason="finished")
    assert receive(again) == {"type": "end", "status": "finished"}
    with pytest.raises(ConnectionClosed):
        again.receive(timeout=30)
