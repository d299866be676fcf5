"""``run_job``: what a ``hitl worker`` runs for one crawl job (RQ calls it with the job id).

1. Claim: only one worker runs a job at a time (a Redis lease, renewed every
   ``HITL_JOB_HEARTBEAT``), and only a ``queued`` job starts (``queued -> running``, a
   conditional transition: a cancel that came first wins). A job found ``running`` was
   re-queued by RQ because its worker died (RQ's abandoned-job handling): it goes back to
   ``queued`` (reason ``worker_lost``) and starts again, at most ``HITL_JOB_MAX_ATTEMPTS``
   times in all.
2. Run ``scrapy crawl SPIDER -a k=v -s K=V -s HITL_RUN_ID=<run> -s JOBDIR=<data dir>/jobs/<run>``
   as a child process in the project's folder: the crawl never runs inside the worker. A
   small go-between (child.py) gives the crawl one SIGTERM if the worker dies, so a killed
   worker's crawl still stops gracefully and saves its ``JOBDIR`` for the re-run.
3. Stream the child's output, line by line, to the job's log in Redis (batched) and to
   ``<data dir>/job-logs/job-<id>.log``; mirror the run's ``waiting_for_human`` onto the job;
   watch for a cancel (``jobs.CANCEL_CHANNEL`` and the cancel key) and for the worker's own
   shutdown: SIGTERM (Scrapy's graceful stop), SIGKILL after ``HITL_JOB_STOP_GRACE``.
4. End the job from the finish reason the crawl recorded on its run (or logged) and the exit
   code: see ``outcome``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from scrapy_hitl.state import jobs, projects, runs
from scrapy_hitl.state.models import JOB_FINAL_STATES, Run

if TYPE_CHECKING:
    from hitl_console.jobs.config import JobsConfig
    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

POLL = 0.05  # seconds between two looks at the child and the log (a wake-up costs microseconds; a
# crawl's end noticed late costs every job that long)
LEASE_POLL = 0.1  # seconds between two tries at a lease another runner holds
RUN_STATUS_EVERY = 1.0  # seconds between two reads of the run's status (waiting_for_human)
LOG_BATCH = 500  # lines that make the runner send its buffer to Redis at once
LOG_FLUSH = 0.5  # seconds between two sends of the log buffer to Redis
TAIL_LINES = 60  # last lines kept to explain a failure
HOST = socket.gethostname()
STARTED_MARK = ".hitl-started"  # touched in the JOBDIR as each crawl starts: see saved_cleanly()
CHILD = str(Path(__file__).with_name("child.py"))  # stops the crawl once if the worker dies

# Scrapy finish reason of a cap -> (JobsConfig field, the job's reason, words)
LIMIT_REASONS: dict[str, tuple[str, str, str]] = {
    "closespider_pagecount": ("pages", "page_limit", "stopped at the page cap ({value:g} pages, HITL_JOB_LIMIT_PAGES)"),
    "closespider_timeout": ("time", "time_limit", "stopped at the time cap ({value:g} s, HITL_JOB_LIMIT_TIME)"),
    "memusage_exceeded": ("memory_mb", "memory_limit",
                          "stopped at the memory cap ({value:g} MB, HITL_JOB_LIMIT_MEMORY_MB)"),
}
COMPLETED = ("finished",)

_context: dict[str, Any] = {}
draining = threading.Event()  # set by the worker on SIGTERM: stop the crawl, queue the job again


def use(state: HitlState, config: JobsConfig, worker: str = "") -> None:
    """The worker's state and settings, for every job it runs (one database engine and
    Redis pool per worker process)."""
    _context.update(state=state, config=config, worker=worker)


def run_job(job_id: int) -> str:
    """RQ's entry point. Returns a short word on what happened (RQ keeps it as the result)."""
    if "state" not in _context:  # run by a plain `rq worker`, or a test: open our own
        from hitl_console.jobs.config import JobsConfig
        from scrapy_hitl.config import StateConfig
        from scrapy_hitl.state import HitlState

        use(HitlState.open(StateConfig.from_env()), JobsConfig.from_env())
    return JobRunner(_context["state"], _context["config"], int(job_id), worker=_context.get("worker", "")).run()


