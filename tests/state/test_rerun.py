"""Re-run on resolve (scrapy_hitl.state.rerun): a released domain queues its waiting crawls
again, with real Redis and RQ's real queue; the crawl itself is tests/integration's."""

from __future__ import annotations

import pytest
from rq import Queue

from scrapy_hitl.state import interventions, jobs, pauses, rerun, runs
from scrapy_hitl.state.models import Project
from scrapy_hitl.state.parking import ParkEntry

DOMAIN = "vip.example.com"


@pytest.fixture
def project(state, tmp_path):
    """A registered project, with its spider list filled in (no `scrapy list` needed here)."""
    folder = tmp_path / "shop_project"
    folder.mkdir()
    (folder / "scrapy.cfg").write_text("[settings]\ndefault = shop.settings\n")
    with state.db.session() as s:
        s.add(Project(name="shop", path=str(folder), spiders=["shop"]))
    return folder


def waiting_job(state, **kwargs):
    """A job whose crawl closed with hitl_paused: job and run wait for a human."""
    job = jobs.create(state, project="shop", spider="shop", args={"section": "vip"}, enqueue=False, **kwargs)
    jobs.transition(state, job["id"], "running")
    jobs.transition(state, job["id"], "waiting_for_human", reason="hitl_paused")
    runs.update_run(state.db, job["run_id"], status="waiting_for_human", finish_reason="hitl_paused")
    return job


def hand_started_run(state, project_dir, spider="shop"):
    run_id = runs.new_run_id()
    runs.create_run(state.db, run_id, spider, {"section": "vip", "n": 3}, str(project_dir))
    runs.update_run(state.db, run_id, status="waiting_for_human", finish_reason="hitl_paused")
    return run_id


def block(state, spider="shop", n=3):
    data, _ = interventions.open_or_update(state, type="manual_access", domain=DOMAIN, reason="http_403",
                                           spider=spider)
    state.parking.park(spider, [ParkEntry.build(domain=DOMAIN, fingerprint=f"{spider}-{i}",
                                                request={"url": f"https://{DOMAIN}/{i}"}, reason="http_403")
                                for i in range(n)])
    return data


def queued_rq_jobs(state):
    return [j for q in jobs.CRAWL_QUEUES for j in Queue(q, connection=state.redis).get_jobs()]


def test_resolve_queues_the_waiting_job_again_same_job_same_run(state, project):
    job = waiting_job(state)
    data = block(state)

    result = interventions.resolve(state, data["id"], note="logged in")

    assert result["reruns"] == {"jobs": [{"id": job["id"], "run_id": job["run_id"], "spider": "shop"}],
                                "manual": []}
    again = jobs.get(state.db, job["id"])
    assert (again["status"], again["reason"]) == ("queued", "resumed")
    assert runs.get_run(state.db, job["run_id"])["status"] == "queued"
    [rq_job] = queued_rq_jobs(state)
    assert (rq_job.func_name, rq_job.args) == (jobs.RUNNER, (job["id"],))
    types = [e.type for e in state.events.read(count=10_000)]
    assert types.index("intervention.resolved") < types.index("run.queued")
    assert [e.type for e in state.events.read(count=10_000) if e.type.startswith("job.")][-1] == "job.queued"


def test_a_crawler_still_waiting_resumes_by_itself(state, project):
    job = waiting_job(state)
    runs.heartbeat(state.redis, job["run_id"], 30)
    data = block(state)

    result = interventions.resolve(state, data["id"])

    assert result["reruns"] == {"jobs": [], "manual": []}
    assert jobs.get(state.db, job["id"])["status"] == "waiting_for_human"
    assert queued_rq_jobs(state) == []


def test_a_run_is_queued_again_once_however_many_resolves_race(state, project):
    job = waiting_job(state)
    assert jobs.rerun(state, job["run_id"], why="first") is not None
    assert jobs.rerun(state, job["run_id"], why="second") is None
    assert len(queued_rq_jobs(state)) == 1


def test_a_hand_started_crawl_in_a_registered_project_is_taken_over(state, project):
    (project / "shop" / "spiders").mkdir(parents=True)
    run_id = hand_started_run(state, project / "shop" / "spiders")  # scrapy crawl from a sub-folder
    data = block(state)

    result = interventions.resolve(state, data["id"])

    [queued] = result["reruns"]["jobs"]
    job = jobs.get(state.db, queued["id"])
    assert (job["run_id"], job["project"], job["spider"], job["status"]) == (run_id, "shop", "shop", "queued")
    assert job["args"] == {"section": "vip"}  # only string arguments: the command line's


