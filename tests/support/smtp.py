"""A real SMTP server for tests and benchmarks: aiosmtpd on 127.0.0.1, keeping every message
(parsed, with ``at``: ``time.perf_counter()`` when its DATA was read)."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpServer:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.received_at: list[float] = []
        self.lock = threading.Lock()
        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
                at = time.perf_counter()
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with server.lock:
                    server.messages.append(msg)
                    server.received_at.append(at)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def url(self, to: str = "ops@example.org") -> str:
        """Apprise's URL for this server (no TLS, no login)."""
        return f"mailto://127.0.0.1:{self.port}?from=hitl@example.org&to={to}&mode=insecure"

    def stop(self) -> None:
        self.controller.stop()
