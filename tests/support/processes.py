"""Processes a test starts (``hitl worker``, ``hitl up``) that must not outlive it.

- ``die_with_test(sig)``: a ``preexec_fn`` giving the child ``sig`` when the test process dies
  without its teardown (an xdist worker killed, pytest-timeout's thread method): Linux's
  ``PR_SET_PDEATHSIG``. The signal follows the *thread* that started the child; tests start
  them from pytest's main thread, which lives as long as the process.
- ``stop_tree(proc)``: the teardown, test passed or not: SIGTERM (a worker drains, ``hitl up``
  stops its stack), then SIGKILL to whatever is left of the process and of everything it
  started, in its process group or not (a job's crawl runs in a session of its own).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable

import psutil

from hitl_console.lifetime import die_with_parent


def die_with_test(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """For ``Popen(preexec_fn=...)``: ``sig`` to the child when this process dies.

    SIGKILL for a ``hitl worker`` (its crawl's go-between then stops the crawl); SIGTERM for
    ``hitl up``, whose own stop takes its worker down (a SIGKILL would leave that running)."""
    return die_with_parent(sig)


def family(pid: int) -> list[psutil.Process]:
    """The process and everything it started that still runs (re-parented ones excepted)."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def stop_tree(proc: subprocess.Popen, *, grace: float = 30.0) -> None:
    """SIGTERM ``proc``; after ``grace`` seconds SIGKILL it and its descendants; wait for all.

    The descendants are listed before the signal and again before the kill: once ``proc`` is
    gone its children are re-parented and no longer found from it."""
    if proc.poll() is None:
        seen = {p.pid: p for p in family(proc.pid)}
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        seen.update({p.pid: p for p in family(proc.pid)})
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        # what it started and did not stop with it (a crawl still in its graceful stop)
        rest = _wait_gone([p for pid, p in seen.items() if pid != proc.pid], grace)
        for p in rest:
            with contextlib.suppress(psutil.Error):
                p.kill()
        _wait_gone(rest, 10)


def running(p: psutil.Process | int) -> bool:
    """Neither gone nor a zombie (an orphan's zombie stays until PID 1 reaps it, if ever)."""
    try:
        p = p if isinstance(p, psutil.Process) else psutil.Process(p)
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive
