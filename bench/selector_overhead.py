"""Fingerprint sampling overhead: a crawl with declared fields, with and without fingerprints.

    .venv/bin/python bench/selector_overhead.py [--pages 5000] [--pairs 3] [--quick]

Both sides run the add-on and the ``static_fields`` spider (bench/benchlib/spiders.py: the
``static`` crawl's item read through ``hitl_extract``); only ``-a fingerprints=0|1`` differs
(``hitl_fingerprints``). Runs alternate (off, on, ...). Figures: process CPU per page (all
threads: the fingerprints' writes are on the I/O thread) and throughput. Target: CPU per page
on / off <= 1.02 (fingerprinting adds at most 2%).
"""

from __future__ import annotations

import argparse
import sys

from benchlib.common import ADDON, CRAWL_SETTINGS, fresh_state_env, median, redis_server, run_crawl, sandbox_server, \
    table, workdir, write_result

TARGET = 1.02


def one_run(on: bool, pages: int, base: str, redis_url: str, wd, i: int, seeds: int) -> dict:
    report = run_crawl("static_fields", settings=dict(CRAWL_SETTINGS, ADDONS=ADDON),
                       env=fresh_state_env(redis_url, wd), out_dir=wd, name=f"{'on' if on else 'off'}-{i}",
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages),
                                    "fingerprints": "1" if on else "0"})
    st = report["stats"]
    responses = int(st.get("response_received_count", 0))
    return {"on": on, "responses": responses, "items": int(st.get("item_scraped_count", 0)),
            "fingerprinted": st.get("hitl/selectors/fingerprinted", 0),
            "pages_per_s": responses / float(st["elapsed_time_seconds"]),
            "cpu_ms_per_page": 1000 * report["cpu_s"]["process"] / max(1, responses),
            "reactor_cpu_ms_per_page": 1000 * report["cpu_s"]["reactor_thread"] / max(1, responses),
            "log_errors": report["log_errors"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 pages, 1 pair")
    parser.add_argument("--out", help="JSON result file (default bench/results/selector_overhead.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.pages, ns.pairs = 300, 1
    runs = []
    with redis_server() as redis, sandbox_server(static_pages=ns.pages) as sandbox, workdir("selectors") as wd:
        for i in range(ns.pairs):
            for on in (False, True):
                r = one_run(on, ns.pages, sandbox.url, redis.url, wd, i, ns.seeds)
                runs.append(r)
                print(f"  pair {i + 1}/{ns.pairs} fingerprints {'on ' if on else 'off'}: {r['items']} items, "
                      f"{r['cpu_ms_per_page']:.3f} CPU ms/page, {r['pages_per_s']:.1f} pages/s, "
                      f"{r['fingerprinted']} pages fingerprinted", flush=True)
                if r["items"] != ns.pages or r["log_errors"]:
                    print(f"  WARNING: expected {ns.pages} items; errors: {r['log_errors'][:3]}", flush=True)
    off = [r for r in runs if not r["on"]]
    on = [r for r in runs if r["on"]]
    per_pair = [b["cpu_ms_per_page"] / a["cpu_ms_per_page"] for a, b in zip(off, on)]
    ratio = median(per_pair)
    print(table(["side", "n", "CPU ms/page", "reactor CPU ms/page", "pages/s"],
                [[label, len(g), median([r["cpu_ms_per_page"] for r in g]),
                  median([r["reactor_cpu_ms_per_page"] for r in g]), median([r["pages_per_s"] for r in g])]
                 for label, g in (("fingerprints off", off), ("fingerprints on", on))]))
    result = {"params": vars(ns), "runs": runs, "per_pair_cpu_ratios": per_pair, "ratio": ratio, "target": TARGET,
              "meets_target": ratio <= TARGET}
    path = write_result("selector_overhead", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT selector_overhead: CPU per page on/off = {ratio:.3f} (median of {len(per_pair)} pairs; "
          f"target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
