"""The crawl side of ``hitl worker``: RQ workers that serve the three crawl queues.

- One crawl per RQ worker: ``CrawlWorker`` is RQ's ``SimpleWorker`` (no fork per job: the job
  itself only watches a ``scrapy crawl`` child process), serving ``hitl-crawls-high``,
  ``hitl-crawls`` and ``hitl-crawls-low`` in that order. ``HITL_JOB_LIMIT_CRAWLS`` crawl
  workers per ``hitl worker``: one in-process when it is 1 and nothing else runs, otherwise
  one child process each (``python -m hitl_console.jobs.worker``). The cap holds per host
  across several ``hitl worker`` processes too: a crawl worker listens for a job only while
  it holds one of the host's slots in Redis (``HostSlots``).
- Heartbeats: a SimpleWorker does not beat while its job runs, so a thread renews the RQ
  execution every ``HITL_JOB_HEARTBEAT`` seconds with a TTL of three beats. A worker killed
  with SIGKILL stops beating; the next maintenance pass of any crawl worker (every three
  beats, and at its start) finds the execution expired and RQ's abandoned-job handling
  re-queues the job (``Retry``), which ``run_job`` resumes from its ``JOBDIR``.
- Drain: SIGTERM (or SIGINT) makes the worker take no new job; the crawl in flight gets
  SIGTERM (Scrapy's graceful stop, SIGKILL after ``HITL_JOB_STOP_GRACE``) and its job is
  queued again for another worker, which continues from the ``JOBDIR``.
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import subprocess
import sys
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from hitl_console.jobs import runner
from hitl_console.lifetime import die_with_parent
from scrapy_hitl.state import jobs

if TYPE_CHECKING:
    from hitl_console.jobs.config import JobsConfig
    from scrapy_hitl.config import StateConfig

logger = logging.getLogger(__name__)

WORKER_TTL = 40  # as the webhook worker's: RQ's blocking dequeue must stay under the socket timeout


# Take a crawl slot of this host (KEYS[1] = the host's slots; ARGV: now ms, limit, expiry ms,
# worker name, key TTL ms): expired slots are freed first; a worker that holds one keeps it.
TAKE_SLOT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


class HostSlots:
    """``HITL_JOB_LIMIT_CRAWLS`` crawl slots per host, in Redis, shared by every ``hitl worker``
    on it: a crawl worker takes one before it listens for a job and gives it back after the
    job, so two workers on one host together run no more crawls than the cap. A slot lives
    three heartbeats unless renewed (a thread renews it), so a killed worker's slot frees
    itself."""

    def __init__(self, client: Any, *, host: str, limit: int, ttl: float) -> None:
        self.client, self.limit, self.ttl_ms = client, limit, int(ttl * 1000)
        self.key = f"hitl:jobs:slots:{host}"
        self._take = client.register_script(TAKE_SLOT)

    def take(self, member: str) -> bool:
        now = int(time.time() * 1000)
        return bool(self._take(keys=[self.key], args=[now, self.limit, now + self.ttl_ms, member, self.ttl_ms * 2]))

    def renew(self, member: str) -> None:
        self.client.zadd(self.key, {member: int(time.time() * 1000) + self.ttl_ms}, xx=True)

    def release(self, member: str) -> None:
        self.client.zrem(self.key, member)

    def held(self) -> int:
        return int(self.client.zcount(self.key, int(time.time() * 1000), "+inf"))


@functools.cache
def crawl_worker_class() -> type:
    from rq import SimpleWorker
    from rq.worker import WorkerStatus

    from hitl_console.webhooks.worker import worker_class

    base = worker_class()  # the command channel read every second (see its docstring)
    assert issubclass(base, SimpleWorker)

    class CrawlWorker(base):  # type: ignore[misc, valid-type]
        beat_seconds: float = 10.0
        slots: HostSlots | None = None

        def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
            """Listen for a job only while holding one of the host's crawl slots."""
            if self.slots is not None:
                told = False
                while not self.slots.take(self.name):
                    if not told:
                        told = True
                        self.log.info("Worker %s: this host runs %s crawls (HITL_JOB_LIMIT_CRAWLS); waiting "
                                      "for one to end", self.name, self.slots.limit)
                    self.heartbeat()
                    time.sleep(min(1.0, self.beat_seconds))
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            if result is None and self.slots is not None:
                self.slots.release(self.name)
            return result

        @property
        def dequeue_timeout(self) -> int:
            """An idle worker runs its maintenance (which re-queues the job of a worker that
            stopped beating) only between two blocking dequeues, and RQ blocks for
            ``worker_ttl - 15`` s (25 s at a 1 s beat): a dead host's job waited that long, not
            three beats. The block ends at the maintenance interval (three beats) instead."""
            return max(1, min(super().dequeue_timeout, int(self.maintenance_interval)))

        def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
            return max(2, math.ceil(self.beat_seconds * 3))

        def execute_job(self, job: Any, queue: Any) -> None:
            execution = self.prepare_execution(job)
            done = threading.Event()

            def beat() -> None:
                while not done.wait(self.beat_seconds):
                    try:
                        self.maintain_heartbeats(job, execution)
                    except Exception:  # Redis down: the next beat tries again
                        logger.warning("Crawl worker %s: heartbeat failed", self.name, exc_info=True)

            thread = threading.Thread(target=beat, name="hitl-crawl-heartbeat", daemon=True)
            thread.start()
            try:
                self.perform_job(job, queue, execution)
            finally:
                done.set()
                thread.join(5)
                if self.slots is not None:
                    self.slots.release(self.name)
            self.set_state(WorkerStatus.IDLE)

        def request_stop(self, signum: Any, frame: Any) -> None:
            runner.draining.set()  # the crawl in flight stops and its job is queued again
            super().request_stop(signum, frame)

        def request_force_stop(self, signum: Any, frame: Any) -> None:
            """A second SIGTERM during a drain (a process group signalled, then each process)
            must not cut the crawl's graceful stop short: that stop is bounded by
            HITL_JOB_STOP_GRACE already, and SIGKILL still stops the worker at once."""
            if runner.draining.is_set() and self.get_state() == WorkerStatus.BUSY:
                self.log.warning("Worker %s: already draining; the crawl stops within HITL_JOB_STOP_GRACE "
                                 "(SIGKILL stops the worker now)", self.name)
                return
            super().request_force_stop(signum, frame)

    return CrawlWorker


