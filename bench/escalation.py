"""The escalation ladder: how close a crawl that learns its tiers comes to one told them.

    .venv/bin/python bench/escalation.py [--items 500] [--pairs 2] [--js-pages 20] [--memory-pages 1000]
                                         [--refusal-items 500] [--quick]

Four measurements, each a real ``scrapy crawl sandbox`` of the demo project against the
local sandbox site, with the add-on, the system Chromium and a real Redis:

1. **Mixed site** (``-a sections=mixed``): N item pages, 80 % static and 20 % JS-only, chosen
   by a fixed seed (``--mixed-seed``), each page type on its own URL template. Alternating
   pairs: the *ladder* crawl starts from an empty state and learns; the *oracle* crawl is
   told each page's tier in advance (``-a oracle=1`` sets ``meta["hitl_tier"]`` from the
   listing's ``data-tier``). Targets: pages rendered in a browser <= 1.1 x the JS-only
   pages; ladder time <= 1.25 x oracle time (median of the per-pair ratios).
2. **JS-only domain** (``-a sections=js``): one crawl to learn, then a second on the same
   state. Target: static fetches wasted on the second run (every one is wasted: no page
   there renders without JavaScript) <= 5.
3. **Memory** (``-a sections=js`` with details, >= 1,000 browser-tier pages): the peak of
   the summed PSS (proportional set size: each shared page counted once, split between
   the processes sharing it) of the crawler, the Playwright driver and every Chromium
   process, sampled every 0.5 s. Target: < 1.5 GB. The summed RSS, which counts Chromium's
   shared libraries once per process, is reported beside it as an upper bound.

4. **In-page refusals** (``mixed_shop`` spider, ``tests/support/refusal_spiders.py``): the same
   shop with a third template, item pages behind the BotD bot detector
   (``--mixed-guarded-share``): the browser tier's headless Chromium gets "Automation detected"
   written into the page (title kept), only the stealth tier gets the item. 70 % static, 20 %
   JS-only, 10 % guarded by default. Alternating ladder / oracle pairs as in 1; the oracle
   sends each item straight to its tier (static, browser or stealth). Targets: pages rendered
   in a browser (browser + stealth responses) <= 1.1 x the pages that need one (JS-only +
   guarded); ladder time <= 1.25 x oracle time.

Times are Scrapy's ``elapsed_time_seconds`` (spider opened to closed).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from benchlib.common import fresh_state_env, machine, median, redis_server, sandbox_server, table, workdir, write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "projects" / "sandbox"), str(ROOT / "projects" / "demo")]

from tests.support.crawl import Crawl  # noqa: E402  (after the path set-up above)

RENDER_TARGET = 1.1
TIME_TARGET = 1.25
WASTE_TARGET = 5
MEMORY_TARGET_MB = 1536
SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "HITL_STEALTH_DELAY": "0,0",
    "HITL_PAUSE_TIMEOUT": 30,
    "CONCURRENT_REQUESTS": 16,
}


class PeakMemory(threading.Thread):
    """Samples the summed PSS (and RSS) of a process and its descendants until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_pss, self.peak_rss, self.samples = pid, 0, 0, 0
        self._stop_flag = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop_flag.wait(0.5):
            pss = rss = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            for proc in procs:
                try:
                    info = proc.memory_full_info()
                except psutil.Error:
                    continue
                pss += getattr(info, "pss", info.rss)
                rss += info.rss
            self.samples += 1
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_rss = max(self.peak_rss, rss)

    def stop(self) -> tuple[int, int]:
        self._stop_flag.set()
        self.join(10)
        return self.peak_pss, self.peak_rss


REFUSAL_SPIDERS = {"SPIDER_MODULES": ["demo.spiders", "tests.support.refusal_spiders"]}


