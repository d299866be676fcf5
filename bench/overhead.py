"""Add-on overhead: the same static crawl with and without ``ADDONS = {"scrapy_hitl.Addon": 500}``.

    .venv/bin/python bench/overhead.py [--pages 5000] [--pairs 7] [--quick]

Each run is a fresh crawler process (bench/benchlib/crawl_runner.py) crawling the sandbox's
``/static/page/<n>`` set from page 1, following every link, one item per page, with the same
settings (CONCURRENT_REQUESTS=16, LOG_LEVEL=WARNING, no feed export, telnet and HTTP cache
off). Both sides see a real Redis and a fresh SQLite database in a temp dir; only the add-on
differs. Runs alternate (without, with, without, with, ...); throughput is
``response_count / elapsed_time_seconds`` from the crawl's own stats, so process start-up
is excluded. Target: median ratio with / without >= 0.95.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from benchlib.common import (
    ADDON, CRAWL_SETTINGS, fresh_state_env, median, redis_server, run_crawl, sandbox_server,
    table, workdir, write_result,
)

TARGET = 0.95
# Settings added to the with-add-on side only (--addon-settings): switch components off with
# their HITL_*_ENABLED flags to see what each costs.
ADDON_SETTINGS: dict = {}
VALGRIND_SLOWDOWN = 50
VALGRIND_TIMERS = {name: value * VALGRIND_SLOWDOWN for name, value in (
    ("HITL_PARK_FLUSH_INTERVAL", 0.05), ("HITL_STATS_FLUSH_INTERVAL", 5.0), ("HITL_QUALITY_FLUSH_INTERVAL", 1.0),
    ("HITL_PROGRESS_INTERVAL", 5.0), ("HITL_RUN_HEARTBEAT", 10.0))}


def one_run(with_addon: bool, pages: int, base: str, redis_url: str, wd, i: int, seeds: int = 32) -> dict:
    env = fresh_state_env(redis_url, wd)
    settings = dict(CRAWL_SETTINGS)
    if with_addon:
        settings.update(ADDONS=ADDON, **ADDON_SETTINGS)
    name = f"{'with' if with_addon else 'without'}-{i}"
    report = run_crawl("static", settings=settings, env=env, out_dir=wd, name=name,
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)})
    st = report["stats"]
    responses = int(st.get("response_received_count", 0))
    elapsed = float(st["elapsed_time_seconds"])
    active = report["first_to_last_response_s"] or float("nan")
    return {
        "addon": with_addon,
        "responses": responses,
        "items": int(st.get("item_scraped_count", 0)),
        "elapsed_s": elapsed,
        "pages_per_s": responses / elapsed,
        "first_to_last_response_s": active,
        "pages_per_s_first_to_last": (responses - 1) / active if active and active > 0 else float("nan"),
        "close_s": elapsed - (report["open_to_last_response_s"] or 0.0),
        "finish_reason": st.get("finish_reason"),
        "hitl_run_id": st.get("hitl/run_id"),
        "cpu_ms_per_page": 1000 * report["cpu_s"]["process"] / max(1, responses),
        "reactor_cpu_ms_per_page": 1000 * report["cpu_s"]["reactor_thread"] / max(1, responses),
        "gc_collections": report["cpu_s"]["gc_collections"],
        "gc_ms_per_page": 1000 * report["cpu_s"]["gc_s"] / max(1, responses),
        "peak_rss_mb": report["peak_rss_kb"] / 1024,
        "log_errors": report["log_errors"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000, help="static pages to crawl (default 5000)")
    parser.add_argument("--pairs", type=int, default=7,
                        help="(without, with) pairs (default 7: single pairs scatter by +-10 %%)")
    parser.add_argument("--seeds", type=int, default=32,
                        help="parallel link chains (default 32: CPU-bound like a listing crawl; "
                             "1 gives a latency-bound chain with ~2 requests in flight)")
    parser.add_argument("--page-kb", type=int, default=1,
                        help="size of each page in KB (default 1: tiny pages, the add-on's worst case; "
                             "typical HTML pages are 30 KB or more)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 pages, 1 pair")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions per page under valgrind instead of timing "
                             "(immune to machine noise; slow: use --pages 400 or so)")
    parser.add_argument("--addon-settings", default="{}", metavar="JSON",
                        help='settings for the with-add-on side only, e.g. \'{"HITL_QUALITY_ENABLED": false}\' '
                             "to measure the add-on without a component")
    parser.add_argument("--out", help="JSON result file (default bench/results/overhead.json)")
    ns = parser.parse_args(argv)
    ADDON_SETTINGS.update(json.loads(ns.addon_settings))
    if ns.quick:
        ns.pages, ns.pairs = 300, 1
    if ns.instructions:
        return instructions_main(ns)

    runs: list[dict] = []
    with redis_server() as redis, sandbox_server(static_pages=ns.pages, static_page_kb=ns.page_kb) as sandbox, \
            workdir("overhead") as wd:
        for i in range(ns.pairs):
            for with_addon in (False, True):
                r = one_run(with_addon, ns.pages, sandbox.url, redis.url, wd, i, ns.seeds)
                runs.append(r)
                print(f"  pair {i + 1}/{ns.pairs} {'with   ' if with_addon else 'without'} "
                      f"{r['responses']} pages in {r['elapsed_s']:.2f}s = {r['pages_per_s']:.1f} pages/s",
                      flush=True)
                if r["responses"] != ns.pages or r["log_errors"]:
                    print(f"  WARNING: expected {ns.pages} responses, got {r['responses']}; "
                          f"errors: {r['log_errors'][:3]}", flush=True)

    without = [r for r in runs if not r["addon"]]
    with_ = [r for r in runs if r["addon"]]
    per_pair = [w["pages_per_s"] / b["pages_per_s"] for b, w in zip(without, with_)]
    per_pair_active = [w["pages_per_s_first_to_last"] / b["pages_per_s_first_to_last"]
                       for b, w in zip(without, with_)]
    # The headline is the median of the per-pair ratios: the two runs of a pair are adjacent
    # in time, so a slow drift of the machine's speed cancels out; the ratio of the two
    # medians is reported too.
    ratio = median(per_pair)
    ratio_of_medians = median([r["pages_per_s"] for r in with_]) / median([r["pages_per_s"] for r in without])
    ratio_active = (median([r["pages_per_s_first_to_last"] for r in with_])
                    / median([r["pages_per_s_first_to_last"] for r in without]))

    rows = []
    for label, group in (("without add-on", without), ("with add-on", with_)):
        rows.append([label, len(group), median([r["responses"] for r in group]),
                     median([r["elapsed_s"] for r in group]), median([r["pages_per_s"] for r in group]),
                     median([r["pages_per_s_first_to_last"] for r in group]),
                     median([r["reactor_cpu_ms_per_page"] for r in group]),
                     median([r["gc_ms_per_page"] for r in group]),
                     median([r["close_s"] for r in group]), median([r["peak_rss_mb"] for r in group])])
    cpu_ratio = (median([r["reactor_cpu_ms_per_page"] for r in with_])
                 / median([r["reactor_cpu_ms_per_page"] for r in without]))
    print()
    print(table(["run", "n", "pages", "elapsed s", "pages/s", "pages/s 1st->last resp",
                 "reactor CPU ms/page", "GC ms/page", "last resp->close s", "peak RSS MB"], rows))
    print(f"per-pair ratios (with/without): {', '.join(f'{x:.3f}' for x in per_pair)}; "
          f"ratio of the medians: {ratio_of_medians:.3f}")
    print(f"first->last response ratio (crawl phase only): {ratio_active:.3f}; "
          f"reactor-thread CPU per page, with/without: {cpu_ratio:.3f}")
    result = {
        "params": {"pages": ns.pages, "page_kb": ns.page_kb, "pairs": ns.pairs, "seeds": ns.seeds, "quick": ns.quick, "settings": CRAWL_SETTINGS},
        "runs": runs,
        "median_pages_per_s": {"without": median([r["pages_per_s"] for r in without]),
                               "with": median([r["pages_per_s"] for r in with_])},
        "ratio": ratio,
        "ratio_of_medians": ratio_of_medians,
        "per_pair_ratios": per_pair,
        "ratio_first_to_last_response": ratio_active,
        "per_pair_ratios_first_to_last_response": per_pair_active,
        "reactor_cpu_per_page_ratio": cpu_ratio,
        "target": TARGET,
        "meets_target": ratio >= TARGET,
    }
    path = write_result("overhead", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT overhead: throughput ratio with/without add-on = {ratio:.3f} (median of {len(per_pair)} pairs; "
          f"{result['median_pages_per_s']['with']:.1f} vs {result['median_pages_per_s']['without']:.1f} "
          f"pages/s, target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")
    return 0


def _callgrind_instructions(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {path}")


def _count_instructions(with_addon: bool, pages: int, base: str, redis_url: str, wd: Path, seeds: int) -> int:
    name = f"instr-{'with' if with_addon else 'without'}-{pages}"
    out = wd / f"{name}.callgrind"
    settings = dict(CRAWL_SETTINGS, DOWNLOAD_TIMEOUT=600)  # valgrind slows the crawler ~50x
    if with_addon:
        # ... and so its timers fire ~50x more often per page than in a real crawl: slowed as
        # much, they cost per page what they cost at full speed (they are per second, not per
        # page; bench/quality_overhead.py does the same for the item writer).
        settings.update(ADDONS=ADDON, **VALGRIND_TIMERS, **ADDON_SETTINGS)
    report = run_crawl("static", settings=settings, env=fresh_state_env(redis_url, wd), out_dir=wd, name=name,
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)}, timeout=7200,
                       wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    got = int(report["stats"].get("response_received_count", 0))
    if got != pages:
        raise RuntimeError(f"{name}: expected {pages} responses, got {got}")
    count = _callgrind_instructions(out)
    print(f"  {'with   ' if with_addon else 'without'} {pages:>6} pages: {count / 1e9:.2f} G instructions",
          flush=True)
    return count


def instructions_main(ns: argparse.Namespace) -> int:
    """Instructions per page, with and without the add-on, under valgrind's callgrind.

    Wall-clock throughput on a shared 2-core VM swings by ±20% between adjacent runs; an
    instruction count does not. Start-up (imports, Redis, database) is removed by
    differencing: each side crawls ``pages`` and ``3 * pages``, and the marginal
    instructions per page is (I(3p) - I(p)) / 2p. For a CPU-bound crawl, throughput is
    inversely proportional to it, so without/with is the predicted throughput ratio.
    """
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    small, large = ns.pages, 3 * ns.pages
    counts: dict[tuple[bool, int], int] = {}
    with redis_server() as redis, workdir("overhead-instr") as wd:
        for pages in (small, large):
            # A sandbox of exactly `pages` pages: the spider follows every page it finds.
            with sandbox_server(static_pages=pages, static_page_kb=ns.page_kb) as sandbox:
                for with_addon in (False, True):
                    counts[(with_addon, pages)] = _count_instructions(with_addon, pages, sandbox.url,
                                                                      redis.url, wd, ns.seeds)
    per_page = {w: (counts[(w, large)] - counts[(w, small)]) / (large - small) for w in (False, True)}
    ratio = per_page[False] / per_page[True]
    print(f"marginal instructions per page: without {per_page[False] / 1e6:.3f} M, "
          f"with {per_page[True] / 1e6:.3f} M (+{100 * (per_page[True] / per_page[False] - 1):.1f}%)")
    result = {"params": {"pages": [small, large], "page_kb": ns.page_kb, "seeds": ns.seeds, "mode": "instructions"},
              "instructions": {f"{'with' if w else 'without'}-{p}": n for (w, p), n in counts.items()},
              "per_page": {"without": per_page[False], "with": per_page[True]},
              "ratio": ratio, "target": TARGET, "meets_target": ratio >= TARGET}
    path = write_result("overhead-instructions", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT overhead (instructions): predicted throughput ratio with/without = {ratio:.3f} "
          f"(target >= {TARGET}: {'met' if ratio >= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