# --- pure decisions (tests/unit/test_job_runner.py) ------------------------------------------
def setting_text(value: Any) -> str:
    """A setting's value as ``scrapy crawl -s K=V`` takes it: dicts as JSON (Scrapy's
    ``getdict`` parses it), lists comma-joined (``getlist`` splits on commas)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return json.dumps(value) if value is None else str(value)


def limit_settings(job_settings: dict[str, Any], config: JobsConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """The Scrapy settings that enforce the caps, and which finish reasons then mean "a cap
    stopped it" (not the job's own, lower, CLOSESPIDER_* setting).

    A job may ask for a lower cap than the worker's; never a higher one."""
    out: dict[str, Any] = {}
    capped: dict[str, str] = {}

    def clamp(setting: str, cap: float, finish_reason: str | None) -> None:
        if not cap:
            return
        own = _number(job_settings.get(setting))
        # Scrapy reads these as integers (the time as a float): 0.5 pages is 0, no limit, and
        # a negative page count is never reached; neither is a lower cap.
        if (1 if setting != "CLOSESPIDER_TIMEOUT" else 0) <= own <= cap and own > 0:
            return  # the job's own cap is the lower one: its finish reason is the job's
        out[setting] = int(cap) if float(cap).is_integer() else cap
        if finish_reason:
            capped[finish_reason] = LIMIT_REASONS[finish_reason][1]

    clamp("CLOSESPIDER_PAGECOUNT", config.pages, "closespider_pagecount")
    clamp("CLOSESPIDER_TIMEOUT", config.time, "closespider_timeout")
    clamp("MEMUSAGE_LIMIT_MB", config.memory_mb, "memusage_exceeded")
    if "MEMUSAGE_LIMIT_MB" in out:
        out["MEMUSAGE_ENABLED"] = True
    clamp("HITL_BROWSER_MAX_PAGES", config.browser_pages, None)
    return out, capped


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def saved_cleanly(jobdir: Path) -> bool:
    """Whether the JOBDIR's last crawl stopped cleanly: Scrapy wrote its scheduler's state
    (``requests.queue/active.json``) after the runner marked that crawl's start."""
    try:
        saved = (jobdir / "requests.queue" / "active.json").stat().st_mtime_ns
    except FileNotFoundError:
        return False
    try:
        return saved >= (jobdir / STARTED_MARK).stat().st_mtime_ns
    except FileNotFoundError:
        return True  # saved by a crawl started before the mark existed


def build_command(job: dict[str, Any], config: JobsConfig, jobdir: Path) -> tuple[list[str], dict[str, str]]:
    """The child's command line, and the caps' finish reasons (see ``limit_settings``)."""
    cmd = [sys.executable, "-m", "scrapy", "crawl", job["spider"]]
    for key, value in (job["args"] or {}).items():
        cmd += ["-a", f"{key}={value}"]
    caps, capped = limit_settings(job["settings"] or {}, config)
    # Scrapy's telnet console (on by default) is a Python shell in the crawl, and its password
    # goes into the log every user can read: off for jobs, unless the job (an admin) asks.
    settings = {"TELNETCONSOLE_ENABLED": False, **(job["settings"] or {}), **caps, "HITL_RUN_ID": job["run_id"],
                "JOBDIR": str(jobdir)}
    for key, value in settings.items():
        cmd += ["-s", f"{key}={setting_text(value)}"]
    return cmd, capped


