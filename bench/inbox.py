"""Inbox first paint: what the dashboard needs from the server before it shows anything, with
1,000 open items waiting.

    .venv/bin/python bench/inbox.py [--open 1000] [--reps 100] [--quick]

Seeds a fresh SQLite database with ``--open`` open interventions (one per domain and type, as
the unique index wants, a third with parked requests in Redis), ``--open`` items held for
review over 20 runs, 100 pending consultations and 20 runs, serves the console with the real
server (``hitl console``: gunicorn, gthread) and logs in. Then it times, ``--reps`` times, what
the dashboard asks for before its first paint, one request after the other as the browser
does: the HTML shell (``GET /``), ``GET /api/v1/inbox`` (100 rows) and ``GET /api/v1/runs``
(20 runs). Each request is timed from send to the last byte of its body; "first paint" is
their sum. The baseline is the inbox built in this process
(``hitl_console.inbox.inbox``): the database's and Redis's share.

Target: p95 of the first paint <= 300 ms of server time.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from benchlib.common import fresh_state_env, median, open_state, percentile, redis_server, table, workdir, write_result

TARGET_P95_MS = 300
TYPES = ("manual_access", "login_refresh", "captcha_solve", "selector_fix")


def seed(state: Any, n_open: int) -> None:
    from sqlalchemy import insert

    from scrapy_hitl.state import consultations, runs
    from scrapy_hitl.state.models import Intervention, ScrapedItem
    from scrapy_hitl.state.parking import ParkEntry

    start = datetime.now(timezone.utc) - timedelta(days=2)
    run_ids = [runs.create_run(state.db, f"bench-run-{r:02d}", "bench", {}, "/tmp")["id"] for r in range(20)]
    rows, items = [], []
    for i in range(n_open):
        domain = f"site{i // len(TYPES)}.example"
        at = start + timedelta(seconds=i * 30)
        rows.append({"type": TYPES[i % len(TYPES)], "reason": "http_403", "vendor": None, "domain": domain,
                     "spider": "bench", "run_id": run_ids[i % 20], "status": "open", "priority": i % 3,
                     "parked_count": 0, "url": f"https://{domain}/page/{i}", "response_status": 403,
                     "response_headers": {"server": "bench"},
                     "evidence": {"status": 403, "body_excerpt": "<h1>403</h1>" * 50}, "note": "",
                     "resolution": {}, "resolved_by": None, "created_at": at, "updated_at": at})
        items.append({"run_id": run_ids[i % 20], "spider": "bench", "item_type": "Product",
                      "url": f"https://{domain}/p/{i}", "status": "pending_review", "deliverable": False,
                      "score": 0.3, "breakdown": {}, "failing": [], "data": '{"name": "x"}', "version": 1,
                      "on_timeout": "drop", "created_at": at, "updated_at": at})
    with state.db.session() as s:
        s.execute(insert(Intervention), rows)
        s.execute(insert(ScrapedItem), items)
    for d in range(0, n_open // len(TYPES), 3):  # a third of the domains hold parked requests
        domain = f"site{d}.example"
        state.parking.park("bench", [ParkEntry.build(domain=domain, fingerprint=f"{domain}-{k}",
                                                     request={"url": f"https://{domain}/{k}"}, reason="domain_paused")
                                     for k in range(5)])
    for c in range(100):
        consultations.create(state, title=f"Question {c}", priority=(c % 5) * 20, actor="agent:1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--open", type=int, default=1000, help="open interventions, and as many held items")
    parser.add_argument("--reps", type=int, default=100, help="timed first paints")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 open, 10 reps")
    parser.add_argument("--out", help="JSON result file (default bench/results/inbox.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.open, ns.reps = 100, 10

    from hitl_console.auth.users import create_user
    from hitl_console.inbox import inbox
    from hitl_console.server import ConsoleProcess, free_port
    from list_api import Client, login

    with redis_server() as redis, workdir("inbox") as wd:
        env = fresh_state_env(redis.url, wd)
        state = open_state(env)
        t0 = time.perf_counter()
        seed(state, ns.open)
        print(f"seeded {ns.open} open interventions and {ns.open} held items in {time.perf_counter() - t0:.1f} s",
              flush=True)
        create_user(state.db, "bench@example.com", "bench-password", "reviewer")
        console = ConsoleProcess(port=free_port(0), env=env, log_path=str(wd / "console.log")).start()
        try:
            client = Client(console.port, login(console.port, "bench@example.com", "bench-password"))
            first = client.get("/api/v1/inbox?limit=100")[1]
            assert len(first["items"]) == 100 and first["counts"]["interventions"] == ns.open, first["counts"]
            samples: dict[str, list[float]] = {"GET / (shell)": [], "GET /api/v1/inbox": [], "GET /api/v1/runs": [],
                                               "first paint (sum)": [], "baseline: inbox in-process": []}
            for _ in range(ns.reps):
                shell = _html(client, "/")
                box = client.get("/api/v1/inbox?limit=100")[0]
                listed = client.get("/api/v1/runs?limit=20")[0]
                samples["GET / (shell)"].append(shell)
                samples["GET /api/v1/inbox"].append(box)
                samples["GET /api/v1/runs"].append(listed)
                samples["first paint (sum)"].append(shell + box + listed)
                t1 = time.perf_counter()
                inbox(state, limit=100)
                samples["baseline: inbox in-process"].append((time.perf_counter() - t1) * 1000)
        finally:
            console.stop()
            state.close()

    rows = [[name, len(v), median(v), percentile(v, 95), max(v)] for name, v in samples.items()]
    print()
    print(table(["request", "n", "p50 ms", "p95 ms", "max ms"], rows))
    p95 = {name: percentile(v, 95) for name, v in samples.items()}
    paint = p95["first paint (sum)"]
    met = paint <= TARGET_P95_MS
    result = {"params": {"open": ns.open, "held_items": ns.open, "consultations": 100, "reps": ns.reps,
                         "quick": ns.quick},
              "samples_ms": samples, "p95_ms": p95, "target_p95_ms": TARGET_P95_MS, "meets_target": met}
    path = write_result("inbox", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT inbox: p95 first paint {paint:.1f} ms (shell + inbox + runs) with {ns.open} open interventions "
          f"and {ns.open} held items; inbox alone {p95['GET /api/v1/inbox']:.1f} ms, in-process "
          f"{p95['baseline: inbox in-process']:.1f} ms (target <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'})")
    return 0


def _html(client: Any, path: str) -> float:
    t0 = time.perf_counter()
    client.conn.request("GET", path, headers={**client.headers, "Accept": "text/html"})
    resp = client.conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"GET {path} answered {resp.status}: {body[:300]!r}")
    return (time.perf_counter() - t0) * 1000


if __name__ == "__main__":
    sys.exit(main())
