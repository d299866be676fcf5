"""Between a crawl worker and its ``scrapy crawl``: stops the crawl once, gracefully, when the
worker dies.

Run by path (``python .../child.py WORKER_PID GRACE -- scrapy ...``), so it imports nothing but the
standard library and costs a bare interpreter's start. Why not ``PR_SET_PDEATHSIG`` on the
crawl itself: Linux sends that signal each time the child is re-parented to another thread of
the dying worker (RQ's heartbeat, the pub/sub reader...), and Scrapy takes a second SIGTERM
as "force an unclean shutdown", which loses the JOBDIR's queue and the feed's last items.
Here the parent-death signal is SIGUSR1, and the crawl gets one SIGTERM whatever asks for
it (the worker's death, a cancel, a drain, Ctrl-C) and however often. The crawl's exit code
(or its killing signal) becomes this process's.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    worker, sep = int(argv[0]), argv.index("--")
    grace = float(argv[1]) if sep == 2 else None  # HITL_JOB_STOP_GRACE, from the runner
    cmd = argv[sep + 1:]
    crawl = subprocess.Popen(cmd)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        """One SIGTERM, whoever asks (the worker's cancel or drain, its death, a Ctrl-C):
        Scrapy takes a second one as "force an unclean shutdown". SIGKILL stays the way to
        stop at once, and comes after the grace: a crawl that hangs in its stop must not
        outlive a dead worker for ever, unwatched, its heartbeat keeping the re-run out."""
        nonlocal stopping
        if not stopping and crawl.poll() is None:
            stopping = True
            crawl.send_signal(signal.SIGTERM)
            if grace is not None:
                timer = threading.Timer(grace, lambda: crawl.poll() is None and crawl.kill())
                timer.daemon = True
                timer.start()

    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1)
    except (OSError, AttributeError):  # not Linux: a killed worker's crawl runs on
        pass
    if os.getppid() != worker:  # the worker died before prctl
        stop(signal.SIGUSR1, None)
    code = crawl.wait()  # a signal handled meanwhile does not interrupt it (PEP 475)
    if code < 0:  # killed by a signal: die the same way, so the worker sees it
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
