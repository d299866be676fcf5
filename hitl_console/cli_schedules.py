"""``hitl jobs schedule|schedules|unschedule``: periodic jobs from cron expressions (UTC).

Attached to the ``hitl jobs`` group (hitl_console/cli_jobs.py); the worker's sweep queues
the jobs (scrapy_hitl.state.schedules). ``/api/v1/schedules`` does the same.
"""

from __future__ import annotations

from typing import Any

import click

from hitl_console.cli_jobs import MAX_ID, _echo, _fail, _known_errors, _state, jobs_group, parse_pairs


def _schedule_errors() -> tuple[type[Exception], ...]:
    from scrapy_hitl.state import schedules

    return (*_known_errors(), schedules.ScheduleNotFound)


def _line(s: dict[str, Any]) -> str:
    args = " ".join(f"-a {k}={v}" for k, v in sorted(s["args"].items()))
    return (f"#{s['id']:<4} {s['cron']:<16} {s['project']}/{s['spider']}{' ' + args if args else ''}  "
            f"next {s['next_run_at']}  last job {s['last_job_id'] or '-'}")


@jobs_group.command("schedule")
@click.argument("project")
@click.argument("spider")
@click.option("--cron", required=True, help='five fields, UTC: minute hour day-of-month month day-of-week, '
                                            'e.g. "0 3 * * *"')
@click.option("-a", "args", multiple=True, metavar="NAME=VALUE", help="a spider argument, as scrapy crawl -a")
@click.option("-s", "settings", multiple=True, metavar="NAME=VALUE", help="a Scrapy setting, as scrapy crawl -s")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs_schedule(project: str, spider: str, cron: str, args: tuple[str, ...], settings: tuple[str, ...],
                  priority: int, as_json: bool) -> None:
    """Run SPIDER of PROJECT periodically: `hitl worker` queues a job at each time CRON names."""
    from scrapy_hitl.state import schedules

    try:
        made = schedules.create(_state(), project=project, spider=spider, cron=cron,
                                args=parse_pairs(args, "-a", settings=False),
                                settings=parse_pairs(settings, "-s", settings=True), priority=priority,
                                created_by="cli")
    except _schedule_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo(made)
        return
    click.echo(f"Scheduled #{made['id']}: {project}/{spider} at \"{made['cron']}\" (UTC); "
               f"the first job is queued at {made['next_run_at']}.")


@jobs_group.command("schedules")
@click.option("--json", "as_json", is_flag=True)
def jobs_schedules(as_json: bool) -> None:
    """List the schedules."""
    from scrapy_hitl.state import schedules

    found = schedules.list_(_state().db)
    if as_json:
        _echo(found)
        return
    if not found:
        click.echo('No schedules. `hitl jobs schedule PROJECT SPIDER --cron "0 3 * * *"` adds one.')
    for s in found:
        click.echo(_line(s))


@jobs_group.command("unschedule")
@click.argument("schedule_id", type=click.IntRange(1, MAX_ID))
@click.option("--json", "as_json", is_flag=True)
def jobs_unschedule(schedule_id: int, as_json: bool) -> None:
    """Remove a schedule; the jobs it already queued run on."""
    from scrapy_hitl.state import schedules

    try:
        gone = schedules.remove(_state().db, schedule_id)
    except _schedule_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo(gone)
        return
    click.echo(f"Removed schedule #{gone['id']} ({gone['project']}/{gone['spider']} at \"{gone['cron']}\").")
