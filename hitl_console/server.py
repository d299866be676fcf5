"""Serve the console with gunicorn: gthread workers, which flask-sock's websockets need
(each open websocket holds a thread, so threads bound concurrent live reviewers)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


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
        from hitl_console.app import create_app

        return create_app()


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, threads: int = 32) -> None:
    ConsoleServer(host=host, port=port, workers=workers, threads=threads).run()
