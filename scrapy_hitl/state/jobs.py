"""Jobs: crawls that a ``hitl worker`` on any host runs, queued on RQ.

States::

    queued ──► running ◄──► waiting_for_human ──► queued  (a resolve, once its crawler exited)
      │           │  └──────────► queued        (its worker died: RQ re-queues it)
      │           ├──► finished | failed | cancelled
      └──► cancelled

Every transition is a conditional UPDATE (two workers, or a worker and a cancel, cannot
both win), stamps its own timestamp column, and emits ``job.<state>`` on the event stream.

A job is one run: its ``run_id`` is chosen here, before the crawl starts, and the run's row
is created ``queued`` at once, so the console links to it. A crawl that closes with work
parked for a human (``hitl_paused``) leaves its job ``waiting_for_human``; a resolve then
queues the same job again (``rerun``), and job and run go waiting_for_human → queued →
running → finished. A crawl started by hand in a registered project is taken over by a new
job for its run (``adopt``).

Queues: RQ has no priorities within a queue, so a job goes to one of three queues by its
priority (``hitl-crawls-high``, ``hitl-crawls``, ``hitl-crawls-low``), which workers serve in
that order (RQ's own way of prioritising). The function RQ runs is named by its dotted path,
so the state layer does not import the worker.

A job's log lives in a capped Redis stream (``hitl:joblog:<id>``), which every host reads:
the console tails it live, whichever host runs the crawl.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from scrapy_hitl.state import projects, runs
from scrapy_hitl.state.models import JOB_FINAL_STATES, JOB_STATES, Job, Run, iso, utcnow

if TYPE_CHECKING:
    import redis

    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.db import Database

QUEUE_HIGH, QUEUE_NORMAL, QUEUE_LOW = "hitl-crawls-high", "hitl-crawls", "hitl-crawls-low"
CRAWL_QUEUES = (QUEUE_HIGH, QUEUE_NORMAL, QUEUE_LOW)  # the order a worker serves them in
RUNNER = "hitl_console.jobs.runner.run_job"  # what RQ calls with the job id
MIN_PRIORITY, MAX_PRIORITY = -100, 100
MAX_ARGS, MAX_ARG_LEN = 100, 10_000
# RQ re-queues a job whose worker died (abandoned) at most this often; the runner's own
# HITL_JOB_MAX_ATTEMPTS (at most this + 1) is what ends such a job, as ``failed``.
RQ_RETRIES = 20
LOG_MAXLEN = 20_000  # lines kept per job log (the worker keeps the whole log in its data dir)
LOG_TTL = 30 * 24 * 3600  # seconds a finished job's log stays in Redis
MAX_BY = 255  # characters of requested_by ("user:" and an email may be longer: PostgreSQL refused the row)

# from -> allowed targets
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("running", "cancelled", "failed"),
    "running": ("waiting_for_human", "finished", "failed", "cancelled", "queued"),
    # waiting -> waiting: the crawl that waited has exited (hitl_paused); only a resolve wakes it
    "waiting_for_human": ("running", "waiting_for_human", "finished", "failed", "cancelled", "queued"),
    "finished": (),
    "failed": (),
    "cancelled": (),
}
# the column each state stamps
STAMPS = {"queued": "queued_at", "running": "started_at", "waiting_for_human": "waiting_at",
          "finished": "finished_at", "failed": "finished_at", "cancelled": "finished_at"}
EVENTS = {"queued": "job.queued", "running": "job.running", "waiting_for_human": "job.waiting",
          "finished": "job.finished", "failed": "job.failed", "cancelled": "job.cancelled"}


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job {job_id}")
        self.job_id = job_id


class JobInvalid(ValueError):
    """Bad input for a job: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class JobClosed(ValueError):
    """The job has already ended: it cannot be cancelled (or changed) any more."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"job {job['id']} already ended ({job['status']}); there is nothing to cancel")
        self.job = job


def job_to_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "project": job.project,
        "spider": job.spider,
        "args": dict(job.args or {}),
        "settings": dict(job.settings or {}),
        "priority": job.priority,
        "status": job.status,
        "reason": job.reason,
        "message": job.message,
        "run_id": job.run_id,
        "schedule_id": job.schedule_id,
        "requested_by": job.requested_by,
        "attempts": job.attempts,
        "host": job.host,
        "pid": job.pid or None,
        "worker": job.worker,
        "exit_code": job.exit_code,
        "created_at": iso(job.created_at),
        "queued_at": iso(job.queued_at),
        "started_at": iso(job.started_at),
        "waiting_at": iso(job.waiting_at),
        "finished_at": iso(job.finished_at),
        "cancel_requested_at": iso(job.cancel_requested_at),
        "updated_at": iso(job.updated_at),
    }


def check_spec(args: Any, settings: Any, priority: Any) -> tuple[dict[str, str], dict[str, Any], int]:
    """Validate what a job runs with; JobInvalid names the first problem and the fix.

    ``args`` are spider arguments (``-a k=v``): strings only, as on the command line.
    ``settings`` (``-s K=V``) are JSON scalars, lists or objects, with string keys.
    """
    args = {} if args is None else args
    settings = {} if settings is None else settings
    if not isinstance(args, dict):
        raise JobInvalid("args", 'spider arguments are an object of strings, e.g. {"category": "books"}')
    if len(args) > MAX_ARGS:
        raise JobInvalid("args", f"at most {MAX_ARGS} spider arguments")
    for key, value in args.items():
        if not isinstance(value, str):
            raise JobInvalid("args", f"argument {key!r} must be a string (spider arguments are strings, "
                                     f"as with scrapy crawl -a {key}=...); got {type(value).__name__}")
        if not key or not key.isidentifier() or len(value) > MAX_ARG_LEN:
            raise JobInvalid("args", f"argument {key!r}: the name must be a Python identifier and the "
                                     f"value at most {MAX_ARG_LEN} characters")
        if _unsendable(value):
            raise JobInvalid("args", f"argument {key!r} holds a NUL byte or a lone surrogate, which no "
                                     f"command line carries; send text")
    if not isinstance(settings, dict):
        raise JobInvalid("settings", 'settings are an object, e.g. {"CLOSESPIDER_PAGECOUNT": 100}')
    if _unsendable(settings):
        raise JobInvalid("settings", "a setting holds a NUL byte or a lone surrogate, which no command line "
                                     "carries; send text")
    try:
        json.dumps(settings, allow_nan=False)
    except ValueError:
        raise JobInvalid("settings", "a setting is NaN or Infinity, which JSON (and the database) has no "
                                     "number for; give a finite number") from None
    for key in settings:
        if not key or not key.replace("_", "").isalnum() or not key.isupper():
            raise JobInvalid("settings", f"setting {key!r}: setting names are UPPER_CASE, like DOWNLOAD_DELAY")
        if key in ("HITL_RUN_ID", "JOBDIR"):
            raise JobInvalid("settings", f"{key} is chosen by the worker for each job; leave it out")
    if priority is None:
        priority = 0
    if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise JobInvalid("priority", f"priority is an integer from {MIN_PRIORITY} to {MAX_PRIORITY} "
                                     f"(higher runs first); got {priority!r}")
    return dict(args), dict(settings), priority


def _unsendable(value: Any) -> bool:
    """Whether any string in ``value`` (JSON) cannot go on a command line: a NUL byte, or a
    lone surrogate (not UTF-8). Such a job was stored, then crashed its runner at every start."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node or not node.isascii() and not _utf8(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def queue_for(priority: int) -> str:
    return QUEUE_HIGH if priority > 0 else QUEUE_LOW if priority < 0 else QUEUE_NORMAL


