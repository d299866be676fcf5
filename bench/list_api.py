"""List API latency: ``GET /api/v1/interventions`` with 100,000 interventions in the database.

    .venv/bin/python bench/list_api.py [--rows 100000] [--reps 200] [--quick]

Seeds a fresh SQLite database with ``--rows`` interventions (a realistic mix: a few open,
most resolved or cancelled, 1,000 domains, four types), serves the console with the real
server (``hitl console``: gunicorn, gthread), logs in, and walks the list with ``limit=50``
from page 1 to page 500 by ``next_cursor``. Then it times, alternating, ``--reps`` requests
each of:

- page 1, and page 500 (the keyset cursor makes both one index seek; an OFFSET would scan
  24,950 rows for page 500);
- page 1 filtered by ``status=resolved&type=login_refresh``;
- the baseline: the same page 500 query through the state layer in this process
  (``scrapy_hitl.state.interventions.list_interventions``), i.e. the database's share.

Each request is a fresh keep-alive HTTP request with a Bearer token, timed from send to the
last byte of the body. Target: p95 <= 100 ms for page 1 and for page 500.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from benchlib.common import fresh_state_env, median, open_state, percentile, redis_server, table, workdir, write_result

TARGET_P95_MS = 100
LIMIT = 50
TYPES = ("manual_access", "login_refresh", "captcha_solve", "selector_fix")


def seed(state: Any, rows: int) -> None:
    """Bulk-insert interventions (one executemany per 10,000 rows)."""
    from sqlalchemy import insert

    from scrapy_hitl.state.models import Intervention

    start = datetime.now(timezone.utc) - timedelta(days=30)
    batch: list[dict[str, Any]] = []
    open_pairs: set[tuple[str, str]] = set()
    with state.db.session() as s:
        for i in range(rows):
            domain = f"site{i % 1000}.example"
            type_ = TYPES[i % len(TYPES)]
            # Open only for the newest, and at most one per (domain, type): the unique index.
            status = "open" if i >= rows - 200 and (domain, type_) not in open_pairs else (
                "resolved" if i % 5 else "cancelled")
            if status == "open":
                open_pairs.add((domain, type_))
            at = start + timedelta(seconds=i * 20)
            batch.append({
                "type": type_, "reason": "forbidden", "vendor": None, "domain": domain,
                "spider": "bench", "run_id": None, "status": status, "priority": i % 3,
                "parked_count": i % 40, "url": f"https://{domain}/page/{i}", "response_status": 403,
                "response_headers": {"server": "bench", "content-type": "text/html"},
                "evidence": {"status": 403, "url": f"https://{domain}/page/{i}", "body_excerpt": "<h1>403</h1>"},
                "note": "", "resolution": {} if status == "open" else {"action": "done"},
                "resolved_by": None, "created_at": at, "updated_at": at,
                "resolved_at": None if status == "open" else at,
            })
            if len(batch) == 10_000:
                s.execute(insert(Intervention), batch)
                batch = []
        if batch:
            s.execute(insert(Intervention), batch)


class Client:
    """One keep-alive connection with a Bearer token."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status != 200:
            raise RuntimeError(f"GET {path} answered {resp.status}: {body[:500]!r}")
        return elapsed, json.loads(body)


