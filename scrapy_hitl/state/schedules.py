"""Schedules: periodic jobs from cron expressions.

croniter does the cron arithmetic (a maintained library: ranges, steps, names, ``@daily``
and the day-of-month/day-of-week rules are easy to get subtly wrong by hand). Times are
UTC. The worker's sweep calls ``queue_due``: a due schedule moves its ``next_run_at`` with a
conditional UPDATE before it queues the job, so of several workers sweeping at once
exactly one queues it. A schedule missed while no worker ran fires once when one comes
back, not once per missed slot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from scrapy_hitl.state import jobs, projects
from scrapy_hitl.state.models import JobSchedule, iso, utcnow

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.db import Database

logger = logging.getLogger(__name__)

MAX_CRON = 200


class ScheduleNotFound(LookupError):
    def __init__(self, schedule_id: int) -> None:
        super().__init__(f"no schedule {schedule_id}; `hitl jobs schedules` lists them")
        self.schedule_id = schedule_id


def next_after(cron: str, after: datetime) -> datetime:
    """The first time ``cron`` fires strictly after ``after`` (UTC); JobInvalid if ``cron``
    is not a cron expression."""
    from croniter import croniter

    cron = cron.strip() if isinstance(cron, str) else cron
    example = ("use five fields, minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\" for 03:00 UTC "
               "every day, or \"*/15 * * * *\" for every 15 minutes")
    # croniter also takes a sixth field (seconds) and a seventh (the year): "0 3 * * * *"
    # would silently mean 00:03 every second, not a Quartz-style 03:00
    fields = cron.split() if isinstance(cron, str) else []
    if (not isinstance(cron, str) or not cron or len(cron) > MAX_CRON
            or not (len(fields) == 5 or (len(fields) == 1 and cron.startswith("@")))
            or not croniter.is_valid(cron)):
        raise jobs.JobInvalid("cron", f"{cron!r} is not a cron expression: {example}")
    if after.tzinfo is None:
        after = after.replace(tzinfo=timezone.utc)
    try:
        return croniter(cron, after).get_next(datetime)
    except ValueError:  # CroniterBadDateError: no such day, e.g. "0 0 31 2 *"
        raise jobs.JobInvalid("cron", f"{cron!r} never fires (no date matches it, like 31 February): "
                                      f"{example}") from None


def schedule_to_dict(row: JobSchedule) -> dict[str, Any]:
    return {
        "id": row.id,
        "project": row.project,
        "spider": row.spider,
        "args": dict(row.args or {}),
        "settings": dict(row.settings or {}),
        "priority": row.priority,
        "cron": row.cron,
        "enabled": row.enabled,
        "next_run_at": iso(row.next_run_at),
        "last_job_id": row.last_job_id,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
    }


def create(
    state: HitlState,
    *,
    project: str,
    spider: str,
    cron: str,
    args: Any = None,
    settings: Any = None,
    priority: Any = 0,
    created_by: str = "",
) -> dict[str, Any]:
    """A schedule; JobInvalid (``cron``, ``args``...), ProjectNotFound or ProjectInvalid on
    bad input, checked as a job's would be, so a schedule never queues a job that fails to."""
    args, settings, priority = jobs.check_spec(args, settings, priority)
    first = next_after(cron, utcnow())
    projects.check_spider(state.db, project, spider)
    with state.db.session() as s:
        row = JobSchedule(project=project, spider=spider, args=args, settings=settings, priority=priority,
                          cron=cron.strip(), enabled=True, next_run_at=first, created_by=created_by[:jobs.MAX_BY])
        s.add(row)
        s.flush()
        return schedule_to_dict(row)


def list_(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [schedule_to_dict(r) for r in s.scalars(select(JobSchedule).order_by(JobSchedule.id))]


def get(db: Database, schedule_id: int) -> dict[str, Any]:
    with db.session() as s:
        row = s.get(JobSchedule, schedule_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        return schedule_to_dict(row)


def remove(db: Database, schedule_id: int) -> dict[str, Any]:
    found = get(db, schedule_id)
    with db.session() as s:
        s.execute(delete(JobSchedule).where(JobSchedule.id == schedule_id))
    return found


def queue_due(state: HitlState, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Queue a job for every enabled schedule that is due; returns the jobs queued."""
    now = now or utcnow()
    with state.db.session() as s:
        due = [(schedule_to_dict(r), r.next_run_at) for r in s.scalars(
            select(JobSchedule).where(JobSchedule.enabled.is_(True), JobSchedule.next_run_at <= now)
            .order_by(JobSchedule.next_run_at).limit(100))]
    queued = []
    for sched, was_due_at in due:
        try:
            following = next_after(sched["cron"], now)
        except jobs.JobInvalid as exc:  # stored before it was refused: it stops, the others go on
            logger.error("Schedule %(id)s (%(cron)s) is turned off: %(why)s",
                         {"id": sched["id"], "cron": sched["cron"], "why": exc})
            with state.db.session() as s:
                s.execute(update(JobSchedule).where(JobSchedule.id == sched["id"]).values(enabled=False))
            continue
        with state.db.session() as s:
            won = s.execute(update(JobSchedule).where(
                JobSchedule.id == sched["id"], JobSchedule.next_run_at == was_due_at,  # as read: exactly one wins
            ).values(next_run_at=following)).rowcount
        if not won:
            continue  # another worker queued it
        try:
            job = jobs.create(state, project=sched["project"], spider=sched["spider"], args=sched["args"],
                              settings=sched["settings"], priority=sched["priority"],
                              requested_by=f"schedule:{sched['id']}", schedule_id=sched["id"])
        except (projects.ProjectNotFound, projects.ProjectInvalid, jobs.JobInvalid) as exc:
            logger.error("Schedule %(id)s (%(cron)s) could not queue its job: %(why)s",
                         {"id": sched["id"], "cron": sched["cron"], "why": exc})
            continue
        with state.db.session() as s:
            s.execute(update(JobSchedule).where(JobSchedule.id == sched["id"]).values(last_job_id=job["id"]))
        queued.append(job)
    return queued
