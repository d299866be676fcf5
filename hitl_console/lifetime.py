"""Child processes that must not outlive the process that started them.

Linux's ``PR_SET_PDEATHSIG`` gives a child a signal when its parent dies, SIGKILL included:
a ``hitl worker``'s crawl workers, ``hitl up``'s worker. The signal follows the *thread* that
started the child, so start them from a thread that lives as long as the process.
Elsewhere (not Linux) the child outlives a killed parent, as before.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """For ``Popen(preexec_fn=...)``: ``sig`` to the child when this process dies (SIGTERM:
    a worker drains, and stops what it started in turn)."""
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None

    def setup() -> None:
        prctl(PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the parent died before prctl
            os.kill(os.getpid(), sig)

    return setup
