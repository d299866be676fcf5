"""A real webhook receiver for tests and benchmarks: a threaded HTTP server on 127.0.0.1.

It follows a plan, one step per connection (``"reset"``: close at once with a TCP reset, as a
server that is down; ``"hang"``: read the request and never answer; or an answer
``(status, headers, body)``); after the plan it answers 200 ``ok``. It keeps every request
(path, headers, body, and ``at``: ``time.perf_counter()`` when the body was read).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A local webhook receiver (see the module docstring)."""

    def __init__(self, plan: list[Any] | None = None, port: int = 0) -> None:
        self.plan = list(plan or [])
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.release = threading.Event()  # lets hanging handlers go at teardown
        self.got_request = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                with receiver._lock:
                    receiver.connections += 1
                    step = receiver.plan.pop(0) if receiver.plan else (200, {}, b"ok")
                if step == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                self.step = step
                super().handle()

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received = time.perf_counter()
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                              "body": body, "at": received})
                receiver.got_request.set()
                if self.step == "hang":
                    receiver.release.wait(60)
                    self.close_connection = True
                    return
                status, headers, payload = self.step
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
