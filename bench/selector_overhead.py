"""Fingerprint sampling overhead: a crawl with declared fields, with and without fingerprints.

    .venv/bin/python bench/selector_overhead.py [--pages 5000] [--pairs 3] [--quick]

Both sides run the add-on and the ``static_fields`` spider (bench/benchlib/spiders.py: the
``static`` crawl's item read through ``hitl_extract``); only ``-a fingerprints=0|1`` differs
(``hitl_fingerprints``). Runs alternate (off, on, ...). Figures: process CPU per page (all
threads: the fingerprints' writes are on the I/O thread) and throughput. Target: CPU per page
on / off <= 1.02 (fingerprinting adds at most 2%).

``--inprocess`` times ``SelectorBook.extract`` in this process with sampling off and on, and
the time spent sampling itself (precise where the crawl pairs are noisy).

``--instructions`` counts CPU instructions per page under valgrind instead (as
bench/overhead.py does: each side crawls ``pages`` and ``3 * pages``, the difference cancels
start-up), for three sides: the ``static`` spider's hand-written selectors, ``static_fields``
without fingerprints, and with them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

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
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions per page under valgrind (use --pages 100 or so)")
    parser.add_argument("--inprocess", action="store_true",
                        help="time SelectorBook.extract over the pages in this process, sampling off / on, and "
                             "the time spent sampling (the crawl's I/O thread replaced by a no-op)")
    ns = parser.parse_args(argv)
    if ns.instructions:
        return instructions_main(ns)
    if ns.inprocess:
        return inprocess_main(ns)
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


def inprocess_main(ns: argparse.Namespace) -> int:
    """hitl_extract's own cost per page, and the sampling's share of it: one SelectorBook per
    round reads ``pages`` sandbox static pages (fresh responses), sampling off then on; the
    time inside ``_sample`` is measured on its own. The first round warms caches and is
    left out (it pays the one-time selector compilation)."""
    import time
    import types

    from scrapy.http import HtmlResponse
    from twisted.internet.defer import succeed

    import scrapy_hitl.selectorbook as selectorbook
    from benchlib.spiders import StaticFieldsSpider
    from sandbox.pages import static_page
    from scrapy_hitl.fields import declaration_of

    class _Stats:
        def inc_value(self, *args: object, **kwargs: object) -> None:
            pass

        set_value = inc_value

    runtime = types.SimpleNamespace(io=lambda *a, **k: succeed(None), crawler=types.SimpleNamespace(stats=_Stats()),
                                    state=types.SimpleNamespace(db=None), spider=None)
    declaration = declaration_of(StaticFieldsSpider)
    bodies = [(f"http://static.bench.test/static/page/{n}", static_page(n, ns.pages)) for n in range(1, ns.pages + 1)]
    sampling_s = [0.0]
    original = selectorbook.SelectorBook._sample

    def timed(self: selectorbook.SelectorBook, *args: object) -> None:
        start = time.process_time()
        original(self, *args)  # type: ignore[arg-type]
        sampling_s[0] += time.process_time() - start

    selectorbook.SelectorBook._sample = timed  # type: ignore[method-assign]
    rounds: list[dict] = []
    for i in range(ns.pairs + 1):
        row = {}
        for on in (False, True):
            book = selectorbook.SelectorBook(runtime, "static_fields", {}, declaration)  # type: ignore[arg-type]
            book.sampling = on
            responses = [HtmlResponse(url, body=body, encoding="utf-8") for url, body in bodies]
            sampling_s[0] = 0.0
            start = time.process_time()
            for response in responses:
                book.extract(response, None, None)
            row["on" if on else "off"] = (time.process_time() - start) / ns.pages * 1e6
            if on:
                row["sampling_us_per_page"] = sampling_s[0] / ns.pages * 1e6
        if i:  # the first round warms up
            rounds.append(row)
            print(f"  round {i}: extract off {row['off']:.1f} us/page, on {row['on']:.1f} us/page, of which sampling "
                  f"{row['sampling_us_per_page']:.2f} us/page", flush=True)
    sampling = median([r["sampling_us_per_page"] for r in rounds])
    extract = median([r["off"] for r in rounds])
    result = {"params": vars(ns), "rounds": rounds, "sampling_us_per_page": sampling, "extract_us_per_page": extract}
    path = write_result("selector_overhead-inprocess", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT selector_overhead (in process): sampling {sampling:.2f} us per page, hitl_extract {extract:.1f} us "
          f"per page (parse included), median of {len(rounds)} rounds of {ns.pages} pages")
    return 0


SIDES = {"plain": ("static", {}), "off": ("static_fields", {"fingerprints": "0"}),
         "on": ("static_fields", {"fingerprints": "1"})}


def _instructions(side: str, pages: int, base: str, redis_url: str, wd: Path, seeds: int) -> int:
    from overhead import VALGRIND_TIMERS, _callgrind_instructions

    spider, args = SIDES[side]
    out = wd / f"instr-{side}-{pages}.callgrind"
    report = run_crawl(spider, settings={**VALGRIND_TIMERS, **CRAWL_SETTINGS, "ADDONS": ADDON, "DOWNLOAD_TIMEOUT": 600},
                       env=fresh_state_env(redis_url, wd), out_dir=wd, name=f"instr-{side}-{pages}",
                       spider_args={"base": base, "seeds": str(seeds), "pages": str(pages), **args}, timeout=7200,
                       wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"])
    if int(report["stats"].get("item_scraped_count", 0)) != pages:
        raise RuntimeError(f"{side}: expected {pages} items, got {report['stats'].get('item_scraped_count')}")
    count = _callgrind_instructions(out)
    print(f"  {side:<6} {pages:>6} pages: {count / 1e9:.3f} G instructions", flush=True)
    return count


def instructions_main(ns: argparse.Namespace) -> int:
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install -y valgrind)", file=sys.stderr)
        return 2
    small, large = ns.pages, 3 * ns.pages
    counts = {}
    with redis_server() as redis, workdir("selectors-instr") as wd:
        for pages in (small, large):
            with sandbox_server(static_pages=pages) as sandbox:
                for side in SIDES:
                    counts[(side, pages)] = _instructions(side, pages, sandbox.url, redis.url, wd, ns.seeds)
    per_page = {side: (counts[(side, large)] - counts[(side, small)]) / (large - small) for side in SIDES}
    ratio = per_page["on"] / per_page["off"]
    print("marginal instructions per page: " + ", ".join(f"{k} {v / 1e6:.3f} M" for k, v in per_page.items()))
    print(f"declared fields (no fingerprints) vs hand-written selectors: {100 * (per_page['off'] / per_page['plain'] - 1):+.2f}%")
    result = {"params": {"pages": [small, large], "seeds": ns.seeds, "mode": "instructions"},
              "instructions": {f"{s}-{p}": n for (s, p), n in counts.items()}, "per_page": per_page,
              "ratio": ratio, "target": TARGET, "meets_target": ratio <= TARGET}
    path = write_result("selector_overhead-instructions", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT selector_overhead (instructions): per page on/off = {ratio:.4f} "
          f"(target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
