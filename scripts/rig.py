#!/usr/bin/env python3
"""The multi-host rig by hand (tests/support/rig.py, docs/deploy.md). As root:

    .venv/bin/python scripts/rig.py up      # state + 2 crawler hosts + console; Ctrl-C tears it down
    .venv/bin/python scripts/rig.py clean   # remove what a crashed run left behind
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.rig import RIG_PROJECT, Rig, available  # noqa: E402


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    if command == "clean":
        removed = Rig.clean_stale()
        print("removed: " + (", ".join(removed) or "nothing"))
        return 0
    if command != "up":
        print(__doc__)
        return 2
    why = available()
    if why:
        print(f"rig: {why}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Rig() as rig:
        rig.hitl("projects", "add", str(RIG_PROJECT), "--name", "rig")
        for host in rig.hosts:
            host.start_worker()
        print(rig.describe(), flush=True)
        print(f"logs in {rig.dir / 'logs'}; Ctrl-C tears the rig down", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
