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

The signals are blocked and taken one at a time with ``sigwait`` by the only thread, never by
a handler: CPython runs a Python signal handler between two bytecodes of whatever runs,
another handler included, so a handler that checks "not stopped yet" and then sends SIGTERM
can be re-entered in between by the next SIGUSR1 of the dying worker (likeliest when this
process is preempted there, on a busy host) and send a second SIGTERM.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1
STOP = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)  # the worker died; a cancel, a drain; Ctrl-C
# SIGCHLD: the crawl ended; SIGALRM: HITL_JOB_STOP_GRACE is over
WAITED = {*STOP, signal.SIGCHLD, signal.SIGALRM}


def main(argv: list[str]) -> int:
    worker, sep = int(argv[0]), argv.index("--")
    grace = float(argv[1]) if sep == 2 else None  # HITL_JOB_STOP_GRACE, from the runner
    cmd = argv[sep + 1:]
    # Blocked before anything can arrive: a signal sent meanwhile waits for sigwait below.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
    # The crawl starts with the mask this process had (no signal blocked for Scrapy).
    crawl = subprocess.Popen(cmd, preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, mask))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1)
    except (OSError, AttributeError):  # not Linux: a killed worker's crawl runs on
        pass
    asked = os.getppid() != worker  # the worker died before prctl
    stopping = False
    while True:
        if asked and not stopping:
            # One SIGTERM, whoever asks and however often: Scrapy takes a second one as
            # "force an unclean shutdown". SIGKILL stays the way to stop at once, and comes
            # after the grace: a crawl that hangs in its stop must not outlive a dead worker
            # for ever, unwatched, its heartbeat keeping the re-run out.
            stopping = True
            crawl.send_signal(signal.SIGTERM)
            if grace is not None:
                signal.setitimer(signal.ITIMER_REAL, max(grace, 1e-6))
        if crawl.poll() is not None:
            break
        sig = signal.sigwait(WAITED)  # the crawl's end is a SIGCHLD: poll() above sees it
        if sig == signal.SIGALRM:
            crawl.kill()
        asked = asked or sig in STOP
    code = crawl.returncode
    if code < 0:  # killed by a signal: die the same way, so the worker sees it
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those have no handler to reset (OSError)
            signal.signal(-code, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {-code})
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
