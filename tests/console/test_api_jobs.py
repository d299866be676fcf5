"""`/api/v1/projects` and `/api/v1/jobs` against the real state layer (SQLite, Redis, RQ
queues): registering, starting, listing, reading, cancelling, logs, and every bad input
answered with the one error shape. The crawl itself is tests/jobs' business (no worker here:
jobs stay queued unless a test moves them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rq import Queue

from scrapy_hitl.state import apikeys, jobs
from scrapy_hitl.state.models import Project, utcnow

DEMO = Path(__file__).resolve().parents[2] / "projects" / "demo"


@pytest.fixture
def demo(hitl):
    """The demo project, registered as ``scrapy list`` would have it (one spider: sandbox),
    without spending a second on the subprocess in every test."""
    with hitl.db.session() as s:
        s.add(Project(name="demo", path=str(DEMO), spiders=["sandbox"], spiders_at=utcnow()))
    return "demo"


@pytest.fixture
def agent(hitl):
    _info, key, _secret = apikeys.create(hitl, "job starter")
    return {"Authorization": f"Bearer {key}"}


def start(client, headers, **body):
    return client.post("/api/v1/jobs", json={"project": "demo", "spider": "sandbox", **body}, headers=headers)


def test_admin_registers_a_project_and_anyone_lists_its_spiders(client, admin, reviewer, agent, tmp_path):
    created = client.post("/api/v1/projects", json={"path": str(DEMO)}, headers=admin)
    assert created.status_code == 201, created.json
    assert created.json["name"] == "demo" and created.json["spiders"] == ["sandbox"]
    assert created.json["spiders_error"] is None
    again = client.post("/api/v1/projects", json={"path": str(DEMO)}, headers=admin)
    assert again.status_code == 200
    refused = client.post("/api/v1/projects", json={"path": str(DEMO), "name": "other"}, headers=reviewer)
    assert refused.status_code == 403 and refused.json["error"] == "forbidden"
    no_cfg = client.post("/api/v1/projects", json={"path": str(tmp_path)}, headers=admin)
    assert no_cfg.status_code == 422 and "scrapy.cfg" in no_cfg.json["detail"]["path"]
    for path in ("bad\x00path", "~nosuchuser/x", "x" * 5000, str(tmp_path / "missing"), 42):
        answer = client.post("/api/v1/projects", json={"path": path}, headers=admin)
        assert answer.status_code == 422 and "scrapy.cfg" in answer.json["detail"]["path"], path
    bad_name = client.post("/api/v1/projects", json={"path": str(DEMO), "name": "no spaces"}, headers=admin)
    assert bad_name.status_code == 422 and "not a valid project name" in bad_name.json["detail"]["name"]
    for headers in (reviewer, agent):
        listed = client.get("/api/v1/projects", headers=headers)
        assert [(p["name"], p["spiders"]) for p in listed.json["items"]] == [("demo", ["sandbox"])]
    refreshed = client.post("/api/v1/projects/demo/refresh", headers=reviewer)
    assert refreshed.status_code == 200 and refreshed.json["spiders"] == ["sandbox"]
    assert client.post("/api/v1/projects/nope/refresh", headers=reviewer).status_code == 404
    assert client.delete("/api/v1/projects/demo", headers=reviewer).status_code == 403
    assert client.delete("/api/v1/projects/demo", headers=admin).status_code == 204
    assert client.get("/api/v1/projects/demo", headers=reviewer).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_a_job_is_queued_with_its_run_and_links(client, reviewer, agent, hitl, demo):
    made = start(client, reviewer, args={"base": "http://127.0.0.1:1", "sections": "quotes"},
                 settings={"CLOSESPIDER_PAGECOUNT": 5}, priority=10)
    assert made.status_code == 201, made.json
    job = made.json
    assert job["status"] == "queued" and job["requested_by"] == "user:reviewer@example.com"
    assert job["args"] == {"base": "http://127.0.0.1:1", "sections": "quotes"}
    assert job["settings"] == {"CLOSESPIDER_PAGECOUNT": 5} and job["priority"] == 10
    assert job["links"]["run"] == f"/api/v1/runs/{job['run_id']}"
    assert job["links"]["items"] == f"/api/v1/items?run_id={job['run_id']}"
    run = client.get(job["links"]["run"], headers=reviewer)
    assert run.status_code == 200 and run.json["status"] == "queued" and run.json["spider"] == "sandbox"
    # on RQ, on the high-priority queue, for the runner
    [queued] = Queue(jobs.QUEUE_HIGH, connection=hitl.redis).get_jobs()
    assert queued.func_name == jobs.RUNNER and queued.args == (job["id"],)

    by_agent = start(client, agent)
    assert by_agent.status_code == 201 and by_agent.json["requested_by"].startswith("agent:")
    got = client.get(f"/api/v1/jobs/{job['id']}", headers=agent)
    assert got.status_code == 200 and got.json["run_id"] == job["run_id"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_jobs_page_newest_first_with_filters(client, reviewer, hitl, demo):
    ids = [start(client, reviewer).json["id"] for _ in range(3)]
    jobs.transition(hitl, ids[0], "running")
    first = client.get("/api/v1/jobs?limit=2", headers=reviewer).json
    assert [j["id"] for j in first["items"]] == ids[:0:-1]
    rest = client.get(f"/api/v1/jobs?limit=2&cursor={first['next_cursor']}", headers=reviewer).json
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    running = client.get("/api/v1/jobs?status=running", headers=reviewer).json["items"]
    assert [j["id"] for j in running] == [ids[0]]
    run_id = running[0]["run_id"]
    assert [j["id"] for j in client.get(f"/api/v1/jobs?run_id={run_id}", headers=reviewer).json["items"]] == [ids[0]]
    assert client.get("/api/v1/jobs?project=other", headers=reviewer).json["items"] == []
    assert len(client.get("/api/v1/jobs?project=demo&spider=sandbox", headers=reviewer).json["items"]) == 3


def test_cancel_ends_a_queued_job_asks_a_running_one_and_refuses_an_ended_one(client, reviewer, hitl, demo):
    queued = start(client, reviewer).json
    done = client.post(f"/api/v1/jobs/{queued['id']}/cancel", headers=reviewer)
    assert done.status_code == 200 and done.json["status"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{queued['id']}/cancel", headers=reviewer)
    assert again.status_code == 409 and again.json["error"] == "closed"
    assert "already ended (cancelled)" in again.json["detail"] and "POST /api/v1/jobs" in again.json["detail"]

    running = start(client, reviewer).json
    jobs.transition(hitl, running["id"], "running")
    asked = client.post(f"/api/v1/jobs/{running['id']}/cancel", headers=reviewer)
    assert asked.status_code == 200 and asked.json["status"] == "running"
    assert asked.json["cancel_requested_at"] is not None
    assert jobs.cancel_requested(hitl.redis, running["id"])
    assert client.post("/api/v1/jobs/999999/cancel", headers=reviewer).status_code == 404


def test_the_log_pages_by_stream_id(client, reviewer, hitl, demo):
    job = start(client, reviewer).json
    jobs.append_log(hitl.redis, job["id"], [f"line {n}" for n in range(5)])
    first = client.get(f"/api/v1/jobs/{job['id']}/log?limit=3", headers=reviewer).json
    assert first["lines"] == ["line 0", "line 1", "line 2"] and first["more"] is True
    rest = client.get(f"/api/v1/jobs/{job['id']}/log?limit=3&after={first['after']}", headers=reviewer).json
    assert rest["lines"] == ["line 3", "line 4"] and rest["more"] is False
    empty = client.get(f"/api/v1/jobs/{job['id']}/log?after={rest['after']}", headers=reviewer).json
    assert empty["lines"] == [] and empty["after"] == rest["after"]


@pytest.mark.parametrize("settings", [
    {"TELNETCONSOLE_ENABLED": True, "TELNETCONSOLE_HOST": "0.0.0.0", "TELNETCONSOLE_PASSWORD": "x"},  # a shell
    {"TELNETCONSOLE_ENABLED": True},  # its password is logged, and the log is everyone's
    {"FEEDS": {"/home/worker/.bashrc": {"format": "csv"}}},  # a file written anywhere
    {"LOG_FILE": "/etc/cron.d/x"},
    {"ITEM_PIPELINES": {"somewhere.Pipeline": 100}},  # a class loaded
    {"HITL_BROWSER_EXECUTABLE": "/bin/sh"},  # a program run
    {"HITL_STEALTH_PROXIES": ["http://collector.example:8080"]},  # sessions sent elsewhere
    {"HITL_REDIS_URL": "redis://collector.example/0"},
])
def test_reviewers_and_agents_may_not_give_settings_that_run_code_or_touch_files(
        client, reviewer, agent, admin, hitl, demo, settings):
    for headers in (reviewer, agent):
        for url in ("/api/v1/jobs", "/api/v1/schedules"):
            body = {"project": "demo", "spider": "sandbox", "settings": settings}
            answer = client.post(url, json={**body, "cron": "@daily"} if "schedules" in url else body,
                                 headers=headers)
            assert answer.status_code == 403, (url, answer.json)
            assert answer.json["error"] == "forbidden" and "needs an admin" in answer.json["detail"]["settings"]
    assert client.get("/api/v1/jobs", headers=reviewer).json["items"] == []
    assert start(client, admin, settings=settings).status_code == 201


def test_reviewers_and_agents_give_numbers_booleans_and_a_few_words(client, reviewer, agent, demo):
    settings = {"CLOSESPIDER_PAGECOUNT": 5, "DOWNLOAD_DELAY": 0.5, "ROBOTSTXT_OBEY": True, "LOG_LEVEL": "DEBUG",
                "USER_AGENT": "mybot/1.0"}
    for headers in (reviewer, agent):
        made = start(client, headers, settings=settings)
        assert made.status_code == 201 and made.json["settings"] == settings, made.json


BAD_JOBS = [
    # (body, status, field, words the detail must contain)
    ({"project": "nope", "spider": "sandbox"}, 422, "project", "hitl projects add"),
    ({"project": "demo", "spider": "nope"}, 422, "spider", "its spiders: sandbox"),
    ({"project": "demo"}, 422, "spider", "required"),
    ({"spider": "sandbox"}, 422, "project", "required"),
    ({"project": 3, "spider": "sandbox"}, 422, "project", "required"),
    ({"project": "demo", "spider": "sandbox", "args": {"pages": 3}}, 422, "args", "must be a string"),
    ({"project": "demo", "spider": "sandbox", "args": ["base=x"]}, 422, "args", "object of strings"),
    ({"project": "demo", "spider": "sandbox", "args": {"not a name": "x"}}, 422, "args", "identifier"),
    ({"project": "demo", "spider": "sandbox", "settings": {"download_delay": 1}}, 422, "settings", "UPPER_CASE"),
    ({"project": "demo", "spider": "sandbox", "settings": {"JOBDIR": "/tmp/x"}}, 422, "settings", "leave it out"),
    ({"project": "demo", "spider": "sandbox", "settings": "DOWNLOAD_DELAY=1"}, 422, "settings", "an object"),
    ({"project": "demo", "spider": "sandbox", "priority": "high"}, 422, "priority", "-100 to 100"),
    ({"project": "demo", "spider": "sandbox", "priority": 101}, 422, "priority", "-100 to 100"),
    ({"project": "demo", "spider": "sandbox", "priority": True}, 422, "priority", "-100 to 100"),
    ({"project": "demo", "spider": "sandbox", "queue": "fast"}, 422, "queue", "unknown field"),
    # stored, then every start crashed its runner (no command line carries them)
    ({"project": "demo", "spider": "sandbox", "args": {"a": "x\x00y"}}, 422, "args", "NUL byte"),
    ({"project": "demo", "spider": "sandbox", "args": {"a": "\ud800"}}, 422, "args", "lone surrogate"),
    ({"project": "demo", "spider": "sandbox", "settings": {"X": "x\x00y"}}, 422, "settings", "NUL byte"),
    ({"project": "demo", "spider": "sandbox", "settings": {"X": ["a", "\x00"]}}, 422, "settings", "NUL byte"),
    ({"project": "demo", "spider": "sandbox", "settings": {"X": float("inf")}}, 422, "settings", "Infinity"),
    ({"project": "demo", "spider": "sandbox", "settings": {"X": {"y": float("nan")}}}, 422, "settings", "NaN"),
]


@pytest.mark.parametrize(("body", "status", "field", "words"), BAD_JOBS,
                         ids=[f"{b.get('project')}-{f}-{w[:12]}" for b, _s, f, w in BAD_JOBS])
def test_bad_jobs_are_refused_naming_the_field_and_the_fix(client, reviewer, hitl, demo, body, status, field, words):
    answer = client.post("/api/v1/jobs", json=body, headers=reviewer)
    assert answer.status_code == status, answer.json
    assert answer.json["error"] == "invalid" and words in answer.json["detail"][field]
    assert client.get("/api/v1/jobs", headers=reviewer).json["items"] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_a_nul_byte_in_a_name_is_not_found_or_refused_not_a_500(client, reviewer, admin, demo):
    """PostgreSQL refuses a query holding a NUL byte: each was a 500 there."""
    for method, url, status in (("get", "/api/v1/projects/de%00mo", 404),
                                ("post", "/api/v1/projects/de%00mo/refresh", 404),
                                ("delete", "/api/v1/projects/de%00mo", 404),
                                ("get", "/api/v1/jobs?project=de%00mo", 400),
                                ("get", "/api/v1/jobs?spider=a%00b", 400)):
        answer = getattr(client, method)(url, headers=admin)
        assert answer.status_code == status, (url, answer.json)
    for url, body in (("/api/v1/jobs", {}), ("/api/v1/schedules", {"cron": "@daily"})):
        answer = client.post(url, json={"project": "de\x00mo", "spider": "sandbox", **body}, headers=reviewer)
        assert answer.status_code == 422 and "no project named" in answer.json["detail"]["project"], answer.json
    made = start(client, reviewer, settings={"X": {"y": float("inf")}})
    assert made.status_code == 422 and "Infinity" in made.json["detail"]["settings"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_user_with_a_long_email_starts_jobs_and_schedules(client, auth, hitl, demo):
    """requested_by is "user:<email>", and an email may be longer than the column: a 500 on PostgreSQL."""
    from tests.support.console import PASSWORD, create_fixture_user

    email = "a" * 300 + "@example.com"
    create_fixture_user(hitl.db, email, PASSWORD, "reviewer")
    headers = auth.bearer(email)
    for url, body in (("/api/v1/jobs", {}), ("/api/v1/schedules", {"cron": "@daily"})):
        made = client.post(url, json={"project": "demo", "spider": "sandbox", **body}, headers=headers)
        assert made.status_code == 201, made.json
        assert (made.json.get("requested_by") or made.json.get("created_by")).startswith("user:aaa")


@pytest.mark.parametrize(("method", "url", "status", "words"), [
    ("post", "/api/v1/jobs", 400, "JSON object"),  # no body
    ("get", "/api/v1/jobs?status=done", 400, "must be one of"),
    ("get", "/api/v1/jobs?cursor=WzFd", 200, ""),  # a cursor this API hands out: [1]
    ("get", "/api/v1/jobs?cursor=bm9wZQ", 400, "next_cursor"),
    ("get", "/api/v1/jobs?limit=0", 400, "limit"),
    ("get", "/api/v1/jobs/999999", 404, "GET /api/v1/jobs"),
    ("get", "/api/v1/jobs/999999/log", 404, "no job"),
    ("get", "/api/v1/projects/nope", 404, "hitl projects add"),
])
def test_bad_requests_get_the_error_shape(client, reviewer, method, url, status, words):
    answer = getattr(client, method)(url, headers=reviewer)
    assert answer.status_code == status, answer.json
    if status >= 400:
        assert set(answer.json) == {"error", "detail"} and words in str(answer.json["detail"])


def test_a_bad_log_position_is_refused(client, reviewer, demo):
    job = start(client, reviewer).json
    for query, words in (("after=yesterday", "stream id"), ("limit=5000", "1 to 1000"), ("limit=x", "1 to 1000")):
        answer = client.get(f"/api/v1/jobs/{job['id']}/log?{query}", headers=reviewer)
        assert answer.status_code == 400 and words in str(answer.json["detail"]), query


def test_anonymous_callers_get_401(client, demo):
    for method, url in (("get", "/api/v1/jobs"), ("post", "/api/v1/jobs"), ("get", "/api/v1/projects"),
                        ("post", "/api/v1/projects/demo/refresh"), ("get", "/api/v1/robots?url=http://x/")):
        assert getattr(client, method)(url).status_code == 401, url
