"""Start and drive a sandbox server in a subprocess, for tests, the demo and benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

SANDBOX_DIR = Path(__file__).resolve().parent.parent  # projects/sandbox
URL_PREFIX = "SANDBOX_URL="
# Never send sandbox traffic through an http_proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SandboxStartError(RuntimeError):
    """Raised by SandboxServer.start() when the server exits or stays silent; includes its stderr."""


class SandboxServer:
    """A ``python -m sandbox`` subprocess.

    Args:
        port: TCP port to bind on 127.0.0.1; 0 (default) lets the OS pick a free one.
        env: extra environment variables for the server, e.g. ``{"HITL_FORCE_CAPTCHA": "1"}``.
        startup_timeout: seconds to wait for the ``SANDBOX_URL=`` line.
        **options: CLI options with underscores, e.g. ``static_pages=200`` -> ``--static-pages 200``;
            ``True`` adds a bare flag (``force_captcha=True``), ``None``/``False`` omit it.
    """

    def __init__(
        self, *, port: int = 0, env: Mapping[str, str] | None = None, startup_timeout: float = 20.0, **options: Any
    ) -> None:
        self.port = port
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._stdout: IO[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._saved_output = ("", "")  # (stdout, stderr) of the last stopped process

    @property
    def url(self) -> str:
        """Base URL without trailing slash, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            raise RuntimeError("SandboxServer is not running: call start() or use it as a context manager")
        return self._url

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(self.port), "--exit-with-parent"]
        for name, value in self.options.items():
            flag = "--" + name.replace("_", "-")
            if value is True:
                cmd.append(flag)
            elif value is not None and value is not False:
                cmd += [flag, str(value)]
        return cmd

    def start(self) -> str:
        """Start the server and return its base URL once it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("SandboxServer already running")
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SANDBOX_DIR), env.get("PYTHONPATH")) if p)
        # faulthandler on: a server that stays silent is sent SIGABRT, and the error then shows
        # where each of its threads stood instead of an empty stderr.
        env.setdefault("PYTHONFAULTHANDLER", "1")
        # Files, not pipes: nobody has to drain them, and stderr is still there if it dies.
        self._stdout, self._stderr = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            self.command(), cwd=SANDBOX_DIR, env=env, stdout=self._stdout, stderr=self._stderr
        )
        try:
            self._url = self._wait_for_url()
        except BaseException:  # incl. KeyboardInterrupt: never leave an orphan server behind
            self.stop()
            raise
        return self._url

    def _wait_for_url(self) -> str:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            line, complete, _ = self.stdout().partition("\n")
            if complete and line.startswith(URL_PREFIX):
                return line[len(URL_PREFIX) :].strip()
            if self.process.poll() is not None:
                self._fail(f"sandbox server exited with status {self.process.returncode} before printing {URL_PREFIX}")
            if time.monotonic() > deadline:
                self._dump_stacks()
                self._fail(f"sandbox server printed no {URL_PREFIX} line within {self.startup_timeout:g} s")
            time.sleep(0.02)

    def _dump_stacks(self) -> None:
        """SIGABRT a silent server: faulthandler writes every thread's stack to its stderr.
        Its core-file limit goes to 0 first: after the stacks, the abort would dump core, which
        with ``ulimit -c unlimited`` (many containers) is a file of several MB in its working
        directory, projects/sandbox."""
        assert self.process is not None
        # OSError: it has exited meanwhile; AttributeError: no prlimit (not Linux)
        with contextlib.suppress(OSError, AttributeError):
            resource.prlimit(self.process.pid, resource.RLIMIT_CORE, (0, 0))
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)

    def _fail(self, message: str) -> None:
        self.stop()
        stderr = self.stderr()
        raise SandboxStartError(f"{message}; command: {' '.join(self.command())}; stderr:\n{stderr or '(empty)'}")

    def stdout(self) -> str:
        """Everything the server wrote to stdout so far: just the ``SANDBOX_URL=`` line."""
        return self._saved_output[0] if self._stdout is None else _read_all(self._stdout)

    def stderr(self) -> str:
        """Everything the server wrote to stderr so far (warnings and errors only)."""
        return self._saved_output[1] if self._stderr is None else _read_all(self._stderr)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server, wait up to ``timeout`` seconds, then SIGKILL it. Idempotent."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._stdout is not None and self._stderr is not None:
            self._saved_output = (self.stdout(), self.stderr())
            self._stdout.close()
            self._stderr.close()
        self._stdout = self._stderr = None
        self._url = None

    def _call(self, method: str, endpoint: str, query: Mapping[str, str] | None = None) -> Any:
        url = self.url + endpoint + ("?" + urllib.parse.urlencode(query) if query else "")
        data = b"" if method == "POST" else None
        with _opener.open(urllib.request.Request(url, data=data, method=method), timeout=10) as response:
            return json.load(response)

    def hits(self, prefix: str | None = None) -> dict[str, int]:
        """Requests per path since start or reset(), plus ``"__total__"``; ``/__sandbox/*`` not counted."""
        return self._call("GET", "/__sandbox/hits", {"prefix": prefix} if prefix else None)

    def reset(self) -> None:
        """Forget hit counts and request records."""
        self._call("POST", "/__sandbox/reset")

    def requests(self, path: str) -> list[dict[str, Any]]:
        """The last 50 requests to ``path``: ``{"method", "cookies", "user_agent", "status"}`` each."""
        return self._call("GET", "/__sandbox/requests", {"path": path})

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _read_all(handle: IO[bytes]) -> str:
    """The whole file, read with pread: the server writes through the same open file, so a
    seek here would move *its* write position too. (A seek back to 0 between the two writes
    of an unbuffered ``print``, text then newline, put the newline over the first byte: the
    URL line never ended, and the start timed out with an empty stderr.)"""
    fd, chunks, offset = handle.fileno(), [], 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