def crawl(wd: Path, env: dict[str, str], base: str, name: str, args: dict[str, str],
          settings: dict[str, Any] | None = None, sample_rss: bool = False, spider: str = "sandbox") -> dict[str, Any]:
    run = Crawl(wd, env, spider=spider, args={"base": base, **args},
                settings={**SETTINGS, **(settings or {})}, name=name)
    sampler = PeakMemory(run.proc.pid) if sample_rss else None
    if sampler:
        sampler.start()
    result = run.wait(timeout=1800)
    peak_pss, peak_rss = sampler.stop() if sampler else (0, 0)
    if result.returncode != 0:
        raise RuntimeError(f"crawl {name} failed:\n{result.log[-3000:]}")
    st = result.stats
    browser = int(st.get("hitl/tier/browser/responses", 0)) + int(st.get("hitl/tier/stealth/responses", 0))
    return {
        "name": name,
        "items": len(result.items),
        "elapsed_s": float(st["elapsed_time_seconds"]),
        "responses": int(st.get("response_received_count", 0)),
        "static_requests": int(st.get("hitl/tier/static/requests", 0)),
        "browser_rendered": browser,
        "stealth_rendered": int(st.get("hitl/tier/stealth/responses", 0)),
        "escalations": int(st.get("hitl/escalations/static/browser", 0)),
        "escalations_to_stealth": int(st.get("hitl/escalations/browser/stealth", 0)),
        "mispredictions": int(st.get("hitl/tier/mispredictions", 0)),
        "rechecks": int(st.get("hitl/tier/rechecks", 0)),
        "contexts_recycled": int(st.get("hitl/browser/contexts_recycled", 0)),
        "peak_pss_mb": peak_pss / 2**20,
        "peak_rss_sum_mb": peak_rss / 2**20,
        "finish_reason": st.get("finish_reason"),
    }


def mixed(redis_url: str, items: int, share: float, seed: int, pairs: int) -> dict[str, Any]:
    js_pages = round(items * share)
    runs = []
    with sandbox_server(mixed_items=items, mixed_js_share=share, mixed_seed=seed) as site, workdir("esc-mixed") as wd:
        for i in range(pairs):
            for side in ("ladder", "oracle"):
                env = fresh_state_env(redis_url, wd / f"{side}-{i}")
                args = {"sections": "mixed", **({"oracle": "1"} if side == "oracle" else {})}
                r = crawl(wd, env, site.url, f"mixed-{side}-{i}", args)
                r["side"] = side
                runs.append(r)
    ladder = [r for r in runs if r["side"] == "ladder"]
    oracle = [r for r in runs if r["side"] == "oracle"]
    time_ratios = [a["elapsed_s"] / b["elapsed_s"] for a, b in zip(ladder, oracle)]
    render_ratio = median([r["browser_rendered"] / js_pages for r in ladder])
    print(table(["run", "items", "elapsed s", "rendered", "static req", "escalations", "mispredictions", "rechecks"],
                [[r["name"], r["items"], r["elapsed_s"], r["browser_rendered"], r["static_requests"],
                  r["escalations"], r["mispredictions"], r["rechecks"]] for r in runs]))
    return {"items": items, "js_pages": js_pages, "runs": runs, "time_ratios": time_ratios,
            "time_ratio": median(time_ratios), "render_ratio": render_ratio}


def refusals(redis_url: str, items: int, share: float, guarded_share: float, seed: int,
             pairs: int) -> dict[str, Any]:
    from sandbox import mixed as shop

    tiers = [shop.tier_of(k, items, share, guarded_share, seed) for k in range(1, items + 1)]
    needing = {"browser": tiers.count("browser"), "stealth": tiers.count("stealth")}
    runs = []
    with sandbox_server(mixed_items=items, mixed_js_share=share, mixed_guarded_share=guarded_share,
                        mixed_seed=seed) as site, workdir("esc-refusals") as wd:
        for i in range(pairs):
            for side in ("ladder", "oracle"):
                env = fresh_state_env(redis_url, wd / f"{side}-{i}")
                args = {"oracle": "1"} if side == "oracle" else {}
                r = crawl(wd, env, site.url, f"refusals-{side}-{i}", args, settings=REFUSAL_SPIDERS, spider="mixed_shop")
                r["side"] = side
                runs.append(r)
    ladder = [r for r in runs if r["side"] == "ladder"]
    oracle = [r for r in runs if r["side"] == "oracle"]
    need = needing["browser"] + needing["stealth"]
    time_ratios = [a["elapsed_s"] / b["elapsed_s"] for a, b in zip(ladder, oracle)]
    print(table(["run", "items", "elapsed s", "rendered", "of which stealth", "static req", "to browser",
                 "to stealth", "mispredictions", "rechecks"],
                [[r["name"], r["items"], r["elapsed_s"], r["browser_rendered"], r["stealth_rendered"],
                  r["static_requests"], r["escalations"], r["escalations_to_stealth"], r["mispredictions"],
                  r["rechecks"]] for r in runs]))
    return {"items": items, "js_pages": needing["browser"], "guarded_pages": needing["stealth"], "runs": runs,
            "time_ratios": time_ratios, "time_ratio": median(time_ratios),
            "render_ratio": median([r["browser_rendered"] / need for r in ladder])}


