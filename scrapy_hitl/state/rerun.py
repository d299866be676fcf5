"""Re-run on resolve: a released domain resumes its crawls even when no crawler is alive.

A crawl whose work is all parked waits up to ``HITL_PAUSE_TIMEOUT``, then closes with
``hitl_paused``; its run (and job) stay ``waiting_for_human``. When a human releases a
domain (resolves or cancels its last open intervention), every such run of a spider with
requests parked on that domain is queued again:

- a run started as a job: the same job is queued again (``jobs.rerun``), so it resumes with
  the same run, arguments, settings and ``JOBDIR``;
- a run started by hand with ``scrapy crawl`` in a registered project (its folder is the
  project's path): a job takes it over (``jobs.adopt``);
- anything else cannot be started here: the answer says how to resume it by hand.

The resolve calls ``after_release`` at once (the fast path); the worker's sweep calls
``sweep`` too, so a re-run lost to a Redis or database hiccup at resolve time, or a domain
released by a path that does not call this, still happens within one sweep interval.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from scrapy_hitl.state import jobs, pauses, runs
from scrapy_hitl.state.models import Project, Run

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

MAX_RUNS = 20  # waiting runs re-queued per spider and release: the newest ones


def after_release(state: HitlState, domain: str, *, actor: str = "", why: str = "",
                  spiders: Iterable[str] = ()) -> dict[str, Any]:
    """Queue again the waiting runs of every spider with requests parked on ``domain``
    (and of ``spiders``: those whose parked requests a cancel just failed, so their runs
    can finish).

    ``{"queued": [job, ...], "manual": [{"run_id", "spider", "project_dir", "command"}]}``;
    ``manual`` lists runs nobody can resume from here (no job, no registered project)."""
    found = {spider for spider, d in state.parking.pairs() if d == domain} | set(spiders)
    return _requeue(state, sorted(found), actor=actor, why=why or f"{domain} released")


def sweep(state: HitlState) -> list[dict[str, Any]]:
    """Re-queue waiting runs whose crawler is gone and that no human holds any more: none of
    their spider's parked domains is paused, nor the spider itself. Returns the jobs queued."""
    with state.db.session() as s:
        spiders = set(s.scalars(select(Run.spider).where(Run.status == "waiting_for_human").distinct()))
    if not spiders:
        return []
    paused = set(pauses.paused_domains(state.redis))
    held = {spider for spider, domain in state.parking.pairs() if domain in paused}
    held |= set(pauses.paused_spiders(state.redis))
    ready = sorted(spiders - held)
    return _requeue(state, ready, actor="sweep", why="parked requests released")["queued"] if ready else []


def _requeue(state: HitlState, spiders: list[str], *, actor: str, why: str) -> dict[str, Any]:
    queued: list[dict[str, Any]] = []
    manual: list[dict[str, Any]] = []
    if not spiders:
        return {"queued": queued, "manual": manual}
    with state.db.session() as s:
        waiting = [
            {"id": r.id, "spider": r.spider, "args": dict(r.args or {}), "project_dir": r.project_dir}
            for r in s.scalars(select(Run).where(Run.spider.in_(spiders), Run.status == "waiting_for_human")
                               .order_by(Run.created_at.desc()).limit(MAX_RUNS * len(spiders)))
        ]
        by_path = {p.path: p.name for p in s.scalars(select(Project))}
    alive = runs.alive_ids(state.redis, [r["id"] for r in waiting])
    for run in waiting:
        if run["id"] in alive:
            continue  # its crawler is still waiting: it resumes by itself
        job = jobs.latest_for_run(state.db, run["id"])
        if job is not None:
            again = jobs.rerun(state, run["id"], requested_by=actor, why=why)
            if again is not None:
                queued.append(again)
            continue
        project = _project_of(run["project_dir"], by_path)
        try:
            adopted = jobs.adopt(state, run, project, requested_by=actor, why=why) if project else None
        except jobs.JobInvalid:  # e.g. `-a my-arg=...`: arguments a job cannot take; a person can
            adopted = None
        if adopted is not None:
            queued.append(adopted)
        else:
            manual.append({"run_id": run["id"], "spider": run["spider"], "project_dir": run["project_dir"],
                           "command": resume_command(run)})
    for job in queued:
        logger.info("Re-run queued: job %(job)s resumes run %(run)s of %(spider)s (%(why)s)",
                    {"job": job["id"], "run": job["run_id"], "spider": job["spider"], "why": why})
    return {"queued": queued, "manual": manual}


def _project_of(project_dir: str, by_path: dict[str, str]) -> str | None:
    """The registered project a hand-started crawl ran in: its folder, or a parent of it
    (``scrapy crawl`` may run from a sub-folder of the project)."""
    if not project_dir:
        return None
    folder = Path(project_dir)
    for candidate in (folder, *folder.parents):
        if str(candidate) in by_path:
            return by_path[str(candidate)]
    return None


def resume_command(run: dict[str, Any]) -> str:
    """How a person resumes a hand-started run: the same crawl, in the same folder."""
    args = " ".join(f"-a {shlex.quote(f'{k}={v}')}" for k, v in sorted((run.get("args") or {}).items())
                    if isinstance(v, str))
    cd = f"cd {shlex.quote(run['project_dir'])} && " if run.get("project_dir") else ""
    return f"{cd}scrapy crawl {shlex.quote(run['spider'])}{' ' + args if args else ''}"


def summary(rerun: dict[str, Any]) -> dict[str, Any]:
    """What a resolve's answer says about its re-runs: the jobs queued, and for each run
    that cannot be resumed from here, the command that resumes it by hand."""
    return {
        "jobs": [{"id": j["id"], "run_id": j["run_id"], "spider": j["spider"]} for j in rerun["queued"]],
        "manual": [{**m, "hint": "no crawler is waiting for this run; resume it with `command`, or register "
                                 "its project (`hitl projects add PATH`) so later resolves re-run it"}
                   for m in rerun["manual"]],
    }

