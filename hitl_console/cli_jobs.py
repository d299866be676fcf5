"""``hitl projects`` and ``hitl jobs``: register Scrapy projects, run their spiders as jobs on
``hitl worker`` (docs/jobs.md). The API (``/api/v1/projects``, ``/api/v1/jobs``) does the same.

Every command takes ``--json``; bad input exits non-zero with a message that names the
problem and the fix, never a traceback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from hitl_console.cli import _Ctx
    from scrapy_hitl.state import HitlState

MAX_ID = 2**31 - 1  # ids a row can have (hitl_console.bounds.MAX_ID; not imported: it loads Flask)
FOLLOW_BLOCK_MS = 1000  # how long one read of a followed log waits for new lines


def _state() -> HitlState:
    from hitl_console.cli import _Ctx

    ctx: _Ctx = click.get_current_context().ensure_object(_Ctx)
    return ctx.state()


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _known_errors() -> tuple[type[Exception], ...]:
    from scrapy_hitl.state import jobs, projects

    return (projects.ProjectNotFound, projects.ProjectInvalid, jobs.JobNotFound, jobs.JobInvalid, jobs.JobClosed)


def parse_pairs(values: tuple[str, ...], option: str, *, settings: bool) -> dict[str, Any]:
    """``("k=v", ...)`` -> ``{"k": "v"}``. A setting's value is read as JSON when it is a
    number, a boolean, an object or a list (``-s CLOSESPIDER_PAGECOUNT=10``), else kept as text."""
    out: dict[str, Any] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            example = "CLOSESPIDER_PAGECOUNT=100" if settings else "category=books"
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE (e.g. {option} {example})", param_hint=option)
        if settings:
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
            out[key.strip()] = parsed if isinstance(parsed, int | float | bool | dict | list) else value
        else:
            out[key.strip()] = value
    return out


# --- projects ---------------------------------------------------------------------------------
@click.group("projects")
def projects_group() -> None:
    """Scrapy projects whose spiders `hitl worker` may run as jobs."""


def _project_line(p: dict[str, Any]) -> str:
    spiders = ", ".join(p["spiders"]) or "(none)"
    problem = f"  [scrapy list failed: {p['spiders_error']}]" if p["spiders_error"] else ""
    return f"{p['name']:20} {p['path']}\n{'':20} spiders: {spiders}{problem}"


@projects_group.command("add")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--name", help="the project's name (default: its folder's name)")
@click.option("--json", "as_json", is_flag=True)
def projects_add(path: str, name: str | None, as_json: bool) -> None:
    """Register the Scrapy project in PATH (the folder holding scrapy.cfg) and list its spiders.
    Every worker host must see it at the same path."""
    from scrapy_hitl.state import projects

    try:
        project = projects.add(_state().db, path, name)
    except _known_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo(project)
        return
    click.echo(f"Registered {project['name']}:")
    click.echo(_project_line(project))


@projects_group.command("list")
@click.option("--json", "as_json", is_flag=True)
def projects_list(as_json: bool) -> None:
    """The registered projects and their spiders."""
    from scrapy_hitl.state import projects

    rows = projects.list_(_state().db)
    if as_json:
        _echo(rows)
        return
    if not rows:
        click.echo("No project registered; `hitl projects add PATH` registers one.")
    for p in rows:
        click.echo(_project_line(p))


@projects_group.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def projects_remove(name: str, as_json: bool) -> None:
    """Forget the project NAME (its jobs and runs stay)."""
    from scrapy_hitl.state import projects

    try:
        projects.remove(_state().db, name)
    except _known_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo({"removed": name})
    else:
        click.echo(f"Removed project {name}.")


@projects_group.command("refresh")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def projects_refresh(name: str, as_json: bool) -> None:
    """List the project's spiders again (`scrapy list`), after a deploy."""
    from scrapy_hitl.state import projects

    try:
        project = projects.refresh(_state().db, name)
    except _known_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo(project)
    else:
        click.echo(_project_line(project))


# --- jobs -------------------------------------------------------------------------------------
@click.group("jobs")
def jobs_group() -> None:
    """Crawls run by `hitl worker` (docs/jobs.md)."""


def _job_line(j: dict[str, Any]) -> str:
    why = f"  {j['reason']}" if j["reason"] and j["status"] not in ("running", "queued") else ""
    return (f"{j['id']:>6} {j['status']:18} {j['project'] + '/' + j['spider']:30} run {j['run_id']}  "
            f"{(j['created_at'] or '')[:19]}{why}")


@jobs_group.command("run")
@click.argument("project")
@click.argument("spider")
@click.option("-a", "args", multiple=True, metavar="NAME=VALUE", help="a spider argument, as scrapy crawl -a")
@click.option("-s", "settings", multiple=True, metavar="NAME=VALUE", help="a Scrapy setting, as scrapy crawl -s")
@click.option("--priority", type=int, default=0, show_default=True,
              help="-100..100: above 0 runs before, below 0 after the others")
