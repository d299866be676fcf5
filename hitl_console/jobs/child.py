"""Between a crawl worker and its ``scrapy crawl``: stops the crawl once, gracefully, when the
worker dies.

Run by path (``python .../child.py WORKER_PID -- scrapy ...``), so it imports nothing but the
standard library and costs a bare interpreter's start. Why not ``PR_SET_PDEATHSIG`` on the
crawl itself: Linux sends that signal each time the child is re-parented to another thread of
the dying worker (RQ's heartbeat, the pub/sub reader...), and Scrapy takes a second SIGTERM
as "force an unclean shutdown", which loses the JOBDIR's queue and the feed's last items.
Here the parent-death signal is SIGUSR1, and only the first one counts.

SIGTERM and SIGINT (a cancel, a drain) are passed on to the crawl as they come; the crawl's
exit code (or its killing signal) becomes this process's.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    worker, cmd = int(argv[0]), argv[2:]
    crawl = subprocess.Popen(cmd)
    orphaned = False

    def on_worker_death(signum: int, frame: object) -> None:
        nonlocal orphaned
        if not orphaned and crawl.poll() is None:
            orphaned = True
            crawl.send_signal(signal.SIGTERM)

    def forward(signum: int, frame: object) -> None:
        if crawl.poll() is None:
            crawl.send_signal(signum)

    signal.signal(signal.SIGUSR1, on_worker_death)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1)
    except (OSError, AttributeError):  # not Linux: a killed worker's crawl runs on
        pass
    if os.getppid() != worker:  # the worker died before prctl
        on_worker_death(signal.SIGUSR1, None)
    while True:
        try:
            code = crawl.wait()
            break
        except InterruptedError:  # pragma: no cover (PEP 475 retries; kept for clarity)
            continue
    if code < 0:  # killed by a signal: die the same way, so the worker sees it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
