"""Two crawler hosts, one Redis, one PostgreSQL (issue 20, docs/deploy.md): one human fix
resumes crawlers on every host, and a lost host's job moves to another."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.integration.conftest import wait_for
from tests.multihost.conftest import worker_ready

VIP = "vip.sandbox.test"
VIP_COOKIE = [{"name": "vip_pass", "value": "letmein", "domain": VIP, "path": "/"}]


def run_job(rig, *args: str) -> dict:
    return rig.hitl_json("jobs", "run", "rig", "pages", "-a", f"base={rig.sandbox_url}", *args)


def job(state, job_id: int) -> dict:
    from scrapy_hitl.state import jobs

    return jobs.get(state.db, job_id)


def items_by_n(state, run_id: str) -> dict[int, int]:
    """n -> how many items the run recorded for page n (the shared item store: PostgreSQL)."""
    import json

    from scrapy_hitl.state.models import ScrapedItem

    with state.db.session() as s:
        rows = s.scalars(select(ScrapedItem.data).where(ScrapedItem.run_id == run_id)).all()
    counts: dict[int, int] = {}
    for raw in rows:
        n = (json.loads(raw) if isinstance(raw, str) else raw)["n"]
        counts[n] = counts.get(n, 0) + 1
    return counts


def item_count(state, run_id: str) -> int:
    from scrapy_hitl.state.models import ScrapedItem

    with state.db.session() as s:
        return s.scalar(select(func.count()).select_from(ScrapedItem).where(ScrapedItem.run_id == run_id))


def test_two_hosts_blocked_on_one_domain_get_one_intervention_and_one_resolve_resumes_both(
        rig, hosts, token, state):
    rig.sandbox_reset()
    waiting = ("-s", "HITL_PAUSE_TIMEOUT=600", "-s", "CONCURRENT_REQUESTS=4")
    first = run_job(rig, "-a", "section=vip", "-a", "first=1", "-a", "last=30", *waiting)
    second = run_job(rig, "-a", "section=vip", "-a", "first=31", "-a", "last=60", *waiting)
    both = (first["id"], second["id"])
    wait_for(lambda: all(job(state, j)["status"] == "waiting_for_human" for j in both), timeout=180,
             interval=0.5, what="both jobs to wait for a human")
    assert {job(state, j)["host"] for j in both} == {"rig-a", "rig-b"}  # one on each host, at once

    status, body = rig.api("GET", "/api/v1/interventions?status=open", token=token)
    assert status == 200, body
    assert [(i["domain"], i["type"]) for i in body["items"]] == [(VIP, "manual_access")]  # one, not two

    status, body = rig.api("POST", f"/api/v1/interventions/{body['items'][0]['id']}/resolve",
                           {"captured_session": {"cookies": VIP_COOKIE}, "note": "vip pass"}, token=token)
    assert status == 200, body
    wait_for(lambda: all(job(state, j)["status"] == "finished" for j in both), timeout=180, interval=0.5,
             what="both jobs to finish after one resolve")
    done = [job(state, j) for j in both]
    assert [d["attempts"] for d in done] == [1, 1]  # resumed alive, where they waited

    # every page fetched exactly once across the hosts (the 403s before the resolve aside)
    for n in range(1, 61):
        statuses = [r["status"] for r in rig.sandbox_requests(f"/vip/detail/{n}")]
        assert statuses.count(200) == 1, (n, statuses)
    # Parked requests are shared per (spider, domain): whichever crawler claims one fetches it,
    # so the items of the two runs together hold every page once.
    together = items_by_n(state, first["run_id"])
    for n, count in items_by_n(state, second["run_id"]).items():
        together[n] = together.get(n, 0) + count
    assert together == {n: 1 for n in range(1, 61)}


def test_a_host_with_another_secret_key_refuses_to_start(rig, tmp_path):
    cookie = rig.dir / "keycheck-cookie.txt"  # the driver's files are the operator's
    cookie.write_text("Cookie: sid=s3cret\n")
    rig.hitl("sessions", "import", "keycheck.sandbox.test", str(cookie), "--name", "keycheck")
    host = rig.hosts[0]
    wrong = host.start_worker(HITL_SECRET_KEY="not-the-hosts-key")
    assert wrong.popen.wait(timeout=120) == 1
    log = wrong.log()
    assert "HITL_SECRET_KEY cannot decrypt the session vault" in log and "Traceback" not in log, log
    host.workers.remove(wrong)
    rig.hitl("sessions", "delete", "keycheck.sandbox.test")


def test_a_reviewer_on_the_console_sees_the_screenshot_of_a_block_on_a_crawler_host(rig, hosts, token, state):
    browser = ("-s", "HITL_TIERS=static,browser,human", "-s", "HITL_PAUSE_TIMEOUT=600")
    started = run_job(rig, "-a", "section=protected", "-a", "first=1", "-a", "last=1", *browser)
    try:
        def shot():
            status, body = rig.api("GET", "/api/v1/interventions?status=open&domain=protected.sandbox.test",
                                   token=token)
            opened = body["items"] if status == 200 else []
            return opened and (opened[0]["evidence"].get("artifacts") or {}).get("screenshot") and opened[0]

        intervention = wait_for(shot, timeout=180, interval=0.5, what="a captcha intervention with a screenshot")
        assert intervention["type"] == "captcha_solve" and intervention["evidence"]["tier"] == "browser"
        crawled_on = job(state, started["id"])["host"]
        assert crawled_on in {h.hostname for h in rig.hosts}  # not the console's namespace
        # The console (its own namespace, no file of the crawler host) serves the screenshot.
        status, png = rig.api("GET", f"/api/v1/interventions/{intervention['id']}/artifacts/screenshot", token=token)
        assert status == 200 and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    finally:
        rig.hitl("jobs", "cancel", str(started["id"]), check=False)
        for row in rig.hitl_json("interventions", "list", "--domain", "protected.sandbox.test"):
            rig.hitl("interventions", "cancel", str(row["id"]), check=False)


def test_a_captcha_page_held_on_a_crawler_host_is_solved_live_from_the_console(rig, hosts, token, state, playwright):
    """The live view across namespaces: the crawler's Chromium on a host holds the challenge page,
    the reviewer (this process, a websocket to the console's namespace) ticks, types and submits."""
    import json
    import re

    from tests.support.console import LiveClient

    path = "/protected/detail/2"
    browser = ("-s", "HITL_TIERS=static,browser,human", "-s", "HITL_PAUSE_TIMEOUT=600")
    started = run_job(rig, "-a", "section=protected", "-a", "first=2", "-a", "last=2", *browser)
    ws = None
    try:
        def live():
            status, body = rig.api("GET", "/api/v1/interventions?status=open&domain=protected.sandbox.test",
                                   token=token)
            rows = body["items"] if status == 200 else []
            return rows and rows[0]["evidence"].get("live") and rows[0]

        iid = wait_for(live, timeout=180, interval=0.5, what="a live captcha intervention")["id"]
        held_on = job(state, started["id"])["host"]
        assert held_on in {h.hostname for h in rig.hosts}
        # The intervention (with its evidence) is written before the crawler's page goes live
        # (the screencast starts after): "none" until then, as the console's live view shows it.
        def live_page():
            status, page = rig.api("GET", f"/api/v1/interventions/{iid}/live", token=token)
            assert status == 200, page
            return page["state"] == "live" and page

        page = wait_for(live_page, timeout=60, interval=0.2, what="the held page to go live")
        status, html = rig.api("GET", f"/api/v1/interventions/{iid}/artifacts/html", token=token)
        assert status == 200, html
        code = re.search(rb'id="cf-code">([A-Z0-9]+)<', html).group(1).decode()
        # Where the checkbox and the code field are in the held page: the same HTML laid out
        # in a viewport of its size (the reviewer sees them in the frames).
        local = playwright.chromium.launch(executable_path=playwright.executable)
        try:
            context = local.new_context(viewport={"width": int(page["width"]), "height": int(page["height"])},
                                        java_script_enabled=False)
            tab = context.new_page()
            tab.set_content(html.decode())
            boxes = {name: tab.locator(sel).bounding_box()
                     for name, sel in (("checkbox", "input[name=human]"), ("code", "#cf-code-input"))}
        finally:
            local.close()

        status, body = rig.api("POST", f"/api/v1/interventions/{iid}/live/token", token=token)
        assert status == 201, body
        live_token = body["token"]
        ws = LiveClient.connect(f"{rig.console_url.replace('http://', 'ws://')}/ws/live/{iid}?token={live_token}",
                                headers=[("Authorization", f"Bearer {token}"), ("Origin", rig.console_url)])
        first = json.loads(ws.receive(timeout=60))
        assert first["type"] in ("frame", "status")

        def click(box):
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            for kind in ("down", "up"):
                ws.send(json.dumps({"op": "mouse", "type": kind, "x": x, "y": y, "button": "left", "clicks": 1}))

        click(boxes["checkbox"])
        click(boxes["code"])
        ws.send(json.dumps({"op": "text", "text": code}))
        for kind in ("down", "up"):
            ws.send(json.dumps({"op": "key", "type": kind, "key": "Enter", "code": "Enter"}))
        wait_for(lambda: any(r["status"] == 200 for r in rig.sandbox_requests(path)), timeout=60, interval=0.2,
                 what="the solved page to load in the held browser page")

        status, body = rig.api("POST", f"/api/v1/interventions/{iid}/live/continue", {"token": live_token},
                               token=token)
        assert status == 200 and body["continued"], body
        done = wait_for(lambda: (j := job(state, started["id"]))["status"] in ("finished", "failed") and j,
                        timeout=180, interval=0.5, what="the job to finish")
        assert done["status"] == "finished", done
        assert items_by_n(state, started["run_id"]) == {2: 1}  # the item of the page solved live
        assert [r["status"] for r in rig.sandbox_requests(path)].count(200) == 1  # never fetched again
    finally:
        if ws is not None and ws.connected:
            ws.close()
        rig.hitl("jobs", "cancel", str(started["id"]), check=False)
        for row in rig.hitl_json("interventions", "list", "--domain", "protected.sandbox.test"):
            rig.hitl("interventions", "cancel", str(row["id"]), check=False)


def test_a_drained_hosts_job_continues_on_the_other_and_a_killed_hosts_job_starts_over_there(rig, hosts, state):
    """Last in the module: it leaves a host dead. One job, three attempts on two hosts:

    1. its host is drained (a deploy's SIGTERM): the crawl stops gracefully, the other host
       continues it from the JOBDIR on the hosts' shared HITL_JOB_DIR, fetching no page again;
    2. that host loses every process at once (SIGKILL): its JOBDIR was never saved, so the
       first host, back, starts the crawl over; the run still holds every item once.
    """
    import signal

    def fetched() -> dict[int, int]:
        return {n: [r["status"] for r in rig.sandbox_requests(f"/drift/detail/{n}")].count(200) for n in range(1, 61)}

    def running_on(attempt: int) -> dict:
        return wait_for(lambda: (j := job(state, started["id"]))["status"] == "running" and j["attempts"] == attempt
                        and j, timeout=240, interval=0.2, what=f"attempt {attempt} to run")

    # one page at a time, slowly enough to drain and kill mid-crawl; a 1 s run heartbeat, so
    # the third attempt waits 3 s (not 30) for the killed crawl's heartbeat to end
    slow = ("-s", "CONCURRENT_REQUESTS=1", "-s", "DOWNLOAD_DELAY=0.15", "-s", "HITL_RUN_HEARTBEAT=1")
    started = run_job(rig, "-a", "section=drift", "-a", "first=1", "-a", "last=60", *slow)
    first = next(h for h in rig.hosts if h.hostname == running_on(1)["host"])
    other = next(h for h in rig.hosts if h is not first)
    wait_for(lambda: item_count(state, started["run_id"]) >= 5, timeout=120, interval=0.2, what="5 items")
    for worker in first.workers:
        worker.popen.send_signal(signal.SIGTERM)
    for worker in first.workers:
        assert worker.popen.wait(timeout=120) == 0, worker.log()[-3000:]
    first.workers.clear()

    assert running_on(2)["host"] == other.hostname
    before = item_count(state, started["run_id"])
    wait_for(lambda: item_count(state, started["run_id"]) >= before + 5, timeout=120, interval=0.2,
             what="5 more items on the other host")
    assert max(fetched().values()) == 1  # continued from the shared JOBDIR: nothing fetched twice
    first.start_worker(HITL_JOB_HEARTBEAT="1", HITL_JOB_LIMIT_CRAWLS="1")
    wait_for(lambda: worker_ready(first), timeout=120, interval=0.2, what="the first host's worker")
    assert job(state, started["id"])["status"] == "running"  # still crawling on the other host

    other.kill_all()  # every process of the host: worker, crawl workers, the crawl
    assert other.pids() == []
    assert running_on(3)["host"] == first.hostname
    done = wait_for(lambda: (j := job(state, started["id"]))["status"] in ("finished", "failed") and j,
                    timeout=240, interval=0.5, what="the first host to finish the job")
    assert (done["status"], done["attempts"]) == ("finished", 3), done
    assert items_by_n(state, started["run_id"]) == {n: 1 for n in range(1, 61)}  # nothing lost, nothing doubled
    assert any("starting the crawl over" in line for line in rig.hitl_json("jobs", "log", str(started["id"])))
    assert list(rig.jobs_dir.glob(f"{started['run_id']}.unclean-*"))  # the unsaved JOBDIR, moved aside