@click.option("--json", "as_json", is_flag=True)
def jobs_run(project: str, spider: str, args: tuple[str, ...], settings: tuple[str, ...], priority: int,
             as_json: bool) -> None:
    """Queue a crawl of SPIDER in the registered PROJECT; a `hitl worker` runs it."""
    from scrapy_hitl.state import jobs

    spider_args = parse_pairs(args, "-a", settings=False)
    crawl_settings = parse_pairs(settings, "-s", settings=True)
    try:
        job = jobs.create(_state(), project=project, spider=spider, args=spider_args, settings=crawl_settings,
                          priority=priority, requested_by="cli")
    except _known_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo(job)
        return
    click.echo(f"Queued job {job['id']} (run {job['run_id']}) on {jobs.queue_for(job['priority'])}.")
    click.echo(f"`hitl jobs log {job['id']} --follow` shows its log; `hitl jobs cancel {job['id']}` stops it.")


@jobs_group.command("list")
@click.option("--status", type=click.Choice(["queued", "running", "waiting_for_human", "finished", "failed",
                                             "cancelled"]))
@click.option("--project")
@click.option("--spider")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs_list(status: str | None, project: str | None, spider: str | None, limit: int, as_json: bool) -> None:
    """Jobs, newest first."""
    from scrapy_hitl.state import jobs

    rows = jobs.list_(_state().db, status=status, project=project, spider=spider, limit=limit)
    if as_json:
        _echo(rows)
        return
    if not rows:
        click.echo("No jobs; `hitl jobs run PROJECT SPIDER` queues one.")
    for j in rows:
        click.echo(_job_line(j))


@jobs_group.command("show")
@click.argument("job_id", type=click.IntRange(1, MAX_ID))
@click.option("--json", "as_json", is_flag=True)
def jobs_show(job_id: int, as_json: bool) -> None:
    """One job: its state, why it ended, where it ran."""
    from scrapy_hitl.state import jobs

    try:
        job = jobs.get(_state().db, job_id)
    except _known_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo(job)
        return
    for key in ("id", "status", "reason", "message", "project", "spider", "args", "settings", "priority", "run_id",
                "attempts", "host", "pid", "exit_code", "created_at", "started_at", "waiting_at", "finished_at"):
        value = job[key]
        if value not in (None, "", {}):
            click.echo(f"{key:12} {json.dumps(value) if isinstance(value, dict) else value}")


@jobs_group.command("cancel")
@click.argument("job_id", type=click.IntRange(1, MAX_ID))
@click.option("--json", "as_json", is_flag=True)
def jobs_cancel(job_id: int, as_json: bool) -> None:
    """Cancel a job: a queued one at once; a running crawl gets Scrapy's graceful stop (SIGTERM),
    then SIGKILL after HITL_JOB_STOP_GRACE."""
    from scrapy_hitl.state import jobs

    try:
        job = jobs.request_cancel(_state(), job_id, by="cli")
    except _known_errors() as exc:
        raise _fail(exc) from None
    if as_json:
        _echo(job)
    elif job["status"] == "cancelled":
        click.echo(f"Cancelled job {job_id}.")
    else:
        click.echo(f"Job {job_id} is told to stop; its worker stops the crawl gracefully "
                   f"(`hitl jobs show {job_id}` tells when it has).")


@jobs_group.command("log")
@click.argument("job_id", type=click.IntRange(1, MAX_ID))
@click.option("--follow", "-f", is_flag=True, help="keep printing new lines until the job ends")
@click.option("--json", "as_json", is_flag=True, help="JSON: the lines as a list (with --follow, one JSON string a line)")
def jobs_log(job_id: int, follow: bool, as_json: bool) -> None:
    """The crawl's output (the last 20,000 lines are kept in Redis; the worker's data dir has all)."""
    from scrapy_hitl.state import jobs, runs
    from scrapy_hitl.state.models import JOB_FINAL_STATES

    st = _state()
    try:
        job = jobs.get(st.db, job_id)
    except _known_errors() as exc:
        raise _fail(exc) from None
    lines, last = jobs.read_log(st.redis, job_id, count=jobs.LOG_MAXLEN)
    if as_json and not follow:
        _echo(lines)
        return
    for line in lines:
        click.echo(json.dumps(line) if as_json else line)
    while follow:
        lines, last = jobs.read_log(st.redis, job_id, after=last, block_ms=FOLLOW_BLOCK_MS)
        for line in lines:
            click.echo(json.dumps(line) if as_json else line)
        if not lines:
            job = jobs.get(st.db, job_id)
            if job["status"] in JOB_FINAL_STATES or (job["status"] == "waiting_for_human"
                                                     and not runs.is_alive(st.redis, job["run_id"])):
                # ended: one last read for lines written just before
                lines, last = jobs.read_log(st.redis, job_id, after=last)
                for line in lines:
                    click.echo(json.dumps(line) if as_json else line)
                return