def outcome(
    *,
    finish_reason: str | None,
    exit_code: int | None,
    capped: dict[str, str],
    config: JobsConfig,
    cancelled: bool = False,
    drained: bool = False,
    tail: list[str] | tuple[str, ...] = (),
) -> tuple[str, str, str]:
    """(job status, reason, message) for a crawl that exited. ``queued`` means: run it again
    (the worker stopped it to shut down)."""
    if cancelled:
        return "cancelled", "cancelled", "stopped on request" + _killed(exit_code)
    if drained:
        return "queued", "drained", ("its worker shut down; queued again to continue from its JOBDIR"
                                     + _killed(exit_code))
    if finish_reason in capped:
        field, reason, words = LIMIT_REASONS[finish_reason]
        return "failed", reason, words.format(value=getattr(config, field))
    if finish_reason == "hitl_paused":
        return ("waiting_for_human", "hitl_paused",
                "requests wait for a human; resolving them queues this job again")
    if exit_code == 0 and (finish_reason is None or finish_reason in COMPLETED
                           or finish_reason.startswith("closespider_")):
        return "finished", finish_reason or "finished", ""
    if exit_code is not None and exit_code < 0:
        reason, words = "killed", f"scrapy crawl was killed by signal {-exit_code}"
    elif finish_reason and finish_reason not in COMPLETED:
        reason, words = finish_reason, f"the crawl closed with finish reason {finish_reason!r}"
    else:
        reason, words = "crashed", f"scrapy crawl exited with code {exit_code}"
    last = _error_line(tail)
    return "failed", reason, f"{words}: {last}" if last else words


def _killed(exit_code: int | None) -> str:
    return " (killed after HITL_JOB_STOP_GRACE)" if exit_code == -signal.SIGKILL else ""


def _error_line(tail: list[str] | tuple[str, ...]) -> str:
    """The exception line of the last traceback in the log's tail, else its last ERROR line."""
    lines = list(tail)
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback"):
            after = [x for x in lines[i + 1:] if x and not x.startswith((" ", "\t"))]
            if after:
                return after[0][:500]
    errors = [x for x in lines if " ERROR: " in x or " CRITICAL: " in x]
    return errors[-1][:500] if errors else ""


def finish_reason_in(line: str) -> str | None:
    """The finish reason from Scrapy's "Spider closed (reason)" log line."""
    marker = "Spider closed ("
    at = line.find(marker)
    if at < 0 or not line.rstrip().endswith(")"):
        return None
    return line.rstrip()[at + len(marker):-1] or None


# --- the runner -------------------------------------------------------------------------------
lease_key = jobs.lease_key