def test_an_unregistered_hand_started_crawl_gets_the_command_that_resumes_it(state, tmp_path):
    run_id = hand_started_run(state, tmp_path / "elsewhere dir")
    data = block(state)

    result = interventions.resolve(state, data["id"])

    assert result["reruns"]["jobs"] == []
    [manual] = result["reruns"]["manual"]
    assert manual["run_id"] == run_id
    assert manual["command"] == f"cd '{tmp_path / 'elsewhere dir'}' && scrapy crawl shop -a section=vip"
    assert "hitl projects add" in manual["hint"]
    assert queued_rq_jobs(state) == []


def test_a_cancel_lets_the_waiting_job_run_on_and_finish(state, project):
    job = waiting_job(state)
    data = block(state)

    result = interventions.cancel(state, data["id"], note="give up")

    assert result["failed"] == 3
    assert [j["id"] for j in result["reruns"]["jobs"]] == [job["id"]]


def test_the_sweep_queues_what_the_resolve_could_not_and_not_what_is_still_held(state, project):
    job = waiting_job(state)
    block(state)
    assert rerun.sweep(state) == []  # the domain is paused: a human is still needed
    assert pauses.paused_domains(state.redis)

    # the domain released by a path that queued nothing (e.g. Redis failed at resolve time)
    pauses.set_domain(state.redis, DOMAIN, [])
    [queued] = rerun.sweep(state)
    assert queued["id"] == job["id"]
    assert rerun.sweep(state) == []  # once


def test_jobs_reject_bad_specs_naming_the_field(state, project):
    cases = [
        ({"args": {"n": 3}}, "args", "must be a string"),
        ({"args": ["a"]}, "args", "object of strings"),
        ({"settings": {"lower": 1}}, "settings", "UPPER_CASE"),
        ({"settings": {"JOBDIR": "/x"}}, "settings", "chosen by the worker"),
        ({"priority": "high"}, "priority", "integer"),
        ({"priority": 1000}, "priority", "integer"),
    ]
    for kwargs, field, words in cases:
        with pytest.raises(jobs.JobInvalid) as exc:
            jobs.create(state, project="shop", spider="shop", enqueue=False, **kwargs)
        assert exc.value.field == field and words in str(exc.value), kwargs


def test_cancel_of_an_ended_job_is_refused_and_of_a_queued_one_is_immediate(state, project):
    job = jobs.create(state, project="shop", spider="shop", enqueue=False)
    cancelled = jobs.request_cancel(state, job["id"], by="ann")
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "cancelled")
    with pytest.raises(jobs.JobClosed, match="already ended"):
        jobs.request_cancel(state, job["id"])


def test_a_crawl_that_waited_then_exited_says_so_on_its_job(state, project):
    job = jobs.create(state, project="shop", spider="shop", enqueue=False)
    jobs.transition(state, job["id"], "running")
    jobs.transition(state, job["id"], "waiting_for_human", reason="all_work_parked")
    exited = jobs.transition(state, job["id"], "waiting_for_human", reason="hitl_paused", message="exited")
    assert exited is not None and (exited["status"], exited["reason"]) == ("waiting_for_human", "hitl_paused")
    assert jobs.transition(state, job["id"], "running", reason="again") is not None  # a re-run starts it


def test_a_re_run_waits_for_the_lease_of_the_runner_that_is_letting_go(state, project):
    """A resolve lands while the crawl that closed hitl_paused is still exiting: its runner
    holds the job's lease for a moment more. The re-run's runner waits for it instead of
    skipping, which would leave the job queued with nothing on RQ to run it."""
    from hitl_console.jobs.config import JobsConfig
    from hitl_console.jobs.runner import JobRunner

    job = waiting_job(state)
    state.redis.set(jobs.lease_key(job["id"]), "the runner letting go", px=1500)
    assert jobs.rerun(state, job["run_id"], why="resolved") is not None

    result = JobRunner(state, JobsConfig(heartbeat=0.5, stop_grace=1), job["id"]).run()

    assert result != "skipped: another worker runs it"
    done = jobs.get(state.db, job["id"])
    # it ran: the fixture project has no code, so `scrapy crawl` fails; it is not left queued
    assert (done["status"], done["attempts"]) == ("failed", 1), done


def test_a_hand_started_run_with_arguments_no_job_takes_gets_the_command_instead(state, project):
    """`scrapy crawl shop -a my-arg=...` records an argument no job can take (not an
    identifier): the resolve and the worker's sweep list it for a human instead of failing
    (a failing sweep would stop queueing webhooks and schedules too)."""
    run_id = runs.new_run_id()
    runs.create_run(state.db, run_id, "shop", {"my-arg": "x"}, str(project))
    runs.update_run(state.db, run_id, status="waiting_for_human", finish_reason="hitl_paused")
    other = waiting_job(state)
    data = block(state)

    result = interventions.resolve(state, data["id"])

    assert result["reruns"] is not None
    assert [j["id"] for j in result["reruns"]["jobs"]] == [other["id"]]
    [manual] = result["reruns"]["manual"]
    assert manual["run_id"] == run_id and "-a my-arg=x" in manual["command"]
    assert rerun.sweep(state) == []


