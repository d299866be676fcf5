"""Notification fixtures: a real SMTP server (aiosmtpd) and a real JSON receiver on
127.0.0.1, channels added as the CLI and the console add them, and real ``hitl worker``
processes (from the webhook tests). Waits poll with a deadline; nothing asserts on a duration."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from typing import Any

import pytest

from hitl_console.notify.channels import check_url
from scrapy_hitl.state import notify_channels
from tests.webhooks.conftest import FAST, WorkerProcess, receiver, wait_for  # noqa: F401

PUBLIC_URL = "https://hitl.example.test"
NOTIFY_FAST = {**FAST, "HITL_NOTIFY_RETRY_SCHEDULE": "0.05,0.1", "HITL_NOTIFY_MAX_ATTEMPTS": "3",
               "HITL_NOTIFY_TIMEOUT": "5", "HITL_PUBLIC_URL": PUBLIC_URL}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1: keeps every message, parsed."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()
        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with server.lock:
                    server.messages.append(msg)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self, to: str = "ops@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=hitl@example.org&to={to}&mode=insecure"

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp():
    server = SmtpServer()
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