class JobRunner:
    def __init__(self, state: HitlState, config: JobsConfig, job_id: int, *, worker: str = "") -> None:
        self.state, self.config, self.job_id = state, config, job_id
        self.worker = worker
        self.token = uuid.uuid4().hex
        self.proc: subprocess.Popen[bytes] | None = None
        self.buffer: list[str] = []
        self.buffer_lock = threading.Lock()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.logged_reason: str | None = None
        self.log_reader: IO[bytes]
        self.log_offset = 0
        self.log_path = Path()
        self.partial = b""
        self.lost_note: str | None = None  # why the last attempt ended, when its worker did not say

    # claim ---------------------------------------------------------------------------------
    def run(self) -> str:
        try:
            job = jobs.get(self.state.db, self.job_id)
        except jobs.JobNotFound:
            logger.warning("Job %(id)s is gone (deleted?); nothing to run", {"id": self.job_id})
            return "gone"
        if job["status"] in JOB_FINAL_STATES:
            return f"skipped: already {job['status']}"
        if not self._take_lease():
            return "skipped: another worker runs it"
        try:
            now = jobs.get(self.state.db, self.job_id)  # as it is now that the lease is ours
            if now["status"] != job["status"]:
                # another runner had it meanwhile: it ended, or waits for a human again (not a
                # dead worker's job to start again)
                return f"skipped: {now['status']} meanwhile"
            return self._run(now)
        finally:
            if self.lost_note:  # its worker died, and no attempt followed (cancelled, failed): say so
                try:
                    self._log_now([self.lost_note])
                except OSError as exc:
                    logger.warning("Job %(id)s: could not write its log: %(exc)s", {"id": self.job_id, "exc": exc})
            if self.state.redis.get(lease_key(self.job_id)) in (self.token, self.token.encode()):
                self.state.redis.delete(lease_key(self.job_id))

    def _take_lease(self) -> bool:
        """The job's lease, waiting for one another runner holds for up to a lease's length:
        a runner that queued the job again (a drain) or whose crawl just closed (a resolve
        re-queued the job meanwhile) lets go within moments, and a dead worker's lease runs
        out (RQ may call its job abandoned first: its execution and the lease are renewed at
        different moments). Skipping instead would leave the job queued, or running, with no
        RQ job left to run it. Only a runner still renewing the lease keeps it."""
        lease_ms = int(self.config.lease * 1000)
        give_up = time.monotonic() + self.config.lease + self.config.heartbeat
        while not self.state.redis.set(lease_key(self.job_id), self.token, nx=True, px=lease_ms):
            if time.monotonic() > give_up:
                return False
            time.sleep(LEASE_POLL)
        return True

    def _run(self, job: dict[str, Any]) -> str:
        st = self.state
        if job["status"] in ("running", "waiting_for_human"):
            # Its worker died mid-crawl and RQ queued it again (abandoned job): start again.
            lost = (f"--- attempt {job['attempts']} ended without its worker: the worker stopped "
                    f"(killed or crashed) before the crawl did (worker_lost)")
            if job["attempts"] >= self.config.max_attempts:
                self._log_now([lost, f"--- not started again: that was attempt {job['attempts']} of "
                                     f"HITL_JOB_MAX_ATTEMPTS ({self.config.max_attempts})"])
                self._end("failed", "worker_lost", f"its worker died during each of its {job['attempts']} "
                                                   f"attempts (HITL_JOB_MAX_ATTEMPTS); look at the log")
                return "failed: too many attempts"
            back = jobs.transition(st, self.job_id, "queued", reason="worker_lost",
                                   message="its worker stopped without ending it (killed or crashed); "
                                           "started again from its JOBDIR")
            if back is None:
                return "skipped: changed meanwhile"
            jobs._run_queued(st, back, "its worker died; started again")  # the run too (run.queued)
            self.lost_note = lost  # at the top of the next attempt's log
            job = back
        if job["status"] != "queued":
            return f"skipped: {job['status']}"
        if jobs.cancel_requested(st.redis, self.job_id):
            jobs.transition(st, self.job_id, "cancelled", reason="cancelled", message="cancelled before it started")
            return "cancelled"
        try:
            folder = Path(projects.get(st.db, job["project"])["path"])
        except projects.ProjectNotFound as exc:
            self._end("failed", "project_missing", str(exc))
            return "failed: no project"
        claimed = jobs.transition(st, self.job_id, "running", attempts=job["attempts"] + 1, host=HOST,
                                  pid=0, worker=self.worker, exit_code=None)
        if claimed is None:
            return "skipped: cancelled meanwhile"
        if not self._wait_previous_crawler(claimed):
            return "failed: previous crawler alive"
        from hitl_console.session_worker import before_job  # a failing session probe pauses its domain first

        before_job(st)
        return self._crawl(claimed, folder)

    def _wait_previous_crawler(self, job: dict[str, Any]) -> bool:
        """A re-run after a worker died: that worker's crawl got SIGTERM and is saving its
        JOBDIR. Two crawls on one JOBDIR would corrupt it, so wait until its heartbeat ends."""
        bound = time.monotonic() + self.config.stop_grace + 60
        while runs.is_alive(self.state.redis, job["run_id"]):
            if jobs.cancel_requested(self.state.redis, self.job_id):
                self._end("cancelled", "cancelled", "cancelled while its previous crawler was stopping")
                return False
            if time.monotonic() > bound:
                self._end("failed", "run_busy", f"run {job['run_id']} is still crawling elsewhere (its heartbeat "
                                                f"lives on); stop that crawler, then run the job again")
                return False
            self._renew_lease()
            time.sleep(POLL)
        return True

    def _check_jobdir(self, job: dict[str, Any], jobdir: Path) -> str | None:
        """Whether this attempt continues from the JOBDIR, and if not, why (a log line).

        Scrapy saves its scheduler's state (``requests.queue/active.json``) only when the crawl
        stops cleanly. A JOBDIR whose last crawl was killed (a host lost, the OOM killer) would
        resume with an empty queue and a dupefilter that skips what was queued: pages lost.
        Such a JOBDIR is moved aside, and a JOBDIR that is not here at all (another host's data
        dir, no shared HITL_JOB_DIR) means the same: the crawl starts over. Then the items
        the earlier attempts recorded (and nobody reviewed) are dropped, since this attempt
        records them again: the run holds each once.
        """
        if saved_cleanly(jobdir):
            return None
        note = ""
        if jobdir.exists() and any(jobdir.iterdir()):
            aside = jobdir.with_name(f"{jobdir.name}.unclean-{int(time.time())}")
            jobdir.rename(aside)
            note = f"; its JOBDIR was not saved (the crawl was killed) and is kept as {aside}"
        elif job["attempts"] > 1:
            note = (f"; the JOBDIR of its earlier attempt is not on {HOST} (HITL_JOB_DIR on a disk "
                    f"every worker host mounts keeps it)")
        if job["attempts"] <= 1 and not note:
            return None
        from scrapy_hitl.state import items

        dropped = items.discard_unreviewed(self.state.db, job["run_id"])
        return f"starting the crawl over{note}; {dropped} items of earlier attempts dropped (recorded again)"

    # the crawl -----------------------------------------------------------------------------
    def _crawl(self, job: dict[str, Any], folder: Path) -> str:
        st, config = self.state, self.config
        data_dir = Path(st.config.data_dir)
        jobdir = (Path(config.jobs_dir) if config.jobs_dir else data_dir / "jobs") / job["run_id"]
        start_note = self._check_jobdir(job, jobdir)
        jobdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (jobdir / STARTED_MARK).touch()
        cmd, capped = build_command(job, config, jobdir)
        # The run's finish reason is the crawl's to write; one left by an earlier attempt
        # must not be read as this one's.
        with st.db.session() as s:
            s.execute(update(Run).where(Run.id == job["run_id"]).values(finish_reason=None))
        env = {**projects.project_env(folder), "PYTHONUNBUFFERED": "1"}
        header = (f"--- job {self.job_id} attempt {job['attempts']} on {HOST} "
                  f"({time.strftime('%Y-%m-%d %H:%M:%S %Z')}): scrapy crawl {job['spider']} in {folder}")
        # The child writes straight into the log file, which this worker tails: a crawl whose
        # worker was killed keeps a working stdout while it stops gracefully.
        self.log_path = log_path = self._log_file()
        with open(log_path, "ab", opener=_private) as out:
            for line in (self.lost_note, header):
                if line:
                    out.write(f"{line}\n".encode())
                    self._line(line)
            self.lost_note = None  # written: above this attempt's header
            out.flush()
            self.log_offset = out.tell()
            if start_note:
                self._line(start_note)
            try:
                self.proc = subprocess.Popen([sys.executable, "-I", "-S", CHILD, str(os.getpid()),
                                              f"{self.config.stop_grace:g}", "--", *cmd], cwd=folder,
                                             env=env, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                self._line(f"could not start scrapy: {exc}")
                self._flush()
                self._end("failed", "start_failed", f"could not start scrapy crawl: {exc}")
                return "failed"
        self._set_pid(self.proc.pid)
        cancelled = drained = False
        with open(log_path, "rb") as self.log_reader:
            self.log_reader.seek(self.log_offset)
            try:
                cancelled, drained = self._watch(job)
            finally:
                if self.proc.poll() is None:
                    # We are leaving while it runs (the worker's cold shutdown, an error): a
                    # graceful stop, which it finishes alone; RQ re-queues the job later.
                    self._stop("the worker is leaving", None)
                else:
                    _killpg(self.proc.pid, signal.SIGKILL)  # what the crawl left behind (browsers)
                self._read_log(final=True)
                self._flush()
        exit_code = self.proc.returncode
        run = runs.get_run(st.db, job["run_id"]) or {}
        finish_reason = run.get("finish_reason") or self.logged_reason
        status, reason, message = outcome(finish_reason=finish_reason, exit_code=exit_code, capped=capped,
                                          config=config, cancelled=cancelled, drained=drained,
                                          tail=list(self.tail))
        if status == "waiting_for_human" and jobs.cancel_requested(st.redis, self.job_id):
            status, reason, message = "cancelled", "cancelled", "cancelled while it closed to wait for a human"
        logger.info("Job %(id)s: crawl exited with %(code)s (finish reason %(fr)s): %(status)s",
                    {"id": self.job_id, "code": exit_code, "fr": finish_reason, "status": status})
        if (run and run.get("status") in ("queued", "running")
                and jobs.get(st.db, self.job_id)["status"] != "queued"):  # not queued again by a resolve meanwhile
            # the crawl never recorded its end (it failed before opening, was killed, or
            # its project does not use the add-on)
            runs.update_run(st.db, job["run_id"], status="completed" if status == "finished" else "failed",
                            finish_reason=finish_reason or reason)
        if status == "queued":
            again = jobs.transition(st, self.job_id, "queued", reason=reason, message=message, exit_code=exit_code)
            if again is not None:
                jobs._run_queued(st, again, "its worker shut down; another one continues it")  # the run too
                jobs.submit(st, again)
            return "drained: queued again"
        self._end(status, reason, message, exit_code=exit_code)
        return status

    def _watch(self, job: dict[str, Any]) -> tuple[bool, bool]:
        """Until the child exits: cancel, drain, run status, lease, log batches."""
        st, proc = self.state, self.proc
        assert proc is not None
        pubsub = st.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(jobs.CANCEL_CHANNEL)
        cancelled = drained = False
        kill_at: float | None = None
        next_beat = next_status = next_cancel = next_flush = next_warning = 0.0
        mirrored = "running"
        try:
            while proc.poll() is None:
                try:
                    message = pubsub.get_message(timeout=POLL)
                except RedisError:  # Redis away: keep watching the crawl, try again next tick
                    message = None
                    time.sleep(POLL)
                now = time.monotonic()
                asked = message is not None and _text(message.get("data")) == str(self.job_id)
                try:
                    if not cancelled and (asked or now >= next_cancel):
                        next_cancel = now + 1.0
                        if asked or jobs.cancel_requested(st.redis, self.job_id):
                            cancelled = True
                            kill_at = self._stop("cancel requested", kill_at)
                    if now >= next_beat:
                        next_beat = now + self.config.heartbeat
                        self._renew_lease()
                    if now >= next_status:
                        next_status = now + RUN_STATUS_EVERY
                        mirrored = self._mirror_run(job["run_id"], mirrored)
                except (RedisError, SQLAlchemyError) as exc:
                    # A Redis or database hiccup must not orphan a running crawl: it goes on,
                    # and so does the watch.
                    if now >= next_warning:
                        next_warning = now + 30
                        logger.warning("Job %(id)s: %(exc)s; still watching the crawl", {"id": self.job_id, "exc": exc})
                if draining.is_set() and not drained and not cancelled:
                    drained = True
                    kill_at = self._stop("the worker is shutting down", kill_at)
                if kill_at is not None and now >= kill_at:
                    self._note(f"--- still running {self.config.stop_grace:g} s after SIGTERM "
                               f"(HITL_JOB_STOP_GRACE): SIGKILL")
                    _killpg(proc.pid, signal.SIGKILL)
                    kill_at = float("inf")
                self._read_log()
                if len(self.buffer) >= LOG_BATCH or now >= next_flush:
                    next_flush = now + LOG_FLUSH
                    self._flush()
            proc.wait()
        finally:
            try:
                pubsub.close()
            except Exception:  # Redis gone: nothing to unsubscribe from
                pass
        return cancelled, drained

    def _stop(self, why: str, kill_at: float | None) -> float:
        """SIGTERM (Scrapy's graceful stop: in-flight requests finish, JOBDIR is saved)."""
        if kill_at is not None:
            return kill_at
        self._note(f"--- {why}: SIGTERM (graceful stop), SIGKILL in {self.config.stop_grace:g} s")
        assert self.proc is not None
        try:
            os.kill(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return time.monotonic() + self.config.stop_grace

    def _mirror_run(self, run_id: str, mirrored: str) -> str:
        """The run waits for a human (everything parked) -> the job says so, and back."""
        run = runs.get_run(self.state.db, run_id)
        status = run["status"] if run else "running"
        if status == "waiting_for_human" and mirrored == "running":
            if jobs.transition(self.state, self.job_id, "waiting_for_human", reason="all_work_parked",
                               message="every remaining request waits for a human") is not None:
                return "waiting_for_human"
        elif status == "running" and mirrored == "waiting_for_human":
            if jobs.transition(self.state, self.job_id, "running", reason="resumed", message="") is not None:
                return "running"
        return mirrored

    def _set_pid(self, pid: int) -> None:
        from scrapy_hitl.state.models import Job

        with self.state.db.session() as s:
            s.execute(update(Job).where(Job.id == self.job_id).values(pid=pid))

    def _renew_lease(self) -> None:
        self.state.redis.set(lease_key(self.job_id), self.token, px=int(self.config.lease * 1000))

    def _end(self, status: str, reason: str, message: str, *, exit_code: int | None = None) -> None:
        fields: dict[str, Any] = {} if exit_code is None else {"exit_code": exit_code}
        done = jobs.transition(self.state, self.job_id, status, reason=reason, message=message, **fields)
        if done is None and status == "waiting_for_human":
            # already waiting (mirrored from the run while the crawl waited): now it has closed
            from scrapy_hitl.state.models import Job

            with self.state.db.session() as s:
                s.execute(update(Job).where(Job.id == self.job_id, Job.status == status)
                          .values(reason=reason, message=message, **fields))

    # the log -------------------------------------------------------------------------------
    def _read_log(self, *, final: bool = False) -> None:
        """The child's new output, whole lines only (a partial last line waits, unless final)."""
        chunk = self.log_reader.read()
        if not chunk and not (final and self.partial):
            return
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = b"" if final else lines.pop()
        for raw in lines:
            if raw or not final:
                self._line(raw.decode("utf-8", "replace").rstrip("\r"))

    def _log_file(self) -> Path:
        """The job's whole log on this worker: ``<HITL_DATA_DIR>/job-logs/job-<id>.log``."""
        log_dir = Path(self.state.config.data_dir) / "job-logs"
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return log_dir / f"job-{self.job_id}.log"

    def _log_now(self, lines: list[str]) -> None:
        """Lines of the runner's own, outside an attempt: into the log file and Redis now."""
        with open(self._log_file(), "ab", opener=_private) as out:
            out.write("".join(f"{line}\n" for line in lines).encode())
        with self.buffer_lock:
            self.buffer.extend(lines)
        self._flush()

    def _note(self, line: str) -> None:
        """A line of the runner's own (a stop), into the log file the child writes too."""
        with open(self.log_path, "ab") as out:
            out.write(f"{line}\n".encode())

    def _line(self, line: str) -> None:
        self.tail.append(line)
        reason = finish_reason_in(line) if "Spider closed (" in line else None
        if reason:
            self.logged_reason = reason
        with self.buffer_lock:
            self.buffer.append(line)

    def _flush(self) -> None:
        with self.buffer_lock:
            lines, self.buffer = self.buffer, []
        if lines:
            try:
                jobs.append_log(self.state.redis, self.job_id, lines)
            except Exception:  # Redis down: the log file in the data dir still has them
                logger.warning("Job %(id)s: %(n)s log line(s) not sent to Redis", {"id": self.job_id, "n": len(lines)})


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
