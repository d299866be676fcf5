"""Notification fixtures: a real SMTP server (aiosmtpd) and a real JSON receiver on
127.0.0.1, channels added as the CLI and the console add them, and real ``hitl worker``
processes (from the webhook tests). Waits poll with a deadline; nothing asserts on a duration."""

from __future__ import annotations

from typing import Any

import pytest

from hitl_console.notify.channels import check_url
from scrapy_hitl.state import notify_channels
from tests.support.smtp import SmtpServer, free_port  # noqa: F401 (free_port: for the tests)
from tests.webhooks.conftest import FAST, WorkerProcess, receiver, wait_for  # noqa: F401

PUBLIC_URL = "https://hitl.example.test"
NOTIFY_FAST = {**FAST, "HITL_NOTIFY_RETRY_SCHEDULE": "0.05,0.1", "HITL_NOTIFY_MAX_ATTEMPTS": "3",
               "HITL_NOTIFY_TIMEOUT": "5", "HITL_PUBLIC_URL": PUBLIC_URL}


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def notify_env(hitl_env, monkeypatch):
    for k, v in NOTIFY_FAST.items():
        monkeypatch.setenv(k, v)
    return {**hitl_env, **NOTIFY_FAST}


def add_channel(state, url: str, name: str) -> dict[str, Any]:
    """As ``hitl notify add`` does: Apprise checks the URL, the state layer stores it."""
    scheme, redacted = check_url(url)
    return notify_channels.add(state, name=name, url=url, scheme=scheme, redacted=redacted, actor="test")


@pytest.fixture
def notify_worker(notify_env, state, tmp_path):
    """Starts ``hitl worker`` processes; returns once the notifier routes new events."""
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        w = WorkerProcess(log_path=str(tmp_path / f"worker-{len(started)}.log"), env={**notify_env, **env})
        w.start()
        started.append(w)
        wait_for(lambda: state.redis.exists("hitl:notify:cursor"), what=f"the notifier; log:\n{w.log()[-2000:]}")
        return w

    yield start
    for w in started:
        if w.running():
            w.kill()


def json_url(rec) -> str:
    """Apprise's ``json://`` URL of a receiver (``tests.support.receiver``)."""
    return f"json://127.0.0.1:{rec.server.server_address[1]}/hook"
