"""Session rotation overhead: the same static crawl with one session and with five, side by side.

    .venv/bin/python bench/session_overhead.py [--pages 5000] [--pairs 5] [--quick]

Both sides run the add-on against a real Redis and a fresh SQLite database, with the crawled
domain's sessions in the vault before the crawl: one session, or a pool of five that every
request rotates over (round robin, a cookie jar per session, per-domain use counts). The
crawl is bench/overhead.py's: the sandbox's ``/static/page/<n>`` set from 32 seeds, one item
per page, CONCURRENT_REQUESTS=16. Runs alternate in pairs (one, five, then five, one, ...).
Figure: process CPU per page, five / one, the median of the per-pair ratios.
Target: <= 1.02 (rotation over 5 sessions adds at most 2% per page).

``--instructions`` counts CPU instructions per page under valgrind instead (as
bench/quality_overhead.py does): on a shared 2-core VM wall-clock and CPU-time pairs swing by
tens of percent, the counts repeat to within 1%.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchlib.common import (
    ADDON, CRAWL_SETTINGS, fresh_state_env, median, open_state, redis_server, run_crawl, sandbox_server,
    table, workdir, write_result,
)

TARGET = 1.02


def state_with_sessions(sessions: int, base: str, redis_url: str, wd: Path) -> dict[str, str]:
    """A fresh state whose vault holds ``sessions`` sessions of the crawled host."""
    from urllib.parse import urlsplit

    from scrapy_hitl.cookies import Cookie

    env = fresh_state_env(redis_url, wd)
    host = urlsplit(base).hostname
    state = open_state(env)
    try:
        for n in range(sessions):
            state.vault.put(host, [Cookie("sid", f"session-{n}-{'x' * 24}", host), Cookie("pref", "dark", host)],
                            name=f"account-{n}", user_agent=f"Mozilla/5.0 bench-{n}")
    finally:
        state.close()
    return env


def one_run(sessions: int, pages: int, base: str, redis_url: str, wd, i: int, seeds: int) -> dict:
    from urllib.parse import urlsplit

    host = urlsplit(base).hostname
    env = state_with_sessions(sessions, base, redis_url, wd)
    settings = dict(CRAWL_SETTINGS, ADDONS=ADDON)
    report = run_crawl("static", settings=settings, env=env, out_dir=wd, name=f"s{sessions}-{i}",
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)})
    st = report["stats"]
    responses = int(st.get("response_received_count", 0))
    return {
        "sessions": sessions,
        "responses": responses,
        "attached": st.get("hitl/sessions/attached", 0),
        "used": st.get(f"hitl/sessions/{host}/used", 0),
        "elapsed_s": float(st["elapsed_time_seconds"]),
        "pages_per_s": responses / float(st["elapsed_time_seconds"]),
        "cpu_ms_per_page": 1000 * report["cpu_s"]["process"] / max(1, responses),
        "reactor_cpu_ms_per_page": 1000 * report["cpu_s"]["reactor_thread"] / max(1, responses),
        "log_errors": report["log_errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000, help="static pages (default 5000)")
    parser.add_argument("--pairs", type=int, default=5, help="(one, five) pairs (default 5)")
    parser.add_argument("--seeds", type=int, default=32, help="parallel link chains (default 32)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 pages, 1 pair")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions per page under valgrind instead of timing (immune to "
                             "machine noise; slow: use --pages 200 or so)")
    parser.add_argument("--out", help="JSON result file (default bench/results/session_overhead.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.pages, ns.pairs = 300, 1
    if ns.instructions:
        return instructions_main(ns)

    runs: list[dict] = []
    with redis_server() as redis, sandbox_server(static_pages=ns.pages) as sandbox, workdir("sessions") as wd:
        for i in range(ns.pairs):
            order = (1, 5) if i % 2 == 0 else (5, 1)  # alternate which side goes first
            for sessions in order:
                r = one_run(sessions, ns.pages, sandbox.url, redis.url, wd, i, ns.seeds)
                runs.append(r)
                print(f"  pair {i + 1}/{ns.pairs} {sessions} session(s): {r['responses']} pages, "
                      f"{r['cpu_ms_per_page']:.3f} ms CPU/page, {r['pages_per_s']:.0f} pages/s", flush=True)
                if r["responses"] != ns.pages or r["used"] != ns.pages or r["log_errors"]:
                    print(f"  WARNING: expected {ns.pages} pages each with a session, got {r['responses']} / "
                          f"{r['used']}; errors: {r['log_errors'][:3]}", flush=True)

    one = [r for r in runs if r["sessions"] == 1]
    five = [r for r in runs if r["sessions"] == 5]
    per_pair = [b["cpu_ms_per_page"] / a["cpu_ms_per_page"] for a, b in zip(one, five)]
    ratio = median(per_pair)
    rows = [[label, len(g), median([r["responses"] for r in g]), median([r["pages_per_s"] for r in g]),
             median([r["cpu_ms_per_page"] for r in g]), median([r["reactor_cpu_ms_per_page"] for r in g])]
            for label, g in (("1 session", one), ("5 sessions", five))]
    print()
    print(table(["run", "n", "pages", "pages/s", "process CPU ms/page", "reactor CPU ms/page"], rows))
    print(f"per-pair CPU ratios (five/one): {', '.join(f'{x:.3f}' for x in per_pair)}")
    result = {
        "params": {"pages": ns.pages, "pairs": ns.pairs, "seeds": ns.seeds, "quick": ns.quick,
                   "settings": CRAWL_SETTINGS},
        "runs": runs,
        "cpu_ms_per_page": {"one": median([r["cpu_ms_per_page"] for r in one]),
                            "five": median([r["cpu_ms_per_page"] for r in five])},
        "ratio": ratio,
        "per_pair_ratios": per_pair,
        "target": TARGET,
        "meets_target": ratio <= TARGET,
    }
    path = write_result("session_overhead", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT session_overhead: CPU per page five sessions / one = {ratio:.3f} "
          f"({100 * (ratio - 1):+.1f}%, median of {len(per_pair)} pairs; target <= {TARGET}: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")
    return 0


def _instructions(sessions: int, pages: int, base: str, redis_url: str, wd: Path, seeds: int) -> int:
    name = f"instr-s{sessions}-{pages}"
    out = wd / f"{name}.callgrind"
    # Valgrind slows the crawler ~50x: the add-on's timers are slowed as much (bench/overhead.py).
    settings = dict(CRAWL_SETTINGS, ADDONS=ADDON, DOWNLOAD_TIMEOUT=600, HITL_STATS_FLUSH_INTERVAL=250.0,
                    HITL_PARK_FLUSH_INTERVAL=2.5, HITL_PROGRESS_INTERVAL=250.0, HITL_RUN_HEARTBEAT=500.0)
    report = run_crawl("static", settings=settings, env=state_with_sessions(sessions, base, redis_url, wd), out_dir=wd,
                   name=name, spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)}, timeout=7200,
                   wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    if int(report["stats"].get("response_received_count", 0)) != pages:
        raise RuntimeError(f"{name}: expected {pages} pages, got {report['stats'].get('response_received_count')}")
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            count = int(line.split()[1])
            print(f"  {sessions} session(s) {pages:>6} pages: {count / 1e9:.2f} G instructions", flush=True)
            return count
    raise RuntimeError(f"no instruction total in {out}")


def instructions_main(ns: argparse.Namespace) -> int:
    """Marginal instructions per page, (I(3p) - I(p)) / 2p, with one session and with five
    (start-up cancels out)."""
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    small, large = ns.pages, 3 * ns.pages
    counts: dict[tuple[int, int], int] = {}
    with redis_server() as redis, workdir("sessions-instr") as wd:
        for pages in (small, large):
            with sandbox_server(static_pages=pages) as sandbox:
                for sessions in (1, 5):
                    counts[(sessions, pages)] = _instructions(sessions, pages, sandbox.url, redis.url, wd, ns.seeds)
    per_page = {n: (counts[(n, large)] - counts[(n, small)]) / (large - small) for n in (1, 5)}
    ratio = per_page[5] / per_page[1]
    print(f"marginal instructions per page: one session {per_page[1] / 1e6:.3f} M, five {per_page[5] / 1e6:.3f} M "
          f"({100 * (ratio - 1):+.2f}%)")
    result = {"params": {"pages": [small, large], "seeds": ns.seeds, "mode": "instructions"},
              "instructions": {f"s{n}-{p}": c for (n, p), c in counts.items()},
              "per_page": {"one": per_page[1], "five": per_page[5]},
              "ratio": ratio, "target": TARGET, "meets_target": ratio <= TARGET}
    path = write_result("session_overhead-instructions", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT session_overhead (instructions): per page five sessions / one = {ratio:.4f} "
          f"(target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
