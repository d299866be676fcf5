"""`hitl demo` in a terminal (a pseudo-terminal): however the reviewer ends it, it exits with
the right status and leaves no process behind.

Resolved in the console, cancelled in the console, resolved by the demo on Enter: each prints
its summary, keeps the console up until Enter, and exits 0. Ctrl-C while the crawl waits for
a person exits 130. Every process the demo started carries a marker in its environment; none
may be left once the demo has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from hitl_console.server import free_port

ANSI = re.compile(r"\x1b\[[0-9;]*m")
HANG_GUARD = 180  # seconds for any one step: a hang guard, not a timing assertion


class Terminal:
    """The demo on a pseudo-terminal of its own (its controlling terminal: ^C is SIGINT)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the demo
            # As a shell starts a foreground command: Ctrl-C and SIGTERM at their defaults. The
            # test process may have inherited SIGINT ignored from a test before it, and an
            # ignored SIGINT stays ignored across exec (Python then installs no handler).
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", "hitl_console.cli", "demo"], env)
        self.out = ""

    def expect(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            found = re.search(pattern, self.out)
            if found:
                return found
            ready, _, _ = select.select([self.fd], [], [], 1)
            if ready:
                try:
                    self.out += ANSI.sub("", os.read(self.fd, 65536).decode(errors="replace"))
                except OSError:  # EIO: the demo exited
                    break
        raise AssertionError(f"{pattern!r} never came; the terminal showed:\n{self.out}")

    def type(self, data: bytes) -> None:
        os.write(self.fd, data)

    def exit_status(self) -> int:
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            with_status = os.waitpid(self.pid, os.WNOHANG)
            if with_status[0]:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(with_status[1])
            try:  # keep draining, or a full terminal buffer would block the demo
                if select.select([self.fd], [], [], 0.2)[0]:
                    self.out += ANSI.sub("", os.read(self.fd, 65536).decode(errors="replace"))
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the demo did not exit; the terminal showed:\n{self.out}")


def marked(marker: str) -> dict[int, str]:
    """The live processes whose environment carries ``marker``: pid -> command line."""
    left = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                left[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return left


def console_call(url: str, path: str, password: str, body: dict) -> dict:
    def post(p: str, data: dict, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        req = urllib.request.Request(f"{url}{p}", data=json.dumps(data).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    token = post("/api/v1/auth/login", {"email": "demo@example.com", "password": password})["access_token"]
    return post(path, body, token)


@pytest.mark.parametrize("ending", ["resolved in the console", "cancelled in the console", "enter", "ctrl-c"])
def test_the_demo_ends_cleanly_in_a_terminal(tmp_path, ending):
    marker = f"demo-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HITL_")}
    env.update({"HITL_CONSOLE_PORT": str(free_port(0)), "HITL_TEST_MARK": marker, "TERM": "dumb"})
    term = Terminal(tmp_path, env)
    try:
        login = term.expect(r"Console on (http://127\.0\.0\.1:\d+)/  log in as demo@example\.com / (\S+)")
        url, password = login.group(1), login.group(2)
        term.expect(r"Or press Enter to have the demo resolve it")
        term.expect(r"waiting for a human")
        if ending == "resolved in the console":
            cookies = (tmp_path / ".hitl-demo" / "cookies.txt").read_text()
            console_call(url, "/api/v1/interventions/1/resolve", password,
                         {"resolution": {"action": "cookies"}, "captured_session": {"cookies": cookies}})
        elif ending == "cancelled in the console":
            console_call(url, "/api/v1/interventions/1/cancel", password, {"note": "not today"})
        elif ending == "enter":
            term.type(b"\n")
        else:
            term.type(b"\x03")  # Ctrl-C, through the terminal, to its foreground process group
            assert term.exit_status() == 130, term.out
            assert "Stopped (Ctrl-C)" in term.out
            assert "Traceback" not in term.out and "Fatal Python error" not in term.out
            assert marked(marker) == {}
            return
        term.expect(r"Summary")
        if ending == "cancelled in the console":
            term.expect(r"intervention #1 cancelled \(not today\): 1 parked request of vip\.sandbox\.test failed")
            term.expect(r"vip\s+0 / 50 items\s+cancelled")
        else:
            term.expect(r"vip\s+50 / 50 items\s+ok")
        term.expect(r"The console stays up.*Press Enter to stop the demo")
        with urllib.request.urlopen(f"{url}/health", timeout=10) as resp:  # still up after the summary
            assert resp.status == 200
        term.type(b"\n")
        assert term.exit_status() == 0, term.out
        assert "Traceback" not in term.out and "Fatal Python error" not in term.out
        assert "(s)" not in term.out  # "1 request", not "1 request(s)"
        assert marked(marker) == {}
        assert not (tmp_path / ".hitl-demo" / "redis.sock").exists()
    finally:
        for pid in marked(marker):  # a failed test leaves no stray process to the next one
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