def create(
    state: HitlState,
    *,
    project: str,
    spider: str,
    args: Any = None,
    settings: Any = None,
    priority: Any = 0,
    requested_by: str = "",
    schedule_id: int | None = None,
    enqueue: bool = True,
) -> dict[str, Any]:
    """Queue a new crawl: validate it, record the job and its (queued) run, put it on RQ.

    ProjectNotFound, ProjectInvalid (no such spider) or JobInvalid on bad input."""
    args, settings, priority = check_spec(args, settings, priority)
    found = projects.check_spider(state.db, project, spider)
    run_id = runs.new_run_id()
    with state.db.session() as s:
        s.add(Run(id=run_id, spider=spider, status="queued", args=args, project_dir=found["path"], stats={}))
        job = Job(project=project, spider=spider, args=args, settings=settings, priority=priority,
                  status="queued", run_id=run_id, requested_by=requested_by[:MAX_BY], schedule_id=schedule_id,
                  queued_at=utcnow(), message="")
        s.add(job)
        s.flush()
        created = job_to_dict(job)
    try:
        _emit(state, created, "job.queued")
        if enqueue:
            submit(state, created)
    except Exception:  # Redis failed: a job left queued with nothing on RQ would wait for ever
        with state.db.session() as s:
            s.execute(update(Job).where(Job.id == created["id"]).values(
                status="failed", reason="enqueue_failed", finished_at=utcnow(),
                message="Redis failed as the job was queued; start it again"))
            s.execute(update(Run).where(Run.id == run_id).values(
                status="failed", finish_reason="enqueue_failed", finished_at=utcnow()))
        raise
    return created


