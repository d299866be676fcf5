"""``hitl worker``: an RQ worker for the webhook queue, plus the sweep.

- RQ does the queueing: ``SimpleWorker`` serves the ``hitl-webhooks`` queue, and runs RQ's
  scheduler (``with_scheduler=True``), which queues the retries that ``enqueue_at`` scheduled.
  A simple (non-forking) worker: a delivery is network I/O, so a fork per job would buy no
  isolation worth its cost, and every job shares one database engine and Redis pool.
- The sweep, a thread of the worker, runs every ``HITL_WEBHOOK_SWEEP_INTERVAL`` seconds (and
  once at start): it times out overdue consultations (which queues their webhooks), skips
  the scraped items whose review deadline passed (``HITL_REVIEW_TIMEOUT``), queues again the
  crawls waiting on domains a human has released (``scrapy_hitl.state.rerun.sweep``), queues
  the jobs of due cron schedules (``scrapy_hitl.state.schedules``), and
  queues again every pending event that is due and unleased, or whose lease expired. That
  is what makes delivery durable: an enqueue lost to a Redis failure, a worker killed
  mid-delivery, or a retry whose scheduler died all end up here. Several workers may run;
  one sweeps per interval (a Redis lock), and a job queued twice is harmless (``claim``).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from typing import TYPE_CHECKING

from hitl_console.lifetime import die_with_parent
from hitl_console.webhooks import delivery
from scrapy_hitl.config import private_opener
from scrapy_hitl.state import consultations, items, rerun, schedules, webhook_events

if TYPE_CHECKING:
    from hitl_console.webhooks.config import WebhookConfig
    from scrapy_hitl.config import StateConfig
    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

SWEEP_LOCK = "hitl:webhooks:sweep"
# RQ blocks on the queue for worker_ttl - 15 s; that must stay under the Redis client's 30 s
# socket timeout, or the worker stops on a TimeoutError.
WORKER_TTL = 40
# How often RQ retries taking the scheduler lock that a killed worker left (it expires in 61 s).
MAINTENANCE_INTERVAL = 60


class Sweeper(threading.Thread):
    """Every ``interval`` seconds: time out overdue consultations, skip overdue items,
    queue due events."""

    def __init__(self, state: HitlState, config: WebhookConfig) -> None:
        super().__init__(name="hitl-webhook-sweep", daemon=True)
        self.state, self.config = state, config
        self.name_token = uuid.uuid4().hex
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # the database or Redis is down: try again next time
                logger.exception("Webhook sweep failed; retrying in %(interval)s s",
                                 {"interval": self.config.sweep_interval})
            if self.stopping.wait(self.config.sweep_interval):
                return

    def stop(self) -> None:
        self.stopping.set()

    def sweep(self, *, force: bool = False) -> dict[str, int]:
        """One pass; ``force`` skips the lock (a burst run, tests)."""
        ttl_ms = max(1, int(self.config.sweep_interval * 900))  # expires before the next pass
        if not force and not self.state.redis.set(SWEEP_LOCK, self.name_token, nx=True, px=ttl_ms):
            return {"timed_out": 0, "queued": 0, "items_skipped": 0, "requeued": 0, "scheduled": 0}  # swept
        timed_out = consultations.expire_overdue(self.state)
        skipped = items.skip_overdue(self.state)
        requeued = rerun.sweep(self.state)  # crawls a resolve released but could not queue
        scheduled = schedules.queue_due(self.state)
        if skipped:
            logger.info("Review timeout: %(n)s item(s) nobody reviewed in time were skipped", {"n": skipped})
        queued = 0
        for event_id in webhook_events.due(self.state.db, grace=self.config.sweep_interval):
            webhook_events.enqueue(self.state.redis, event_id)
            queued += 1
        if scheduled:
            logger.info("Sweep: %(n)s scheduled job(s) queued", {"n": len(scheduled)})
        if requeued:
            logger.info("Sweep: %(n)s waiting crawl(s) queued again (their domains were released)",
                        {"n": len(requeued)})
        if timed_out or queued:
            logger.info("Webhook sweep: %(timed_out)s consultation(s) timed out, %(queued)s event(s) queued",
                        {"timed_out": len(timed_out), "queued": queued})
        return {"timed_out": len(timed_out), "queued": queued, "items_skipped": skipped, "requeued": len(requeued),
                "scheduled": len(scheduled)}


def run_worker(
    state_config: StateConfig,
    config: WebhookConfig,
    *,
    burst: bool = False,
    name: str | None = None,
    logging_level: str = "INFO",
) -> bool:
    """Serve the webhook queue until SIGINT/SIGTERM (RQ's warm shutdown: the attempt in
    flight finishes). ``burst``: sweep once, run what is queued and due, and return.
    Returns whether any job ran."""
    from rq import Queue

    from scrapy_hitl.state import HitlState

    from hitl_console.notify import worker as notify_worker
    from scrapy_hitl.state import notifications

    state = HitlState.open(state_config)
    delivery.use(state, config)
    queue = Queue(webhook_events.QUEUE, connection=state.redis)
    notify_queue = Queue(notifications.QUEUE, connection=state.redis)  # docs/notifications.md
    worker = worker_class()([queue, notify_queue], connection=state.redis, name=name,
                          worker_ttl=WORKER_TTL, maintenance_interval=MAINTENANCE_INTERVAL)
    sweeper = Sweeper(state, config)
    notifier = notify_worker.start(state, burst=burst, sweep_interval=config.sweep_interval)
    from hitl_console import session_worker  # probes, refresh ahead, login pages (docs/sessions.md)

    keeper = session_worker.start(state, burst=burst)
    try:
        if burst:
            sweeper.sweep(force=True)
        else:
            sweeper.start()
        return worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
    finally:
        sweeper.stop()
        notifier.stop()
        keeper.stop()
        for thread in (sweeper, notifier, keeper):
            if thread.is_alive():
                thread.join(5)
        state.close()


@functools.cache
def worker_class() -> type:
    """RQ's ``SimpleWorker`` with its command channel (``rq:pubsub:<worker>``) read every
    second rather than every 60 s.

    RQ 3 reads the channel in redis-py's ``PubSubWorkerThread`` with ``sleep_time=60``. At
    exit it unsubscribes, then stops the thread, which on redis-py 8 joins it; a thread that
    looped once more between the two waits for a subscription for the whole ``sleep_time``.
    So a burst run, or a worker told to stop, could hang for up to a minute after its work
    was done (seen with Redis 7). A one-second wait bounds that; a command still arrives at
    once (the thread blocks on the socket while subscribed)."""
    from rq import SimpleWorker

    class HitlWorker(SimpleWorker):
        def subscribe(self) -> None:
            self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            self.pubsub_thread = self.pubsub.run_in_thread(
                sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler)

    return HitlWorker


class WorkerProcess:
    """``hitl worker`` as a child process, for ``hitl up``. Its own process group, so stopping
    it also stops the RQ scheduler it forks; SIGTERM if ``hitl up`` dies, even by SIGKILL,
    so no worker is left running behind a stack that is gone."""

    def __init__(self, *, log_path: str, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        cmd = [sys.executable, "-m", "hitl_console.cli", "worker"]
        with open(self.log_path, "ab", opener=private_opener) as log:
            self.proc = subprocess.Popen(cmd, env={**os.environ, **(self.env or {})}, stdout=log, stderr=log,
                                         start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM))
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM: RQ's warm shutdown lets the attempt in flight finish. Past ``timeout``,
        SIGKILL, which loses nothing either (the sweep takes the event over)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
