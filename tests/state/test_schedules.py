"""Schedules (scrapy_hitl.state.schedules): cron arithmetic by croniter, queued once per slot."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import threading

import pytest
from rq import Queue

from scrapy_hitl.state import jobs, schedules
from scrapy_hitl.state.models import Project

pytestmark = pytest.mark.postgres

UTC = timezone.utc


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
def project(state, tmp_path):
    with state.db.session() as s:
        s.add(Project(name="shop", path=str(tmp_path), spiders=["shop"]))


@pytest.mark.parametrize(("cron", "after", "expected"), [
    ("0 3 * * *", datetime(2026, 12, 6, 5, 0, tzinfo=UTC), datetime(2026, 12, 7, 3, 0, tzinfo=UTC)),
    ("0 3 * * *", datetime(2026, 12, 6, 2, 59, tzinfo=UTC), datetime(2026, 12, 6, 3, 0, tzinfo=UTC)),
    ("*/15 * * * *", datetime(2026, 12, 6, 5, 0, tzinfo=UTC), datetime(2026, 12, 6, 5, 15, tzinfo=UTC)),
    ("0 0 * * mon", datetime(2026, 12, 6, 5, 0, tzinfo=UTC), datetime(2026, 12, 7, 0, 0, tzinfo=UTC)),
    ("@daily", datetime(2026, 12, 6, 5, 0), datetime(2026, 12, 7, 0, 0, tzinfo=UTC)),  # naive means UTC
])
def test_next_after(cron, after, expected):
    assert schedules.next_after(cron, after) == expected


@pytest.mark.parametrize("cron", ["", "bad", "61 * * * *", "* * *", "0 3 * * * * * *", 5, None, "x" * 300,
                                  "0 0 31 2 *", "0 3 * * * *", "0 0 1 1 * 0 2010", "@reboot"])
def test_a_malformed_cron_names_the_field_and_shows_an_example(cron):
    with pytest.raises(jobs.JobInvalid) as exc:
        schedules.next_after(cron, datetime(2026, 12, 6, tzinfo=UTC))
    assert exc.value.field == "cron" and '"0 3 * * *"' in str(exc.value)


def test_a_due_schedule_queues_one_job_once_and_moves_on(state, project):
    sched = schedules.create(state, project="shop", spider="shop", cron="*/5 * * * *", args={"a": "1"},
                             created_by="ann")
    nxt = datetime.fromisoformat(sched["next_run_at"])
    assert nxt > datetime.now(UTC) and nxt.minute % 5 == 0

    assert schedules.queue_due(state) == []  # not yet
    later = nxt + timedelta(minutes=12)  # two slots missed: one job, not two
    [job] = schedules.queue_due(state, now=later)
    assert (job["project"], job["spider"], job["args"], job["schedule_id"]) == ("shop", "shop", {"a": "1"}, sched["id"])
    assert job["requested_by"] == f"schedule:{sched['id']}"
    assert schedules.queue_due(state, now=later) == []
    again = schedules.get(state.db, sched["id"])
    assert again["last_job_id"] == job["id"]
    assert datetime.fromisoformat(again["next_run_at"]) == schedules.next_after("*/5 * * * *", later)
    assert len(Queue(jobs.QUEUE_NORMAL, connection=state.redis).get_jobs()) == 1


def test_workers_sweeping_the_same_slot_at_once_queue_it_once(state, project, monkeypatch):
    sched = schedules.create(state, project="shop", spider="shop", cron="0 3 * * *")
    later = datetime.fromisoformat(sched["next_run_at"]) + timedelta(minutes=1)
    barrier = threading.Barrier(4, timeout=30)
    real_next_after = schedules.next_after

    def next_after_once_all_have_read(cron, after):  # runs between a sweep's read and its update
        barrier.wait()
        return real_next_after(cron, after)

    monkeypatch.setattr(schedules, "next_after", next_after_once_all_have_read)
    queued: list[dict] = []
    threads = [threading.Thread(target=lambda: queued.extend(schedules.queue_due(state, now=later)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(queued) == 1
    assert len(jobs.list_(state.db)) == 1


def test_bad_schedules_are_refused_before_anything_is_stored(state, project):
    with pytest.raises(jobs.JobInvalid, match="cron"):
        schedules.create(state, project="shop", spider="shop", cron="every day")
    with pytest.raises(jobs.JobInvalid, match="must be a string"):
        schedules.create(state, project="shop", spider="shop", cron="@daily", args={"n": 1})
    with pytest.raises(LookupError, match="no project named 'nope'"):
        schedules.create(state, project="nope", spider="shop", cron="@daily")
    assert schedules.list_(state.db) == []
    with pytest.raises(schedules.ScheduleNotFound):
        schedules.remove(state.db, 99)


def test_a_stored_schedule_that_cannot_fire_is_turned_off_and_the_others_still_queue(state, project):
    """One bad row (stored before its cron was refused) must not fail every sweep: the
    worker's sweep queues webhooks and the other schedules after it."""
    from scrapy_hitl.state.models import JobSchedule

    good = schedules.create(state, project="shop", spider="shop", cron="*/5 * * * *")
    with state.db.session() as s:
        bad = JobSchedule(project="shop", spider="shop", args={}, settings={}, priority=0, cron="0 0 31 2 *",
                          enabled=True, next_run_at=datetime(2026, 1, 1, tzinfo=UTC), created_by="old")
        s.add(bad)
        s.flush()
        bad_id = bad.id
    later = datetime.fromisoformat(good["next_run_at"]) + timedelta(minutes=1)

    [job] = schedules.queue_due(state, now=later)

    assert job["schedule_id"] == good["id"]
    assert schedules.get(state.db, bad_id)["enabled"] is False