def js_domain(redis_url: str, pages: int, sample_rss: bool = False) -> dict[str, Any]:
    with sandbox_server(pages=pages) as site, workdir("esc-js") as wd:
        env = fresh_state_env(redis_url, wd)
        first = crawl(wd, env, site.url, "js-learn", {"sections": "js", "details": "1"})
        second = crawl(wd, env, site.url, "js-learned", {"sections": "js", "details": "1"}, sample_rss=sample_rss)
    print(table(["run", "items", "elapsed s", "rendered", "static req (wasted)", "rechecks"],
                [[r["name"], r["items"], r["elapsed_s"], r["browser_rendered"], r["static_requests"], r["rechecks"]]
                 for r in (first, second)]))
    return {"pages": pages, "learn": first, "learned": second, "wasted": second["static_requests"]}


def memory(redis_url: str, pages: int) -> dict[str, Any]:
    listing = max(1, round(pages / 11))  # each listing page links 10 detail pages
    with sandbox_server(pages=listing) as site, workdir("esc-mem") as wd:
        env = fresh_state_env(redis_url, wd)
        r = crawl(wd, env, site.url, "memory", {"sections": "js", "details": "1"}, sample_rss=True)
    print(table(["run", "browser pages", "elapsed s", "contexts recycled", "peak PSS MB", "peak RSS sum MB"],
                [[r["name"], r["browser_rendered"], r["elapsed_s"], r["contexts_recycled"], r["peak_pss_mb"],
                  r["peak_rss_sum_mb"]]]))
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=500, help="mixed-site item pages (default 500)")
    parser.add_argument("--share", type=float, default=0.2, help="JS-only share of them (default 0.2)")
    parser.add_argument("--mixed-seed", type=int, default=7, help="which pages are JS-only (default 7)")
    parser.add_argument("--pairs", type=int, default=2, help="(ladder, oracle) pairs (default 2)")
    parser.add_argument("--js-pages", type=int, default=10, help="JS-only listing pages, 10 details each (default 10)")
    parser.add_argument("--memory-pages", type=int, default=1100, help="browser-tier pages for the memory run")
    parser.add_argument("--refusal-items", type=int, help="shop items of the refusals section (default: --items)")
    parser.add_argument("--refusal-guarded-share", type=float, default=0.1,
                        help="share of them behind the BotD bot detector (default 0.1; JS-only: --share)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--out", help="JSON result file (default bench/results/escalation.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.items, ns.pairs, ns.js_pages = 25, 1, 1
    ns.refusal_items = ns.refusal_items or ns.items
    started = time.monotonic()
    with redis_server() as redis:
        mixed_result = mixed(redis.url, ns.items, ns.share, ns.mixed_seed, ns.pairs)
        refusal_result = refusals(redis.url, ns.refusal_items, ns.share, ns.refusal_guarded_share, ns.mixed_seed,
                                  ns.pairs)
        js_result = js_domain(redis.url, ns.js_pages, sample_rss=ns.quick)
        # (a smoke run samples memory on the learned JS crawl rather than a crawl of its own)
        memory_result = js_result["learned"] if ns.quick else memory(redis.url, ns.memory_pages)
    met = {
        "render": mixed_result["render_ratio"] <= RENDER_TARGET,
        "time": mixed_result["time_ratio"] <= TIME_TARGET,
        "refusal_render": refusal_result["render_ratio"] <= RENDER_TARGET,
        "refusal_time": refusal_result["time_ratio"] <= TIME_TARGET,
        "waste": js_result["wasted"] <= WASTE_TARGET,
        "memory": memory_result["peak_pss_mb"] < MEMORY_TARGET_MB,
    }
    write_result("escalation", {"params": vars(ns), "machine": machine(), "mixed": mixed_result,
                                "refusals": refusal_result,
                                "js_domain": js_result, "memory": memory_result, "met": met,
                                "wall_s": time.monotonic() - started}, ns.out)
    print(f"RESULT escalation: rendered/js-only {mixed_result['render_ratio']:.3f} (<= {RENDER_TARGET}), "
          f"time ladder/oracle {mixed_result['time_ratio']:.3f} (<= {TIME_TARGET}), "
          f"refusals: rendered/needing a browser {refusal_result['render_ratio']:.3f} (<= {RENDER_TARGET}), "
          f"time ladder/oracle {refusal_result['time_ratio']:.3f} (<= {TIME_TARGET}), "
          f"wasted static fetches {js_result['wasted']} (<= {WASTE_TARGET}), "
          f"peak memory (PSS) {memory_result['peak_pss_mb']:.0f} MB over {memory_result['browser_rendered']} browser pages "
          f"(< {MEMORY_TARGET_MB}); targets {'met' if all(met.values()) else 'NOT met: ' + ', '.join(k for k, v in met.items() if not v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
