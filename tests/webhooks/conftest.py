"""Webhook fixtures: a real HTTP receiver on 127.0.0.1 (``tests.support.receiver``), a real
``hitl worker`` process, an agent. Waits poll with a deadline; nothing here asserts on a
duration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hitl_console.webhooks import worker
from scrapy_hitl.state import apikeys, consultations
from scrapy_hitl.state.models import WebhookEvent
from tests.support.processes import die_with_test
from tests.support.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
# Short everything, so a whole retry sequence takes a second or two.
FAST = {
    "HITL_WEBHOOK_ALLOW_PRIVATE": "1",
    "HITL_WEBHOOK_RETRY_SCHEDULE": "0.05,0.1,0.2",
    "HITL_WEBHOOK_MAX_ATTEMPTS": "5",
    "HITL_WEBHOOK_TIMEOUT": "2",
    "HITL_WEBHOOK_SWEEP_INTERVAL": "0.3",
}


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "the condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(plan: list[Any] | None = None) -> Receiver:
        r = Receiver(plan).start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def webhook_env(hitl_env, monkeypatch):
    for k, v in FAST.items():
        monkeypatch.setenv(k, v)
    return {**hitl_env, **FAST}


class Agent:
    def __init__(self, state, name: str = "bot") -> None:
        info, self.key, self.secret = apikeys.create(state, name, created_by="test")
        self.id = info["id"]
        self.state = state

    def ask(self, callback_url: str | None, **fields: Any) -> dict[str, Any]:
        fields.setdefault("options", ["yes", "no"])
        return consultations.create(self.state, title="Is this the right person?", callback_url=callback_url,
                                    api_key_id=self.id, actor=f"agent:{self.id}", **fields)


@pytest.fixture
def agent(state, webhook_env):
    return Agent(state)


def event_ids(state, consultation_id: int) -> list[int]:
    with state.db.session() as s:
        return list(s.scalars(select(WebhookEvent.id).where(WebhookEvent.consultation_id == consultation_id)
                              .order_by(WebhookEvent.id)))


class WorkerProcess(worker.WorkerProcess):
    """``hitl worker`` as a real subprocess (the one ``hitl up`` runs), in its own process
    group, so SIGKILL takes the RQ scheduler it forks along with it, as a machine dying would."""

    def start(self) -> WorkerProcess:
        """As ``hitl up`` starts it, plus SIGTERM if this test process dies without its teardown
        (an xdist worker killed): RQ's warm shutdown also stops the scheduler it forked, which
        a SIGKILL to the worker alone would leave running."""
        cmd = [sys.executable, "-m", "hitl_console.cli", "worker"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env={**os.environ, **(self.env or {})}, stdout=log, stderr=log,
                                         start_new_session=True, preexec_fn=die_with_test(signal.SIGTERM))
        return self

    def kill(self) -> None:
        """SIGKILL the whole group: no clean-up runs."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def log(self) -> str:
        path = Path(self.log_path)
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def worker_process(webhook_env, state, tmp_path):
    """Starts ``hitl worker`` processes on this test's state; all stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(**env: str) -> WorkerProcess:
        w = WorkerProcess(log_path=str(tmp_path / f"worker-{len(started)}.log"), env={**webhook_env, **env})
        w.start()
        started.append(w)
        return w

    yield start
    for w in started:  # SIGKILL: quicker than RQ's warm shutdown, and loses nothing (that is tested)
        if w.running():
            w.kill()


# The console's fixtures (app, client, users, auth), for the deliveries API tests.
from tests.console.conftest import admin, app, auth, client, hitl, reviewer, users  # noqa: E402, F401
