"""Quality gate overhead: the same 20,000-item crawl with the gate on and off, side by side.

    .venv/bin/python bench/quality_overhead.py [--pages 20000] [--pairs 3] [--quick]

Both sides run the add-on (``ADDONS = {"scrapy_hitl.Addon": 500}``) against a real Redis and
a fresh SQLite database; only ``HITL_QUALITY_ENABLED`` differs. The crawl is bench/overhead.py's:
the sandbox's ``/static/page/<n>`` set from 32 seeds, one item per page (id, text, author,
tags, url), CONCURRENT_REQUESTS=16. With the gate, every item is scored against a JSON Schema
(``HITL_ITEM_SCHEMAS``), checked for consistency with the run, routed, counted, and stored
(batched, off the reactor). One item per tiny page is the gate's worst case: its cost is per
item, the crawl's per page. Runs alternate (off, on, off, on, ...). Target: median ratio of
throughput on / off >= 0.95 (at most 5% slower).

``--instructions`` counts CPU instructions per item under valgrind instead (see
bench/overhead.py): on a shared 2-core VM wall-clock pairs swing by tens of percent, the
counts repeat to within 1%.
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

TARGET = 0.95
ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "text": {"type": "string", "minLength": 1},
        "author": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "url": {"type": "string"},
    },
    "required": ["id", "text", "author", "url"],
}


def one_run(gate: bool, pages: int, base: str, redis_url: str, wd, i: int, seeds: int) -> dict:
    env = fresh_state_env(redis_url, wd)
    settings = dict(CRAWL_SETTINGS, ADDONS=ADDON, HITL_QUALITY_ENABLED=gate,
                    HITL_ITEM_SCHEMAS={"dict": ITEM_SCHEMA})
    name = f"{'on' if gate else 'off'}-{i}"
    report = run_crawl("static", settings=settings, env=env, out_dir=wd, name=name,
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)})
    st = report["stats"]
    responses = int(st.get("response_received_count", 0))
    elapsed = float(st["elapsed_time_seconds"])
    stored = None
    if gate and st.get("hitl/run_id"):
        from scrapy_hitl.state import items

        state = open_state(env)
        try:
            stored = sum(items.counts(state.db, st["hitl/run_id"]).values())
        finally:
            state.close()
    return {
        "gate": gate,
        "responses": responses,
        "items": int(st.get("item_scraped_count", 0)),
        "items_stored": stored,
        "delivered": st.get("hitl/quality/delivered", 0),
        "elapsed_s": elapsed,
        "pages_per_s": responses / elapsed,
        "reactor_cpu_ms_per_page": 1000 * report["cpu_s"]["reactor_thread"] / max(1, responses),
        "cpu_ms_per_page": 1000 * report["cpu_s"]["process"] / max(1, responses),
        "peak_rss_mb": report["peak_rss_kb"] / 1024,
        "log_errors": report["log_errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=20_000, help="static pages = items (default 20000)")
    parser.add_argument("--pairs", type=int, default=3, help="(off, on) pairs (default 3)")
    parser.add_argument("--seeds", type=int, default=32, help="parallel link chains (default 32)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 400 pages, 1 pair")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions per item under valgrind instead of timing (immune to "
                             "machine noise; slow: use --pages 200 or so)")
    parser.add_argument("--out", help="JSON result file (default bench/results/quality_overhead.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.pages, ns.pairs = 400, 1
    if ns.instructions:
        return instructions_main(ns)

    runs: list[dict] = []
    with redis_server() as redis, sandbox_server(static_pages=ns.pages) as sandbox, \
            workdir("quality") as wd:
        for i in range(ns.pairs):
            for gate in (False, True):
                r = one_run(gate, ns.pages, sandbox.url, redis.url, wd, i, ns.seeds)
                runs.append(r)
                print(f"  pair {i + 1}/{ns.pairs} gate {'on ' if gate else 'off'} {r['items']} items in "
                      f"{r['elapsed_s']:.2f}s = {r['pages_per_s']:.1f} pages/s"
                      + (f", {r['items_stored']} stored" if gate else ""), flush=True)
                if r["responses"] != ns.pages or r["log_errors"] or (gate and r["items_stored"] != ns.pages):
                    print(f"  WARNING: expected {ns.pages} responses and stored items, got {r['responses']} / "
                          f"{r['items_stored']}; errors: {r['log_errors'][:3]}", flush=True)

    off = [r for r in runs if not r["gate"]]
    on = [r for r in runs if r["gate"]]
    per_pair = [b["pages_per_s"] / a["pages_per_s"] for a, b in zip(off, on)]
    ratio = median(per_pair)
    cpu_off = median([r["reactor_cpu_ms_per_page"] for r in off])
    cpu_on = median([r["reactor_cpu_ms_per_page"] for r in on])
    rows = [[label, len(g), median([r["items"] for r in g]), median([r["elapsed_s"] for r in g]),
             median([r["pages_per_s"] for r in g]), median([r["reactor_cpu_ms_per_page"] for r in g]),
             median([r["cpu_ms_per_page"] for r in g]), median([r["peak_rss_mb"] for r in g])]
            for label, g in (("gate off", off), ("gate on", on))]
    print()
    print(table(["run", "n", "items", "elapsed s", "pages/s", "reactor CPU ms/item", "process CPU ms/item",
                 "peak RSS MB"], rows))
    print(f"per-pair ratios (on/off): {', '.join(f'{x:.3f}' for x in per_pair)}; "
          f"reactor CPU per item on-off: {cpu_on - cpu_off:+.3f} ms")
    result = {
        "params": {"pages": ns.pages, "pairs": ns.pairs, "seeds": ns.seeds, "quick": ns.quick,
                   "settings": CRAWL_SETTINGS, "schema": ITEM_SCHEMA},
        "runs": runs,
        "median_pages_per_s": {"off": median([r["pages_per_s"] for r in off]),
                               "on": median([r["pages_per_s"] for r in on])},
        "ratio": ratio,
        "per_pair_ratios": per_pair,
        "reactor_cpu_ms_per_item": {"off": cpu_off, "on": cpu_on},
        "target": TARGET,
        "meets_target": ratio >= TARGET,
    }
    path = write_result("quality_overhead", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT quality_overhead: throughput ratio gate on/off = {ratio:.3f} (overhead "
          f"{100 * (1 - ratio):.1f}%, median of {len(per_pair)} pairs; {result['median_pages_per_s']['on']:.1f} vs "
          f"{result['median_pages_per_s']['off']:.1f} pages/s, target >= {TARGET}: "
          f"{'met' if ratio >= TARGET else 'NOT met'})")
    return 0


def _instructions(gate: bool, pages: int, base: str, redis_url: str, wd: Path, seeds: int) -> int:
    name = f"instr-{'on' if gate else 'off'}-{pages}"
    out = wd / f"{name}.callgrind"
    # Valgrind slows the crawler ~50x: timers are slowed as much, or the 1 s flush would write
    # batches of a few items instead of a few hundred and overstate the cost of storing them.
    settings = dict(CRAWL_SETTINGS, ADDONS=ADDON, HITL_QUALITY_ENABLED=gate, HITL_ITEM_SCHEMAS={"dict": ITEM_SCHEMA},
                    DOWNLOAD_TIMEOUT=600, HITL_QUALITY_FLUSH_INTERVAL=50.0)
    report = run_crawl("static", settings=settings, env=fresh_state_env(redis_url, wd), out_dir=wd, name=name,
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)}, timeout=7200,
                       wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    if int(report["stats"].get("item_scraped_count", 0)) != pages:
        raise RuntimeError(f"{name}: expected {pages} items, got {report['stats'].get('item_scraped_count')}")
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            count = int(line.split()[1])
            print(f"  gate {'on ' if gate else 'off'} {pages:>6} items: {count / 1e9:.2f} G instructions", flush=True)
            return count
    raise RuntimeError(f"no instruction total in {out}")


def instructions_main(ns: argparse.Namespace) -> int:
    """Instructions per item with the gate on and off, under valgrind's callgrind (all threads:
    the I/O thread's writes count too). Each side crawls ``pages`` and ``3 * pages``; the
    marginal instructions per item, (I(3p) - I(p)) / 2p, cancel start-up. For a CPU-bound
    crawl, throughput is inversely proportional to it: off/on is the predicted ratio."""
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    small, large = ns.pages, 3 * ns.pages
    counts: dict[tuple[bool, int], int] = {}
    with redis_server() as redis, workdir("quality-instr") as wd:
        for pages in (small, large):
            with sandbox_server(static_pages=pages) as sandbox:
                for gate in (False, True):
                    counts[(gate, pages)] = _instructions(gate, pages, sandbox.url, redis.url, wd, ns.seeds)
    per_item = {g: (counts[(g, large)] - counts[(g, small)]) / (large - small) for g in (False, True)}
    ratio = per_item[False] / per_item[True]
    print(f"marginal instructions per item: gate off {per_item[False] / 1e6:.3f} M, on {per_item[True] / 1e6:.3f} M "
          f"(+{100 * (per_item[True] / per_item[False] - 1):.1f}%)")
    result = {"params": {"pages": [small, large], "seeds": ns.seeds, "mode": "instructions", "schema": ITEM_SCHEMA},
              "instructions": {f"{'on' if g else 'off'}-{p}": n for (g, p), n in counts.items()},
              "per_item": {"off": per_item[False], "on": per_item[True]},
              "ratio": ratio, "target": TARGET, "meets_target": ratio >= TARGET}
    path = write_result("quality_overhead-instructions", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT quality_overhead (instructions): predicted throughput ratio gate on/off = {ratio:.3f} "
          f"(target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