def new_crawl_worker(queues: list[Any], connection: Any, heartbeat: float, *, name: str | None = None) -> Any:
    """A ``CrawlWorker`` that beats every ``heartbeat`` seconds and runs its maintenance
    (re-queueing the jobs of workers that stopped beating) every three beats."""
    beat = max(1, math.ceil(heartbeat))
    worker = crawl_worker_class()(queues, connection=connection, name=name,
                                  worker_ttl=max(WORKER_TTL, beat * 3 + 16), maintenance_interval=beat * 3)
    worker.beat_seconds = heartbeat
    return worker


def run_crawl_worker(state_config: StateConfig, config: JobsConfig, *, burst: bool = False,
                     name: str | None = None, logging_level: str = "INFO") -> bool:
    """One RQ worker serving the crawl queues, in this process, until SIGTERM/SIGINT (drain)."""
    from rq import Queue

    from scrapy_hitl.state import HitlState

    state = HitlState.open(state_config)
    queues = [Queue(q, connection=state.redis) for q in jobs.CRAWL_QUEUES]
    worker = new_crawl_worker(queues, state.redis, config.heartbeat, name=name)
    worker.slots = slots = HostSlots(state.redis, host=runner.HOST, limit=config.crawls, ttl=config.lease)
    runner.use(state, config, worker=worker.name)
    stop = threading.Event()

    def renew() -> None:  # while the worker blocks on the queue, or runs a job
        while not stop.wait(config.heartbeat):
            try:
                slots.renew(worker.name)
            except Exception:  # Redis away: the next beat tries again
                logger.warning("Crawl worker %s: could not renew its crawl slot", worker.name)

    renewer = threading.Thread(target=renew, name="hitl-crawl-slot", daemon=True)
    renewer.start()
    try:
        return worker.work(burst=burst, logging_level=logging_level)
    finally:
        stop.set()
        try:
            slots.release(worker.name)
        except Exception:  # Redis away: the slot expires by itself
            pass
        state.close()