def rerun(state: HitlState, run_id: str, *, requested_by: str = "", why: str = "") -> dict[str, Any] | None:
    """Queue the run's job again so the crawl resumes: its project, spider, arguments,
    settings, run and JOBDIR. Only a job ``waiting_for_human`` whose crawler has exited
    (no heartbeat) is re-queued, and only once (a conditional transition).

    Returns the job, or None when the run has no such job: a crawler still waits (it
    resumes by itself), it is already queued again, or the run was started by hand with
    ``scrapy crawl`` (see ``adopt``)."""
    job = latest_for_run(state.db, run_id)
    if job is None or job["status"] != "waiting_for_human" or runs.is_alive(state.redis, run_id):
        return None
    try:
        queued = transition(state, job["id"], "queued", reason="resumed", message=why,
                            requested_by=(requested_by or job["requested_by"])[:MAX_BY])
        if queued is None:
            return None
        _run_queued(state, queued, why)
        submit(state, queued)
    except Exception:
        # Redis failed once the job was queued: back to waiting, so the worker's sweep queues
        # it again; left queued with nothing on RQ, nothing would ever run it
        _back_to_waiting(state, job)
        raise
    return queued


def adopt(state: HitlState, run: dict[str, Any], project: str, *, requested_by: str = "",
          why: str = "") -> dict[str, Any]:
    """A job that resumes a run a person started by hand with ``scrapy crawl``, in a
    registered ``project``: the same spider and arguments, the same run."""
    job_args, _, _ = check_spec({k: v for k, v in (run.get("args") or {}).items() if isinstance(v, str)}, {}, 0)
    with state.db.session() as s:
        job = Job(project=project, spider=run["spider"], args=job_args, settings={}, priority=0, status="queued",
                  run_id=run["id"], requested_by=requested_by[:MAX_BY], queued_at=utcnow(), message=why)
        s.add(job)
        s.flush()
        created = job_to_dict(job)
    try:
        _emit(state, created, "job.queued")
        _run_queued(state, created, why)
        submit(state, created)
    except Exception:  # Redis failed: no job, the run waits again, and the sweep adopts it later
        with state.db.session() as s:
            s.execute(delete(Job).where(Job.id == created["id"]))
        _back_to_waiting(state, created)
        raise
    return created


def _back_to_waiting(state: HitlState, job: dict[str, Any]) -> None:
    with state.db.session() as s:
        s.execute(update(Job).where(Job.id == job["id"], Job.status == "queued").values(
            status="waiting_for_human", reason=job["reason"], message=job["message"], updated_at=utcnow()))
        s.execute(update(Run).where(Run.id == job["run_id"], Run.status == "queued").values(
            status="waiting_for_human", finished_at=None))


def _run_queued(state: HitlState, job: dict[str, Any], why: str) -> None:
    with state.db.session() as s:
        s.execute(update(Run).where(Run.id == job["run_id"]).values(status="queued", finished_at=None))
    state.events.emit("run.queued", {"job_id": job["id"], "reason": why}, run_id=job["run_id"], spider=job["spider"])


