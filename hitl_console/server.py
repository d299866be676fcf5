"""Serve the console with gunicorn: gthread workers, which flask-sock's websockets need
(each open websocket holds a thread, so threads bound concurrent live reviewers)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from gunicorn.app.base import BaseApplication

from hitl_console.lifetime import die_with_parent
from scrapy_hitl.config import private_opener


class ConsoleServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, *, host: str, port: int, workers: int = 1, threads: int = 32) -> None:
        self.options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "timeout": 120,
            "graceful_timeout": 5,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from hitl_console.api.consultations import MAX_WAITS_KEY
        from hitl_console.app import create_app
        from hitl_console.live import MAX_LIVE_KEY
        from hitl_console.slots import SLOW_CALLS_KEY

        app = create_app()
        # A websocket or an event stream (SSE) holds its thread for as long as it is open:
        # they share this cap, and a quarter of the threads (at least 4) stay for the JSON
        # API, or enough open tabs and dashboards would starve every page.
        threads = self.options["threads"]
        app.config[MAX_LIVE_KEY] = max(1, threads - max(4, threads // 4))
        # A long-poll (GET /api/v1/consultations/<id>?wait=N) holds its thread up to 60 s:
        # an eighth of them, so websockets and long-polls together leave threads for the rest.
        app.config[MAX_WAITS_KEY] = max(1, threads // 8)
        # robots.txt checks (up to 10 s) and project refreshes (`scrapy list`, up to 2 min)
        app.config[SLOW_CALLS_KEY] = max(1, threads // 16)
        return app


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, threads: int = 32) -> None:
    ConsoleServer(host=host, port=port, workers=workers, threads=threads).run()


class ConsoleProcess:
    """``hitl console`` as a child process, for ``hitl up`` and ``hitl demo``.

    A child rather than a thread: gunicorn wants its own main thread for signals and
    worker management, and the parent keeps its own Ctrl-C handling.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8000, env: dict[str, str] | None = None,
                 log_path: str | None = None, threads: int | None = None) -> None:
        self.host, self.port = host, port
        self.threads = threads
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> ConsoleProcess:
        """Start and wait until ``GET /health`` answers; raises RuntimeError with the log tail."""
        cmd = [sys.executable, "-m", "hitl_console.cli", "console", "--host", self.host, "--port", str(self.port)]
        if self.threads is not None:
            cmd += ["--threads", str(self.threads)]
        log = open(self.log_path, "ab", opener=private_opener) if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            # SIGTERM (gunicorn's graceful stop) if the starter dies: a killed `hitl up`
            # leaves no console behind it, holding its port
            self.proc = subprocess.Popen(cmd, env={**os.environ, **(self.env or {})}, stdout=log, stderr=log,
                                         start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM))
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return self
            except urllib.error.HTTPError:  # 503: up, dependencies not ready yet
                pass
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        where = f"; see {self.log_path}" if self.log_path else ""
        raise RuntimeError(f"The console did not start on {self.url}{where}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # QUIT is gunicorn's quick shutdown. TERM would wait graceful_timeout for every open
        # websocket to end, and a live stream never ends by itself; clients reconnect with
        # their last event id, so cutting them loses nothing.
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # Its own session (start_new_session): a worker the master left behind goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if nothing listens there, else a free port the OS picks. SO_REUSEADDR, as
    gunicorn binds: a port whose last connections linger in TIME_WAIT (the previous run's) is free."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")
