"""Add-on overhead: the same static crawl with ``ADDONS = {"scrapy_hitl.Addon": 500}`` and
against two baselines, run side by side in the same session.

    .venv/bin/python bench/overhead.py [--pages 5000] [--pairs 6] [--startup-reps 6] [--quick]

The three sides, each a fresh crawler process (bench/benchlib/crawl_runner.py):

- **vanilla**: Scrapy without the add-on;
- **vanilla+freeze**: the same, plus the one thing the add-on does to the interpreter that is
  not its own work: ``gc.collect(); gc.freeze()`` when the spider opens
  (``benchlib.crawl_runner.GcFreeze``, as ``scrapy_hitl.runtime._freeze_startup_objects``).
  This is the like-for-like baseline: the freeze alone makes Scrapy faster;
- **add-on**: the add-on with its defaults.

1. **Throughput.** The sandbox's ``/static/page/<n>`` set from ``--seeds`` pages, following
   every link, one item per page (CONCURRENT_REQUESTS=16, LOG_LEVEL=WARNING, no feed export,
   telnet and HTTP cache off), with a fresh state for each run (flushed Redis, new SQLite
   file, its schema created before the add-on's crawl: the migrations are a project's first
   crawl's price, not every crawl's). Rounds run the three sides back to back, in each of the six orders in turn
   (each side first as often, and after each other side as often);
   throughput is ``response_count / elapsed_time_seconds`` from the crawl's own stats, so
   process start-up is excluded. Ratios are medians of the per-round ratios.
   Target: add-on / (vanilla+freeze) >= 0.95.
2. **Start-up.** A one-page crawl (a sandbox of one static page), whole process: the wall
   time from spawn to exit and the peak RSS (VmHWM), with the state reused (the same data
   dir, database and Redis each time, as a project crawling daily has). One untimed warm-up
   per side, then ``--startup-reps`` rounds in the same orders. Target: add-on - vanilla <= +0.3 s
   and <= +25 MB.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from pathlib import Path

from benchlib.common import (
    ADDON, CRAWL_SETTINGS, fresh_state_env, median, open_state, redis_server, run_crawl, sandbox_server,
    table, workdir, write_result,
)

TARGET = 0.95
STARTUP_TARGET_S = 0.3
STARTUP_TARGET_MB = 25.0
SIDES = ("vanilla", "freeze", "addon")
LABELS = {"vanilla": "vanilla Scrapy", "freeze": "vanilla Scrapy + gc.freeze()", "addon": "with the add-on"}
# Settings added to the with-add-on side only (--addon-settings): switch components off with
# their HITL_*_ENABLED flags to see what each costs.
ADDON_SETTINGS: dict = {}
VALGRIND_SLOWDOWN = 50
VALGRIND_TIMERS = {name: value * VALGRIND_SLOWDOWN for name, value in (
    ("HITL_PARK_FLUSH_INTERVAL", 0.05), ("HITL_STATS_FLUSH_INTERVAL", 5.0), ("HITL_QUALITY_FLUSH_INTERVAL", 1.0),
    ("HITL_PROGRESS_INTERVAL", 5.0), ("HITL_RUN_HEARTBEAT", 10.0))}


def side_settings(side: str, **extra: object) -> dict:
    settings = dict(CRAWL_SETTINGS, **extra)
    if side == "freeze":
        settings["BENCH_GC_FREEZE"] = True
    elif side == "addon":
        settings.update(ADDONS=ADDON, **ADDON_SETTINGS)
    return settings


ORDERS = tuple(itertools.permutations(SIDES))


def round_order(i: int) -> tuple[str, ...]:
    """Round i's order: the six orders of the three sides in turn, so over six rounds each side
    runs first twice and follows each other side equally often. (A rotation kept the cyclic
    order: the add-on always ran right after vanilla + freeze, and whatever one crawl leaves
    the next, such as the kernel writing back its files, always fell on the same side.)"""
    return ORDERS[i % len(ORDERS)]


def crawl_state(side: str, redis_url: str, wd: Path) -> dict[str, str]:
    """A fresh state for one crawl (flushed Redis, a new SQLite file), with the schema made
    before the add-on's crawl, as every crawl but a project's very first finds it: creating
    it (Alembic, every migration) is a one-time price, +20 MB of RSS at spider open, that a
    per-page figure should not charge to every crawl."""
    env = fresh_state_env(redis_url, wd)
    if side == "addon":
        open_state(env).close()
    return env


def one_run(side: str, pages: int, base: str, redis_url: str, wd, i: int, seeds: int = 32) -> dict:
    env = crawl_state(side, redis_url, wd)
    name = f"{side}-{i}"
    report = run_crawl("static", settings=side_settings(side), env=env, out_dir=wd, name=name,
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)})
    st = report["stats"]
    responses = int(st.get("response_received_count", 0))
    elapsed = float(st["elapsed_time_seconds"])
    active = report["first_to_last_response_s"] or float("nan")
    return {
        "side": side,
        "addon": side == "addon",
        "round": i,
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
        # the add-on's own threads (the I/O writer, the events reader): CPU beside the reactor
        "other_threads_cpu_ms_per_page": 1000 * (report["cpu_s"]["process"] - report["cpu_s"]["reactor_thread"])
        / max(1, responses),
        "threads": report.get("threads", []),
        "rss_at_open_mb": (report.get("rss_open_kb") or 0) / 1024,
        "gc_collections": report["cpu_s"]["gc_collections"],
        "gc_ms_per_page": 1000 * report["cpu_s"]["gc_s"] / max(1, responses),
        "gc_frozen_objects": report.get("gc_frozen_objects", 0),
        "peak_rss_mb": report["peak_rss_kb"] / 1024,
        "process_wall_s": report["process_wall_s"],
        "log_errors": report["log_errors"],
    }


def startup_run(side: str, base: str, env: dict[str, str], wd: Path, name: str) -> dict:
    """One whole-process, one-page crawl with the shared (reused) state."""
    report = run_crawl("static", settings=side_settings(side), env=env, out_dir=wd, name=name,
                       spider_args={"base": base, "seeds": "1", "pages": "1"})
    return {
        "side": side,
        "responses": int(report["stats"].get("response_received_count", 0)),
        "process_wall_s": report["process_wall_s"],
        "process_cpu_s": report["process_cpu_s"],
        "elapsed_s": float(report["stats"]["elapsed_time_seconds"]),
        "peak_rss_mb": report["peak_rss_kb"] / 1024,
        "log_errors": report["log_errors"],
    }


def by_round(runs: list[dict], key: str, side: str, base: str, op=lambda a, b: a / b) -> list[float]:
    """Per round, ``op(side's value, base's value)``."""
    rounds: dict[int, dict[str, float]] = {}
    for r in runs:
        rounds.setdefault(r["round"], {})[r["side"]] = r[key]
    return [op(v[side], v[base]) for _, v in sorted(rounds.items()) if side in v and base in v]


def med(runs: list[dict], side: str, key: str) -> float:
    return median([r[key] for r in runs if r["side"] == side])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5000,
                        help="static pages to crawl (default 5000; 0 skips the throughput rounds: start-up only)")
    parser.add_argument("--pairs", type=int, default=6,
                        help="rounds of the three sides (default 6, one per order: single runs scatter by +-10 %%)")
    parser.add_argument("--startup-reps", type=int, default=6,
                        help="rounds of the one-page start-up crawl (default 6; 0 skips it)")
    parser.add_argument("--seeds", type=int, default=32,
                        help="parallel link chains (default 32: CPU-bound like a listing crawl; "
                             "1 gives a latency-bound chain with ~2 requests in flight)")
    parser.add_argument("--page-kb", type=int, default=1,
                        help="size of each page in KB (default 1: tiny pages, the add-on's worst case; "
                             "typical HTML pages are 30 KB or more)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 pages, 1 round, 1 start-up round")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions per page under valgrind instead of timing "
                             "(immune to machine noise; slow: use --pages 400 or so)")
    parser.add_argument("--addon-settings", default="{}", metavar="JSON",
                        help='settings for the with-add-on side only, e.g. \'{"HITL_QUALITY_ENABLED": false}\' '
                             "to measure the add-on without a component")
    parser.add_argument("--keep", metavar="DIR", help="--instructions: keep the callgrind files in DIR")
    parser.add_argument("--out", help="JSON result file (default bench/results/overhead.json)")
    ns = parser.parse_args(argv)
    ADDON_SETTINGS.update(json.loads(ns.addon_settings))
    if ns.quick:
        ns.pages, ns.pairs, ns.startup_reps = 300, 1, 1
    if ns.instructions:
        return instructions_main(ns)

    runs: list[dict] = []
    startup: list[dict] = []
    with redis_server() as redis, workdir("overhead") as wd:
        if ns.pages > 0:  # 0: start-up only
            with sandbox_server(static_pages=ns.pages, static_page_kb=ns.page_kb) as sandbox:
                for i in range(ns.pairs):
                    for side in round_order(i):
                        r = one_run(side, ns.pages, sandbox.url, redis.url, wd, i, ns.seeds)
                        runs.append(r)
                        print(f"  round {i + 1}/{ns.pairs} {side:<8} {r['responses']} pages in {r['elapsed_s']:.2f}s "
                              f"= {r['pages_per_s']:.1f} pages/s, peak RSS {r['peak_rss_mb']:.1f} MB", flush=True)
                        if r["responses"] != ns.pages or r["log_errors"]:
                            print(f"  WARNING: expected {ns.pages} responses, got {r['responses']}; "
                                  f"errors: {r['log_errors'][:3]}", flush=True)
        if ns.startup_reps:
            with sandbox_server(static_pages=1, static_page_kb=ns.page_kb) as one_page:
                env = fresh_state_env(redis.url, wd)  # one state, reused by every start-up run
                for side in SIDES:  # warm-up, untimed: creates the schema, fills the page cache
                    startup_run(side, one_page.url, env, wd, f"startup-warmup-{side}")
                for i in range(ns.startup_reps):
                    for side in round_order(i):
                        r = startup_run(side, one_page.url, env, wd, f"startup-{side}-{i}")
                        r["round"] = i
                        startup.append(r)
                        print(f"  start-up {i + 1}/{ns.startup_reps} {side:<8} {r['process_wall_s']:.3f} s "
                              f"(CPU {r['process_cpu_s']:.3f} s), peak RSS {r['peak_rss_mb']:.1f} MB", flush=True)
                        if r["responses"] != 1 or r["log_errors"]:
                            print(f"  WARNING: expected 1 response, got {r['responses']}; "
                                  f"errors: {r['log_errors'][:3]}", flush=True)

    throughput: dict = {}  # empty with --pages 0
    diff = (lambda a, b: a - b)
    if runs:
        # Headline ratios: the median of the per-round ratios (the runs of a round are adjacent in
        # time, so a slow drift of the machine's speed cancels out); the ratio of the medians too.
        ratios = {base: by_round(runs, "pages_per_s", "addon", base) for base in ("vanilla", "freeze")}
        ratio = {base: median(v) for base, v in ratios.items()}
        ratio_of_medians = {base: med(runs, "addon", "pages_per_s") / med(runs, base, "pages_per_s")
                            for base in ("vanilla", "freeze")}
        ratio_active = {base: median(by_round(runs, "pages_per_s_first_to_last", "addon", base))
                        for base in ("vanilla", "freeze")}
        cpu_ratio = {base: med(runs, "addon", "reactor_cpu_ms_per_page") / med(runs, base, "reactor_cpu_ms_per_page")
                     for base in ("vanilla", "freeze")}
        freeze_gain = median(by_round(runs, "pages_per_s", "freeze", "vanilla"))
        rss_crawl = {base: median(by_round(runs, "peak_rss_mb", "addon", base, diff)) for base in ("vanilla", "freeze")}

        rows = []
        for side in SIDES:
            rows.append([LABELS[side], sum(1 for r in runs if r["side"] == side), med(runs, side, "responses"),
                         med(runs, side, "elapsed_s"), med(runs, side, "pages_per_s"),
                         med(runs, side, "pages_per_s_first_to_last"), med(runs, side, "reactor_cpu_ms_per_page"),
                         med(runs, side, "gc_ms_per_page"), med(runs, side, "close_s"), med(runs, side, "peak_rss_mb")])
        print()
        print(f"Throughput ({ns.pages} pages of ~{ns.page_kb} KB, {ns.pairs} rounds, medians):")
        print(table(["run", "n", "pages", "elapsed s", "pages/s", "pages/s 1st->last resp",
                     "reactor CPU ms/page", "GC ms/page", "last resp->close s", "peak RSS MB"], rows))
        for base in ("vanilla", "freeze"):
            print(f"add-on / {LABELS[base]}: median {ratio[base]:.3f} (rounds {', '.join(f'{x:.3f}' for x in ratios[base])}; "
                  f"ratio of the medians {ratio_of_medians[base]:.3f}; crawl phase only {ratio_active[base]:.3f}; "
                  f"reactor CPU per page {cpu_ratio[base]:.3f}; peak RSS {rss_crawl[base]:+.1f} MB)")
        print(f"gc.freeze() alone: vanilla+freeze / vanilla = {freeze_gain:.3f}")
        throughput = {
            "median_pages_per_s": {side: med(runs, side, "pages_per_s") for side in SIDES} | {
                "with": med(runs, "addon", "pages_per_s"), "without": med(runs, "vanilla", "pages_per_s")},
            # The headline is against the like-for-like baseline (vanilla + the same gc.freeze()).
            "ratio": ratio["freeze"],
            "ratio_vs_vanilla": ratio["vanilla"],
            "ratio_vs_vanilla_freeze": ratio["freeze"],
            "ratio_of_medians": ratio_of_medians,
            "per_round_ratios": ratios,
            "ratio_first_to_last_response": ratio_active,
            "reactor_cpu_per_page_ratio": cpu_ratio,
            "freeze_alone_ratio": freeze_gain,
            "peak_rss_mb_extra_crawl": rss_crawl,
            "target": TARGET,
            "meets_target": ratio["freeze"] >= TARGET,
        }

    startup_result: dict = {}
    if startup:
        srows = [[LABELS[side], sum(1 for r in startup if r["side"] == side), med(startup, side, "process_wall_s"),
                  med(startup, side, "process_cpu_s"), med(startup, side, "elapsed_s"), med(startup, side, "peak_rss_mb")]
                 for side in SIDES]
        extra_s = {base: median(by_round(startup, "process_wall_s", "addon", base, diff)) for base in ("vanilla", "freeze")}
        extra_mb = {base: median(by_round(startup, "peak_rss_mb", "addon", base, diff)) for base in ("vanilla", "freeze")}
        extra_cpu = median(by_round(startup, "process_cpu_s", "addon", "vanilla", diff))
        print()
        print(f"Start-up: a one-page crawl, whole process, state reused ({ns.startup_reps} rounds, medians):")
        print(table(["run", "n", "process wall s", "process CPU s", "open->close s", "peak RSS MB"], srows))
        print(f"add-on - vanilla: {extra_cpu:+.3f} s CPU, {extra_mb['vanilla']:+.1f} MB peak RSS, {extra_s['vanilla']:+.3f} s wall "
              f"(median of the per-round differences; target <= +{STARTUP_TARGET_S} s CPU, <= +{STARTUP_TARGET_MB:.0f} MB)")
        startup_result = {
            "median_process_wall_s": {side: med(startup, side, "process_wall_s") for side in SIDES},
            "median_peak_rss_mb": {side: med(startup, side, "peak_rss_mb") for side in SIDES},
            "median_process_cpu_s": {side: med(startup, side, "process_cpu_s") for side in SIDES},
            "extra_s": extra_s, "extra_mb": extra_mb, "extra_cpu_s": extra_cpu,
            "per_round_extra_s": by_round(startup, "process_wall_s", "addon", "vanilla", diff),
            "per_round_extra_mb": by_round(startup, "peak_rss_mb", "addon", "vanilla", diff),
            "per_round_extra_cpu_s": by_round(startup, "process_cpu_s", "addon", "vanilla", diff),
            # CPU time, not wall: the wall time of a one-page crawl swings with the machine's load
            "target_s": STARTUP_TARGET_S, "target_mb": STARTUP_TARGET_MB,
            "meets_target": extra_cpu <= STARTUP_TARGET_S and extra_mb["vanilla"] <= STARTUP_TARGET_MB,
        }

    result = {
        "params": {"pages": ns.pages, "page_kb": ns.page_kb, "pairs": ns.pairs, "startup_reps": ns.startup_reps,
                   "seeds": ns.seeds, "quick": ns.quick, "settings": CRAWL_SETTINGS, "addon_settings": ADDON_SETTINGS},
        "runs": runs,
        "startup_runs": startup,
        **throughput,
        "startup": startup_result,
    }
    path = write_result("overhead", result, ns.out)
    print(f"results: {path}")
    parts = []
    if throughput:
        met = "met" if throughput["meets_target"] else "NOT met"
        pps = throughput["median_pages_per_s"]
        parts.append(f"throughput ratio with/without add-on = {ratio['freeze']:.3f} against vanilla Scrapy "
                     f"+ gc.freeze() (target >= {TARGET}: {met}), {ratio['vanilla']:.3f} against vanilla Scrapy "
                     f"({ns.page_kb} KB pages, median of {ns.pairs} rounds; {pps['addon']:.1f} vs "
                     f"{pps['freeze']:.1f} vs {pps['vanilla']:.1f} pages/s); "
                     f"peak RSS {rss_crawl['vanilla']:+.1f} MB over vanilla on the {ns.pages}-page crawl")
    if startup_result:
        smet = "met" if startup_result["meets_target"] else "NOT met"
        parts.append(f"one-page crawl start-up {startup_result['extra_cpu_s']:+.2f} s CPU and peak RSS "
                     f"{startup_result['extra_mb']['vanilla']:+.1f} MB over vanilla (target <= +{STARTUP_TARGET_S} s, "
                     f"<= +{STARTUP_TARGET_MB:.0f} MB: {smet})")
    print("RESULT overhead: " + "; ".join(parts))
    return 0


def _callgrind_instructions(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {path}")


def _count_instructions(side: str, pages: int, base: str, redis_url: str, wd: Path, seeds: int) -> int:
    name = f"instr-{side}-{pages}"
    out = wd / f"{name}.callgrind"
    # valgrind slows the crawler ~50x, and so the add-on's timers fire ~50x more often per
    # page than in a real crawl: slowed as much, they cost per page what they cost at full
    # speed (they are per second, not per page; bench/quality_overhead.py does the same for
    # the item writer).
    settings = side_settings(side, DOWNLOAD_TIMEOUT=600)
    if side == "addon":
        settings = {**VALGRIND_TIMERS, **settings}  # --addon-settings still win
    report = run_crawl("static", settings=settings, env=crawl_state(side, redis_url, wd), out_dir=wd, name=name,
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages)}, timeout=7200,
                       wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    got = int(report["stats"].get("response_received_count", 0))
    if got != pages:
        raise RuntimeError(f"{name}: expected {pages} responses, got {got}")
    count = _callgrind_instructions(out)
    print(f"  {side:<8} {pages:>6} pages: {count / 1e9:.2f} G instructions", flush=True)
    return count


def instructions_main(ns: argparse.Namespace) -> int:
    """Instructions per page, for the three sides, under valgrind's callgrind.

    Wall-clock throughput on a shared 2-core VM swings by ±20% between adjacent runs; an
    instruction count does not. Start-up (imports, Redis, database) is removed by
    differencing: each side crawls ``pages`` and ``3 * pages``, and the marginal
    instructions per page is (I(3p) - I(p)) / 2p. For a CPU-bound crawl, throughput is
    inversely proportional to it, so baseline/add-on is the predicted throughput ratio.
    ``--keep DIR`` keeps the callgrind files for ``callgrind_annotate``.
    """
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    small, large = ns.pages, 3 * ns.pages
    counts: dict[tuple[str, int], int] = {}
    with redis_server() as redis, workdir("overhead-instr") as wd:
        for pages in (small, large):
            # A sandbox of exactly `pages` pages: the spider follows every page it finds.
            with sandbox_server(static_pages=pages, static_page_kb=ns.page_kb) as sandbox:
                for side in SIDES:
                    counts[(side, pages)] = _count_instructions(side, pages, sandbox.url, redis.url, wd, ns.seeds)
        if ns.keep:
            Path(ns.keep).mkdir(parents=True, exist_ok=True)
            for f in wd.glob("*.callgrind"):
                shutil.copy(f, Path(ns.keep) / f.name)
    per_page = {side: (counts[(side, large)] - counts[(side, small)]) / (large - small) for side in SIDES}
    ratio = {base: per_page[base] / per_page["addon"] for base in ("vanilla", "freeze")}
    print("marginal instructions per page: " + ", ".join(
        f"{LABELS[side]} {per_page[side] / 1e6:.3f} M" for side in SIDES))
    for base in ("vanilla", "freeze"):
        print(f"add-on vs {LABELS[base]}: +{100 * (per_page['addon'] / per_page[base] - 1):.1f}% "
              f"instructions, predicted throughput ratio {ratio[base]:.3f}")
    result = {"params": {"pages": [small, large], "page_kb": ns.page_kb, "seeds": ns.seeds, "mode": "instructions",
                         "addon_settings": ADDON_SETTINGS},
              "instructions": {f"{side}-{p}": n for (side, p), n in counts.items()},
              "per_page": per_page | {"without": per_page["vanilla"], "with": per_page["addon"]},
              "ratio": ratio["freeze"], "ratio_vs_vanilla": ratio["vanilla"], "target": TARGET,
              "meets_target": ratio["freeze"] >= TARGET}
    path = write_result("overhead-instructions", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT overhead (instructions): predicted throughput ratio = {ratio['freeze']:.3f} against vanilla "
          f"Scrapy + gc.freeze() (target >= {TARGET}: {'met' if ratio['freeze'] >= TARGET else 'NOT met'}), "
          f"{ratio['vanilla']:.3f} against vanilla Scrapy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