def test_a_job_that_ends_without_its_crawl_ends_its_run_too(state, project):
    """A job cancelled before it started left its run `queued` for ever, and one cancelled
    while it waited with no crawler alive its run `waiting_for_human` (scanned by every
    sweep); a crawler still alive keeps its run to itself."""
    queued = jobs.create(state, project="shop", spider="shop", enqueue=False)
    jobs.request_cancel(state, queued["id"], by="ann")
    waiting = waiting_job(state)
    jobs.request_cancel(state, waiting["id"], by="ann")
    assert jobs.get(state.db, waiting["id"])["status"] == "cancelled"
    for job in (queued, waiting):
        run = runs.get_run(state.db, job["run_id"])
        assert (run["status"], run["finish_reason"]) == ("failed", "cancelled"), run
        assert run["finished_at"] is not None

    alive = waiting_job(state)
    runs.heartbeat(state.redis, alive["run_id"], 30)
    jobs.transition(state, alive["id"], "failed", reason="run_busy")
    assert runs.get_run(state.db, alive["run_id"])["status"] == "waiting_for_human"


def test_a_cancel_that_lands_as_the_waiting_crawls_runner_lets_go_still_ends_the_job(state, project, monkeypatch):
    """The runner of a crawl that closed hitl_paused holds the lease as the cancel looks, and
    has let go (without seeing the cancel key) by the time the key is set: the job must not
    wait for ever with its cancel unheard."""
    job = waiting_job(state)
    state.redis.set(jobs.lease_key(job["id"]), "the runner", px=30_000)
    real_cancel_key = jobs.cancel_key

    def lets_go_meanwhile(job_id):
        state.redis.delete(jobs.lease_key(job_id))
        return real_cancel_key(job_id)

    monkeypatch.setattr(jobs, "cancel_key", lets_go_meanwhile)
    done = jobs.request_cancel(state, job["id"], by="ann")
    assert (done["status"], done["reason"]) == ("cancelled", "cancelled"), done


def test_a_runner_that_waited_for_the_lease_leaves_a_job_another_runner_had_meanwhile(state, project, monkeypatch):
    """Two RQ entries for one job (a resolve's and RQ's own retry): the one that waited for
    the lease finds the job waiting for a human again, and leaves it so, rather than take it
    for a dead worker's job and crawl again."""
    from hitl_console.jobs.config import JobsConfig
    from hitl_console.jobs.runner import JobRunner

    job = jobs.create(state, project="shop", spider="shop", enqueue=False)
    real_take_lease = JobRunner._take_lease

    def the_other_runner_had_it(self):
        jobs.transition(state, job["id"], "running", attempts=1)
        jobs.transition(state, job["id"], "waiting_for_human", reason="hitl_paused")
        return real_take_lease(self)

    monkeypatch.setattr(JobRunner, "_take_lease", the_other_runner_had_it)
    result = JobRunner(state, JobsConfig(heartbeat=0.5), job["id"]).run()

    assert result == "skipped: waiting_for_human meanwhile"
    after = jobs.get(state.db, job["id"])
    assert (after["status"], after["reason"], after["attempts"]) == ("waiting_for_human", "hitl_paused", 1)


def test_a_redis_failure_while_queueing_leaves_nothing_queued_for_ever(state, project, monkeypatch):
    """Redis failing between the job's row and RQ: a re-run goes back to waiting (the sweep
    queues it once Redis answers, as docs/jobs.md says), a new job is failed (the caller got
    the error and starts it again); neither is left queued with nothing on RQ to run it."""
    import redis

    job = waiting_job(state)
    data = block(state)
    real_submit = jobs.submit

    def redis_fails(*args, **kwargs):
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(jobs, "submit", redis_fails)
    result = interventions.resolve(state, data["id"])
    assert result["reruns"] is None  # the resolve itself went through
    assert jobs.get(state.db, job["id"])["status"] == "waiting_for_human"
    assert runs.get_run(state.db, job["run_id"])["status"] == "waiting_for_human"
    with pytest.raises(redis.ConnectionError):
        jobs.create(state, project="shop", spider="shop")
    [new] = [j for j in jobs.list_(state.db) if j["id"] != job["id"]]
    assert (new["status"], new["reason"]) == ("failed", "enqueue_failed")

    monkeypatch.setattr(jobs, "submit", real_submit)
    [again] = rerun.sweep(state)
    assert again["id"] == job["id"] and again["status"] == "queued"
    assert len(queued_rq_jobs(state)) == 1