def login(port: int, email: str, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/auth/login", body=json.dumps({"email": email, "password": password}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    if resp.status != 200:
        raise RuntimeError(f"login failed: {data}")
    return data["access_token"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="interventions in the database")
    parser.add_argument("--page", type=int, default=500, help="the deep page to time (default 500)")
    parser.add_argument("--reps", type=int, default=200, help="timed requests per kind")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3,000 rows, page 20, 20 reps")
    parser.add_argument("--out", help="JSON result file (default bench/results/list_api.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.rows, ns.page, ns.reps = 3_000, 20, 20
    if ns.page * LIMIT > ns.rows:
        parser.error(f"--page {ns.page} needs at least {ns.page * LIMIT} rows")

    from hitl_console.api import decode_cursor
    from hitl_console.auth.users import create_user
    from hitl_console.server import ConsoleProcess, free_port
    from scrapy_hitl.state.interventions import list_interventions

    with redis_server() as redis, workdir("list-api") as wd:
        env = fresh_state_env(redis.url, wd)
        state = open_state(env)
        t0 = time.perf_counter()
        seed(state, ns.rows)
        seed_s = time.perf_counter() - t0
        print(f"seeded {ns.rows} interventions in {seed_s:.1f} s", flush=True)
        create_user(state.db, "bench@example.com", "bench-password", "reviewer")
        console = ConsoleProcess(port=free_port(0), env=env, log_path=str(wd / "console.log")).start()
        try:
            client = Client(console.port, login(console.port, "bench@example.com", "bench-password"))
            # Walk to the deep page by next_cursor, as a client paging through would.
            cursor = None
            walk_ms = []
            seen: set[int] = set()
            for _ in range(ns.page - 1):
                path = f"/api/v1/interventions?limit={LIMIT}" + (f"&cursor={cursor}" if cursor else "")
                ms, data = client.get(path)
                walk_ms.append(ms)
                seen.update(item["id"] for item in data["items"])
                cursor = data["next_cursor"]
            assert len(seen) == (ns.page - 1) * LIMIT, "pages overlapped or ran short"
            deep_path = f"/api/v1/interventions?limit={LIMIT}&cursor={cursor}"
            (deep_cursor_id,) = decode_cursor(cursor, 1)  # the id the deep page starts below
            kinds = {
                "page 1": lambda: client.get(f"/api/v1/interventions?limit={LIMIT}")[0],
                f"page {ns.page}": lambda: client.get(deep_path)[0],
                "page 1, filtered": lambda: client.get(
                    f"/api/v1/interventions?limit={LIMIT}&status=resolved&type=login_refresh")[0],
                f"baseline: page {ns.page} in-process": lambda: _timed(
                    lambda: list_interventions(state, limit=LIMIT + 1, cursor=deep_cursor_id)),
            }
            samples: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(ns.reps):
                for name, fn in kinds.items():
                    samples[name].append(fn())
        finally:
            console.stop()
            state.close()

    rows = [[name, len(v), median(v), percentile(v, 95), max(v)] for name, v in samples.items()]
    print()
    print(table(["request", "n", "p50 ms", "p95 ms", "max ms"], rows))
    p95 = {name: percentile(v, 95) for name, v in samples.items()}
    page1, deep_name = "page 1", f"page {ns.page}"
    flatness = p95[deep_name] / p95[page1]
    api_over_db = p95[deep_name] / p95[f"baseline: page {ns.page} in-process"]
    print(f"walk to page {ns.page}: median {median(walk_ms):.1f} ms/page; p95 page {ns.page} / page 1 = "
          f"{flatness:.2f}; API / in-process query (page {ns.page}, p95) = {api_over_db:.2f}")
    met = p95[page1] <= TARGET_P95_MS and p95[deep_name] <= TARGET_P95_MS
    result = {
        "params": {"rows": ns.rows, "page": ns.page, "limit": LIMIT, "reps": ns.reps, "quick": ns.quick},
        "seed_s": seed_s,
        "walk_ms_median": median(walk_ms),
        "samples_ms": samples,
        "p95_ms": p95,
        "deep_over_first_p95": flatness,
        "api_over_in_process_p95": api_over_db,
        "target_p95_ms": TARGET_P95_MS,
        "meets_target": met,
    }
    path = write_result("list_api", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT list_api: p95 page 1 {p95[page1]:.1f} ms, page {ns.page} {p95[deep_name]:.1f} ms with "
          f"{ns.rows} interventions (target <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'})")
    return 0


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


if __name__ == "__main__":
    sys.exit(main())
