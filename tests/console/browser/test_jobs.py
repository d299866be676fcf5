"""The Jobs pages in a real Chromium: start a crawl from the form (project and spider
pickers), a bad setting refused in words, cancel that asks first, then a real `hitl worker`
runs the job and its log tails live into the page until the job finishes; the job links to
its run and the run back to it; both pages at 390 px. Screenshots in tests/artifacts/
(``jobs-*.png``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scrapy_hitl.state import jobs, projects
from tests.console.browser.conftest import ARTIFACTS, Tab
from tests.support.crawl import DEMO_PROJECT, ROOT
from tests.support.processes import die_with_test, stop_tree

pytestmark = pytest.mark.browser

LONG_MS = 180_000  # hang guard for the crawl's own steps


def start_job(page, sandbox_url: str, settings: str = "") -> None:
    page.wait_for_selector('#start-project option[value="demo"]', state="attached")
    page.select_option("#start-project", "demo")
    page.select_option("#start-spider", "sandbox")
    page.fill("#start-args", f"base={sandbox_url}\nsections=quotes\ndetails=0")
    page.fill("#start-settings", settings)
    page.click("#start-submit")


def test_start_cancel_and_watch_a_job_live(tab, users, state, hitl_env, sandbox_site, browser, console_server,
                                           tmp_path):
    projects.add(state.db, DEMO_PROJECT, "demo")
    sandbox_site.reset()
    page = tab.page
    tab.login("reviewer@example.com", then="/jobs")
    page.wait_for_selector("#jobs-empty:not([hidden])")

    # a bad setting: refused, the form says which and how to fix it
    start_job(page, sandbox_site.url, settings="download_delay=1")
    page.wait_for_selector("#start-error:not([hidden])")
    assert "UPPER_CASE" in page.inner_text("#start-error")
    assert page.url == f"{console_server.url}/jobs"

    # a job to cancel: queued, no worker yet; backing out keeps it, confirming cancels it
    start_job(page, sandbox_site.url)
    page.wait_for_url(f"{console_server.url}/jobs/*")
    doomed = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector('#job-status[data-status="queued"]')
    assert page.inner_text("#job-status") == "waiting for a worker"
    assert page.inner_text("#job-status-code") == "queued"
    page.click("#cancel-job")
    page.wait_for_selector("#confirm-dialog")
    assert "never runs" in page.inner_text("#confirm-body")
    page.click("#confirm-no")
    page.wait_for_selector("#confirm-dialog", state="detached")
    assert page.get_attribute("#job-status", "data-status") == "queued"
    page.click("#cancel-job")
    page.click("#confirm-yes")
    page.wait_for_selector('#job-status[data-status="cancelled"]')
    assert page.is_hidden("#cancel-job")

    # the job to run: started from the list page, then a worker takes it
    page.goto(f"{console_server.url}/jobs")
    page.wait_for_selector(f'tr[data-job-id="{doomed}"][data-job-status="cancelled"]')
    start_job(page, sandbox_site.url, settings="HITL_STATS_FLUSH_INTERVAL=0.5")
    page.wait_for_url(f"{console_server.url}/jobs/*")
    job_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector('#log-state:text("(live)")')
    tab.screenshot("jobs-queued")
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hitl_console.cli", "worker", "--queues", "crawls", "--burst"],
            env={**os.environ, **hitl_env, "PYTHONPATH": str(ROOT), "HITL_JOB_LIMIT_CRAWLS": "1"},
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_test())
    try:
        page.wait_for_selector('#log:has-text("Spider closed (finished)")', timeout=LONG_MS)
        page.wait_for_selector('#job-status[data-status="finished"]', timeout=LONG_MS)
        assert worker.wait(timeout=120) == 0, log_path.read_text()[-3000:]
    finally:  # its crawl too, which runs in a session of its own
        stop_tree(worker)
    assert page.inner_text("#job-status") == "finished" and page.is_hidden("#cancel-job")
    tab.screenshot("jobs-finished")
    exported = page.request.get(console_server.url + page.get_attribute('[data-format="json"]', "href")).json()
    assert len(exported) == sandbox_site.options["pages"] * 10  # every quote of every listing page

    # job -> run -> job
    page.click("#run-link")
    page.wait_for_url(f"{console_server.url}/runs/*")
    page.click("#job-link")
    page.wait_for_url(f"{console_server.url}/jobs/{job_id}")
    page.goto(f"{console_server.url}/jobs")
    page.wait_for_selector(f'tr[data-job-id="{job_id}"][data-job-status="finished"]')
    assert "finished" in page.inner_text(f'tr[data-job-id="{job_id}"] [data-field="status"]')
    tab.screenshot("jobs-list")

    # a job waiting for a person says what to do next
    waiting = jobs.create(state, project="demo", spider="sandbox", args={"base": sandbox_site.url}, enqueue=False)
    jobs.transition(state, waiting["id"], "running")
    jobs.transition(state, waiting["id"], "waiting_for_human")
    page.goto(f"{console_server.url}/jobs/{waiting['id']}")
    page.wait_for_selector('#job-status[data-status="waiting_for_human"]')
    assert page.inner_text("#job-status") == "waiting for a person" and page.is_visible("#job-next")
    assert page.get_attribute("#job-next a", "href") == f"/interventions?status=open&run_id={waiting['run_id']}"
    assert page.is_visible("#cancel-job")
    assert tab.errors == [] and tab.dialogs == []

    # a phone: both pages fit the screen, the log scrolls inside its card
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        small = Tab(phone.new_page(), console_server.url)
        small.login("reviewer@example.com", then="/jobs")
        for name, path, ready in (("jobs-390", "/jobs", f'tr[data-job-id="{job_id}"]'),
                                  ("job-390", f"/jobs/{job_id}", '#job-status[data-status="finished"]')):
            small.page.goto(f"{console_server.url}{path}")
            small.page.wait_for_selector(ready)
            overflow = small.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow} px wider than a 390 px screen"
            small.screenshot(name)
        small.page.goto(f"{console_server.url}/jobs")
        small.page.wait_for_selector('#start-project option[value="demo"]', state="attached")
        project, spider = (small.page.locator(f"#start-{f}").bounding_box() for f in ("project", "spider"))
        assert spider["y"] - (project["y"] + project["height"]) < 60  # the pickers stack, no gaps between
        assert (ARTIFACTS / "job-390.png").exists()
        assert small.errors == []
    finally:
        phone.close()
