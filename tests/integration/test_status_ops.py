"""`hitl status`'s operations part: RQ workers per queue with host and heartbeat, queue
depths, free disk in the data dir, and the oldest open intervention (real Redis registry,
real database)."""

from __future__ import annotations

import socket

from rq import Queue, Worker

from scrapy_hitl.state import interventions, jobs
from scrapy_hitl.state.models import Project, utcnow
from tests.support.crawl import DEMO_PROJECT


def test_status_shows_workers_queues_disk_and_the_oldest_intervention(cli, state):
    assert cli.json("status")["workers"] == []
    code, out = cli("status")
    assert code == 0 and "Workers: none (start one with `hitl worker`" in out

    worker = Worker([Queue(q, connection=state.redis) for q in jobs.CRAWL_QUEUES], connection=state.redis,
                    name="crawler-1")
    worker.register_birth()
    worker.heartbeat()
    try:
        Queue(jobs.QUEUE_NORMAL, connection=state.redis).enqueue_call(jobs.RUNNER, args=(1,))
        with state.db.session() as s:
            s.add(Project(name="demo", path=str(DEMO_PROJECT), spiders=["sandbox"], spiders_at=utcnow()))
        jobs.create(state, project="demo", spider="sandbox", enqueue=False)  # counted, not on a queue
        first = interventions.open_or_update(state, type="manual_access", reason="http_403", domain="a.example",
                                             spider="shop")[0]
        interventions.open_or_update(state, type="captcha_solve", reason="recaptcha", domain="b.example",
                                     spider="shop")
        data = cli.json("status")
        [seen] = data["workers"]
        assert seen["name"] == "crawler-1" and seen["host"] == socket.gethostname()
        assert seen["queues"] == list(jobs.CRAWL_QUEUES) and 0 <= seen["heartbeat_age_seconds"] < 60
        depth = {q["name"]: (q["queued"], q["workers"]) for q in data["queues"]}
        assert depth[jobs.QUEUE_NORMAL] == (1, 1) and depth[jobs.QUEUE_HIGH] == (0, 1)
        assert depth["hitl-webhooks"] == (0, 0)
        assert data["disk"]["free_bytes"] > 0 and data["disk"]["path"].endswith("hitl")
        assert data["oldest_open_intervention"]["id"] == first["id"]
        assert data["jobs"] == {"queued": 1, "running": 0, "waiting_for_human": 0, "finished": 0, "failed": 0,
                                "cancelled": 0}
        code, out = cli("status")
        assert "Workers: 1" in out and "crawler-1" not in out and socket.gethostname() in out
        assert f"Oldest open intervention: #{first['id']} manual_access on a.example" in out
        assert "free of" in out
        assert "Jobs      1 queued, 0 running, 0 waiting for a person; 0 finished, 0 failed, 0 cancelled" in out
    finally:
        worker.register_death()
