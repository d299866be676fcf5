"""A crawl started over the JSON API, run by a real `hitl worker --queues crawls` process
(RQ, a `scrapy crawl` child) against the sandbox: it finishes, and its log, run and items
are reachable from the job (docs/console.md, "Projects, jobs and robots.txt")."""

from __future__ import annotations

import os
import subprocess
import sys

from hitl_console.app import create_app
from tests.support.console import PASSWORD, create_fixture_user
from tests.support.crawl import DEMO_PROJECT, ROOT
from tests.support.processes import die_with_test


def test_a_job_started_over_the_api_crawls_the_sandbox_and_finishes(hitl_env, hitl_schema, fresh_sandbox, tmp_path):
    app = create_app()
    app.testing = True
    client = app.test_client(use_cookies=False)
    try:
        db = app.extensions["hitl"].db
        create_fixture_user(db, "admin@example.com", PASSWORD, "admin")
        token = client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD}).json
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        assert client.post("/api/v1/projects", json={"path": str(DEMO_PROJECT)}, headers=auth).status_code == 201
        made = client.post("/api/v1/jobs", headers=auth, json={
            "project": "demo", "spider": "sandbox",
            "args": {"base": fresh_sandbox.url, "sections": "quotes", "details": "0"},
            "settings": {"HITL_STATS_FLUSH_INTERVAL": 0.5}})
        assert made.status_code == 201, made.json
        job = made.json

        log_path = tmp_path / "worker.log"
        with open(log_path, "wb") as log:  # one job queued: --burst ends once it is done
            worker = subprocess.run(
                [sys.executable, "-m", "hitl_console.cli", "worker", "--queues", "crawls", "--burst"],
                env={**os.environ, **hitl_env, "PYTHONPATH": str(ROOT), "HITL_JOB_LIMIT_CRAWLS": "1"},
                stdout=log, stderr=subprocess.STDOUT, timeout=180, preexec_fn=die_with_test())
        assert worker.returncode == 0, log_path.read_text()[-3000:]

        done = client.get(f"/api/v1/jobs/{job['id']}", headers=auth).json
        assert done["status"] == "finished", (done, log_path.read_text()[-3000:])
        assert done["exit_code"] == 0 and done["attempts"] == 1 and done["started_at"] and done["finished_at"]

        log = client.get(done["links"]["log"], query_string={"limit": 1000}, headers=auth).json
        text = "\n".join(log["lines"])
        assert "Spider closed (finished)" in text and log["status"] == "finished"

        run = client.get(done["links"]["run"], headers=auth).json
        assert run["status"] == "completed" and run["spider"] == "sandbox"
        items = client.get(done["links"]["items"] + "&limit=200", headers=auth).json["items"]
        quotes = fresh_sandbox.options["pages"] * 10  # every listing page of the quotes section, ten each
        assert len(items) == quotes and {i["run_id"] for i in items} == {job["run_id"]}
        assert [j["id"] for j in client.get("/api/v1/jobs", query_string={"run_id": job["run_id"]},
                                            headers=auth).json["items"]] == [job["id"]]
    finally:
        app.extensions["hitl"].close()