def submit(state: HitlState, job: dict[str, Any]) -> None:
    """Put the job on its RQ queue. RQ's own retry re-queues it once when its worker dies
    (the runner counts attempts and gives up past ``HITL_JOB_MAX_ATTEMPTS``)."""
    from rq import Queue, Retry

    Queue(queue_for(job["priority"]), connection=state.redis).enqueue_call(
        RUNNER, args=(job["id"],), job_id=f"hitl-job-{job['id']}-{uuid.uuid4().hex[:8]}",
        timeout=-1, result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600, retry=Retry(max=RQ_RETRIES),
        description=f"crawl {job['project']}/{job['spider']} (job {job['id']})",
    )


def get(db: Database, job_id: int) -> dict[str, Any]:
    with db.session() as s:
        job = s.get(Job, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job_to_dict(job)


def latest_for_run(db: Database, run_id: str) -> dict[str, Any] | None:
    with db.session() as s:
        job = s.scalar(select(Job).where(Job.run_id == run_id).order_by(Job.id.desc()).limit(1))
        return job_to_dict(job) if job else None


def list_(
    db: Database,
    *,
    status: str | None = None,
    project: str | None = None,
    spider: str | None = None,
    run_id: str | None = None,
    limit: int = 50,
    cursor: int | None = None,
) -> list[dict[str, Any]]:
    """Newest first; ``cursor`` is the id of the last job seen (ids only grow)."""
    q = select(Job).order_by(Job.id.desc()).limit(limit)
    if status:
        q = q.where(Job.status == status)
    if project:
        q = q.where(Job.project == project)
    if spider:
        q = q.where(Job.spider == spider)
    if run_id:
        q = q.where(Job.run_id == run_id)
    if cursor is not None:
        q = q.where(Job.id < cursor)
    with db.session() as s:
        return [job_to_dict(j) for j in s.scalars(q)]


def counts(db: Database) -> dict[str, int]:
    """Jobs per state (every state present, zero when none)."""
    from sqlalchemy import func

    with db.session() as s:
        found = dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    return {st: int(found.get(st, 0)) for st in JOB_STATES}


def transition(
    state: HitlState,
    job_id: int,
    to: str,
    *,
    reason: str | None = None,
    message: str | None = None,
    **fields: Any,
) -> dict[str, Any] | None:
    """Move the job to ``to`` if its current state allows it; the job, or None if another
    transition won (e.g. a cancel beat the worker to it). ``fields`` sets other columns
    (host, pid, worker, exit_code, attempts)."""
    if to not in JOB_STATES:
        raise ValueError(f"unknown job state {to!r}")
    sources = [st for st, targets in TRANSITIONS.items() if to in targets]
    values: dict[str, Any] = {"status": to, STAMPS[to]: utcnow(), "updated_at": utcnow(), **fields}
    if reason is not None:
        values["reason"] = reason
    if message is not None:
        values["message"] = message
    if to in ("running", "queued"):
        values["finished_at"] = None
    with state.db.session() as s:
        done = s.execute(update(Job).where(Job.id == job_id, Job.status.in_(sources)).values(**values))
        if not done.rowcount:
            return None
        job = job_to_dict(s.get(Job, job_id, populate_existing=True))
    _emit(state, job, EVENTS[to])
    if to in JOB_FINAL_STATES:
        state.redis.expire(log_key(job_id), LOG_TTL)
        _end_run(state, job)
    return job


def _end_run(state: HitlState, job: dict[str, Any]) -> None:
    """A job that ends leaves no run behind that says it is still to come: one cancelled
    before it started (its run was created ``queued``), or while it waited for a human with
    no crawler alive, or a crawl killed before it could record its end. The run fails with
    the job's reason; a run whose crawl recorded its end keeps it."""
    if runs.is_alive(state.redis, job["run_id"]):
        return  # a crawler still runs it: its end is its own to record
    with state.db.session() as s:
        s.execute(update(Run).where(Run.id == job["run_id"], Run.status.in_(("queued", "running", "waiting_for_human")))
                  .values(status="failed", finish_reason=job["reason"] or job["status"], finished_at=utcnow()))


def request_cancel(state: HitlState, job_id: int, *, by: str = "") -> dict[str, Any]:
    """Cancel: a queued job ends at once; a running one is told to stop (its worker sends
    SIGTERM, Scrapy's graceful stop, then SIGKILL after ``HITL_JOB_STOP_GRACE``).
    JobClosed if it has already ended."""
    job = get(state.db, job_id)
    if job["status"] in JOB_FINAL_STATES:
        raise JobClosed(job)
    if job["status"] == "queued":
        done = transition(state, job_id, "cancelled", reason="cancelled", message=f"cancelled by {by or 'someone'} "
                                                                                  f"before it started")
        if done is not None:
            return done
        job = get(state.db, job_id)  # it started meanwhile: stop it like a running one
        if job["status"] in JOB_FINAL_STATES:
            raise JobClosed(job)
    if (job["status"] == "waiting_for_human" and not runs.is_alive(state.redis, job["run_id"])
            and not state.redis.exists(lease_key(job_id))):
        # closed hitl_paused, no worker holds it: nobody would hear a signal
        done = transition(state, job_id, "cancelled", reason="cancelled",
                          message=f"cancelled by {by or 'someone'} while it waited for a human")
        if done is not None:
            return done
        job = get(state.db, job_id)
        if job["status"] in JOB_FINAL_STATES:
            raise JobClosed(job)
    with state.db.session() as s:
        s.execute(update(Job).where(Job.id == job_id, Job.cancel_requested_at.is_(None))
                  .values(cancel_requested_at=utcnow(), updated_at=utcnow()))
    state.redis.set(cancel_key(job_id), by or "1", ex=7 * 24 * 3600)
    state.redis.publish(CANCEL_CHANNEL, str(job_id))
    job = get(state.db, job_id)
    if (job["status"] == "waiting_for_human" and not runs.is_alive(state.redis, job["run_id"])
            and not state.redis.exists(lease_key(job_id))):
        # its runner let go between our look and the key: nobody reads the key now
        return transition(state, job_id, "cancelled", reason="cancelled",
                          message=f"cancelled by {by or 'someone'} while it waited for a human") or get(state.db, job_id)
    return job


CANCEL_CHANNEL = "hitl:jobs:cancel"


def lease_key(job_id: int) -> str:
    """Held (and renewed) by the worker running the job: one worker per job at a time."""
    return f"hitl:job:{job_id}:lease"


def cancel_key(job_id: int) -> str:
    return f"hitl:job:{job_id}:cancel"


def cancel_requested(client: redis.Redis, job_id: int) -> bool:
    return bool(client.exists(cancel_key(job_id)))


# --- logs -------------------------------------------------------------------------------------
def log_key(job_id: int) -> str:
    return f"hitl:joblog:{job_id}"


def append_log(client: redis.Redis, job_id: int, lines: list[str]) -> None:
    """Append lines (without their newline) to the job's log stream, capped at LOG_MAXLEN."""
    if not lines:
        return
    pipe = client.pipeline(transaction=False)
    for line in lines:
        pipe.xadd(log_key(job_id), {"l": line[:10_000]}, maxlen=LOG_MAXLEN, approximate=True)
    pipe.execute()


def read_log(client: redis.Redis, job_id: int, *, after: str | None = None, count: int = 1000,
             block_ms: int | None = None) -> tuple[list[str], str | None]:
    """Log lines after stream id ``after`` (from the start when None): (lines, last id).
    With ``block_ms``, wait that long for new lines when there are none (a live tail)."""
    start = after or "0-0"
    if block_ms is not None:
        found = client.xread({log_key(job_id): start}, count=count, block=block_ms)
        entries = found[0][1] if found else []
    else:
        entries = client.xrange(log_key(job_id), min=f"({start}" if after else "-", count=count)
    lines = [(fields.get(b"l") or fields.get("l") or b"") for _, fields in entries]
    last = entries[-1][0] if entries else after
    return ([x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in lines],
            last.decode() if isinstance(last, bytes) else last)


def log_tail(client: redis.Redis, job_id: int, lines: int = 200) -> list[str]:
    entries = client.xrevrange(log_key(job_id), count=lines)
    out = [(f.get(b"l") or f.get("l") or b"") for _, f in reversed(entries)]
    return [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in out]


def _emit(state: HitlState, job: dict[str, Any], event: str) -> None:
    state.events.emit(event, {"job_id": job["id"], "project": job["project"], "status": job["status"],
                              "reason": job["reason"], "message": job["message"], "attempts": job["attempts"]},
                      run_id=job["run_id"], spider=job["spider"])

