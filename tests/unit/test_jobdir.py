"""Whether a job continues from its JOBDIR: only when its last crawl saved it cleanly
(hitl_console/jobs/runner.py saved_cleanly, docs/deploy.md)."""

from __future__ import annotations

import os

import pytest

from hitl_console.jobs.runner import STARTED_MARK, saved_cleanly


def _touch(path, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.mark.parametrize("started, saved, expected", [
    (None, None, False),  # no JOBDIR here: another host's, or none yet
    (1_000, None, False),  # started, never saved: killed before its first clean stop
    (1_000, 2_000, True),  # saved after it started: a clean stop (drain, hitl_paused)
    (3_000, 2_000, False),  # saved by an earlier crawl, then a later one was killed
    (None, 2_000, True),  # saved by a crawl from before the start mark existed
])
def test_saved_cleanly(tmp_path, started, saved, expected):
    jobdir = tmp_path / "run"
    jobdir.mkdir()
    if started is not None:
        _touch(jobdir / STARTED_MARK, started)
    if saved is not None:
        _touch(jobdir / "requests.queue" / "active.json", saved)
    assert saved_cleanly(jobdir) is expected