class CrawlWorkers:
    """``HITL_JOB_LIMIT_CRAWLS`` crawl workers as child processes of ``hitl worker``. A child
    that crashes is started again; ``stop`` drains them all. Each child gets SIGTERM if this
    process dies (``PR_SET_PDEATHSIG``): a killed ``hitl worker`` leaves no crawl unwatched."""

    def __init__(self, config: JobsConfig, *, name: str | None = None) -> None:
        self.config = config
        self.name = name
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * config.crawls
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "hitl_console.jobs.worker"]
        if self.name:  # a suffix: a crashed child's name stays registered in RQ until its TTL
            cmd += ["--name", f"{self.name}-crawl{slot}-{uuid.uuid4().hex[:6]}"]
        return subprocess.Popen(cmd, preexec_fn=die_with_parent(signal.SIGTERM))

    def start(self) -> CrawlWorkers:
        for slot in range(len(self.procs)):
            self.procs[slot] = self._spawn(slot)
        self.thread = threading.Thread(target=self._supervise, name="hitl-crawl-workers", daemon=True)
        self.thread.start()
        return self

    def _supervise(self) -> None:
        while not self.stopping.wait(1.0):
            for slot, proc in enumerate(self.procs):
                # A crash is restarted; an exit on request (0, SIGTERM, SIGINT: the stack is
                # stopping, or someone drained that worker) is not.
                if (proc is not None and proc.poll() is not None and not self.stopping.is_set()
                        and proc.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)):
                    logger.warning("Crawl worker %(slot)s exited with %(code)s; starting it again",
                                   {"slot": slot, "code": proc.returncode})
                    self.procs[slot] = self._spawn(slot)

    def wait(self) -> None:
        while not self.stopping.is_set() and any(p is not None and p.poll() is None for p in self.procs):
            time.sleep(0.5)

    def stop(self) -> None:
        """Drain: SIGTERM to each (its crawl stops gracefully, its job is queued again)."""
        self.stopping.set()
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.config.stop_grace + 30
        for proc in self.procs:
            if proc is None:
                continue
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_workers(state_config: StateConfig, queues: tuple[str, ...], *, burst: bool = False,
                name: str | None = None, webhook_config: Any = None, jobs_config: JobsConfig | None = None) -> None:
    """``hitl worker --queues ...``: webhooks in this process (with the sweep); crawls in this
    process when they are all it serves with one slot (and always in a burst run), else in
    ``HITL_JOB_LIMIT_CRAWLS`` child processes."""
    from hitl_console.jobs.config import JobsConfig
    from hitl_console.webhooks.worker import run_worker

    config = jobs_config or JobsConfig.from_env()
    if "crawls" not in queues:
        run_worker(state_config, webhook_config, burst=burst, name=name)
        return
    if "webhooks" not in queues and (config.crawls == 1 or burst):
        run_crawl_worker(state_config, config, burst=burst, name=name)
        return
    if burst:  # both, once: crawls first, then what the webhooks have queued meanwhile
        run_crawl_worker(state_config, config, burst=True, name=name and f"{name}-crawl")
        run_worker(state_config, webhook_config, burst=True, name=name)
        return
    workers = CrawlWorkers(config, name=name).start()
    stop = threading.Event()
    try:
        if "webhooks" in queues:
            run_worker(state_config, webhook_config, burst=False, name=name)
        else:
            previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                while not stop.wait(0.5):
                    pass
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
    finally:
        # The crawl workers drain (bounded by HITL_JOB_STOP_GRACE); another Ctrl-C or SIGTERM
        # meanwhile must not kill this process and leave them unsupervised.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: logger.warning("Draining the crawl workers; SIGKILL stops at once"))
        workers.stop()


def main(argv: list[str] | None = None) -> None:
    """A crawl worker child of ``hitl worker`` (the environment carries every setting)."""
    import argparse

    from hitl_console.jobs.config import JobsConfig
    from scrapy_hitl.config import StateConfig

    parser = argparse.ArgumentParser(prog="hitl_console.jobs.worker")
    parser.add_argument("--name")
    parser.add_argument("--burst", action="store_true")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("hitl_console").setLevel(logging.INFO)
    run_crawl_worker(StateConfig.from_env(), JobsConfig.from_env(), burst=opts.burst, name=opts.name)


if __name__ == "__main__":  # pragma: no cover
    main()