def test_a_resolve_that_lands_as_the_crawl_exits_leaves_the_run_queued_not_failed(state, project, monkeypatch):
    """The crawl closed hitl_paused and is exiting when a resolve queues its job again: the
    run is queued for the re-run; its old runner must not then mark it failed (it showed
    failed until a worker started the re-run)."""
    from hitl_console.jobs.config import JobsConfig
    from hitl_console.jobs.runner import JobRunner

    (project / "shop" / "spiders").mkdir(parents=True)
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "settings.py").write_text(
        'BOT_NAME = "shop"\nSPIDER_MODULES = ["shop.spiders"]\nTELNETCONSOLE_ENABLED = False\n')
    (project / "shop" / "spiders" / "__init__.py").write_text("")
    (project / "shop" / "spiders" / "shop.py").write_text(  # closes as a crawl waiting for a human does
        "import scrapy\nfrom scrapy import signals\nfrom scrapy.exceptions import CloseSpider\n\n\n"
        "class Shop(scrapy.Spider):\n    name = 'shop'\n\n"
        "    @classmethod\n    def from_crawler(cls, crawler, *args, **kwargs):\n"
        "        spider = super().from_crawler(crawler, *args, **kwargs)\n"
        "        crawler.signals.connect(spider.idle, signals.spider_idle)\n        return spider\n\n"
        "    async def start(self):\n        return\n        yield\n\n"
        "    def idle(self, spider):\n        raise CloseSpider('hitl_paused')\n")
    job = jobs.create(state, project="shop", spider="shop", enqueue=False)
    real_watch = JobRunner._watch

    def a_resolve_lands_as_it_exits(self, running):
        watched = real_watch(self, running)
        jobs.transition(state, job["id"], "waiting_for_human", reason="all_work_parked")
        assert jobs.rerun(state, job["run_id"], why="resolved") is not None
        return watched

    monkeypatch.setattr(JobRunner, "_watch", a_resolve_lands_as_it_exits)
    JobRunner(state, JobsConfig(heartbeat=0.5), job["id"]).run()

    assert "Spider closed (hitl_paused)" in "\n".join(jobs.log_tail(state.redis, job["id"], 100))
    assert jobs.get(state.db, job["id"])["status"] == "queued"
    assert runs.get_run(state.db, job["run_id"])["status"] == "queued"


def test_a_job_whose_worker_died_too_often_fails_and_its_log_says_why(state, project):
    """A job found still running (its worker died mid-crawl) at its last allowed attempt is not
    started again: it ends failed (worker_lost), and `hitl jobs log` says which attempt ended
    without its worker and why there is no next one."""
    from hitl_console.jobs.config import JobsConfig
    from hitl_console.jobs.runner import JobRunner

    job = jobs.create(state, project="shop", spider="shop", args={}, enqueue=False)
    jobs.transition(state, job["id"], "running", attempts=1)  # as the dead worker's runner left it

    result = JobRunner(state, JobsConfig(heartbeat=0.5, max_attempts=1), job["id"]).run()

    assert result == "failed: too many attempts"
    done = jobs.get(state.db, job["id"])
    assert (done["status"], done["reason"]) == ("failed", "worker_lost"), done
    log = jobs.read_log(state.redis, job["id"])[0]
    assert log == ["--- attempt 1 ended without its worker: the worker stopped (killed or crashed) before "
                   "the crawl did (worker_lost)",
                   "--- not started again: that was attempt 1 of HITL_JOB_MAX_ATTEMPTS (1)"]


def test_a_job_whose_worker_died_then_is_cancelled_says_in_its_log_how_the_attempt_ended(state, project):
    """Found still running (its worker died mid-crawl) but cancelled meanwhile: no attempt
    follows, and the log still says that the last one ended without its worker."""
    from hitl_console.jobs.config import JobsConfig
    from hitl_console.jobs.runner import JobRunner

    job = jobs.create(state, project="shop", spider="shop", args={}, enqueue=False)
    jobs.transition(state, job["id"], "running", attempts=1)  # as the dead worker's runner left it
    state.redis.set(jobs.cancel_key(job["id"]), "someone")  # asked while that worker was dying

    assert JobRunner(state, JobsConfig(heartbeat=0.5), job["id"]).run() == "cancelled"

    assert jobs.get(state.db, job["id"])["status"] == "cancelled"
    assert jobs.read_log(state.redis, job["id"])[0] == [
        "--- attempt 1 ended without its worker: the worker stopped (killed or crashed) before the crawl did "
        "(worker_lost)"]
