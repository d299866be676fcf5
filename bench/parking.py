"""Parking: park and resume requests through the real ``ParkingLot``, and the memory they cost.

    .venv/bin/python bench/parking.py [--requests 10000] [--rounds 5] [--memory-requests 100000]
                                      [--memory-pairs 2] [--quick]

1. Throughput. ``--requests`` real ``scrapy.Request`` objects (spider-method callback,
   cb_kwargs, meta, the headers Scrapy's middlewares add before ours) are serialized with
   ``request_to_json`` and parked with ``ParkingLot.park`` in batches of 500, then claimed back
   with ``ParkingLot.claim(..., 500, ...)`` and acknowledged with ``ParkingLot.ack`` batch by
   batch, as the crawler does. Baseline, side by side in every round: plain ``RPUSH`` of the
   same payload bytes (500 per command) and ``LPOP key 500``. Target >= 2,000 requests/s each
   way; the ratios say what the bookkeeping (order, dedup, claims) costs over a bare list.
   Serialization and deserialization are timed apart (they run on the crawler's reactor).
2. Memory, fingerprints. With ``--memory-requests`` parked, a fresh process loads them with
   ``ParkingLot.fingerprints`` (what ``HitlRuntime`` keeps per parked request, in
   ``parked_fps``); its RSS growth and tracemalloc's retained/peak bytes. Target < 50 MB.
3. Memory, real crawl. A spider yields ``--memory-requests`` requests to one domain. "paused":
   the domain has an open intervention, so every request is parked; "dropped" (baseline):
   the domain is not paused and a downloader middleware ignores its requests before the
   add-on sees them. Same add-on, same spider, alternating; peak RSS (VmHWM) of each crawl
   process. The difference is what parking 100,000 requests costs the crawler.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchlib.common import (
    ADDON, BENCH_DIR, CRAWL_SETTINGS, fresh_state_env, median, open_state, redis_server,
    run_crawl, table, workdir, write_result,
)

SPIDER = "flood"
DOMAIN = "shop.bench.test"
BATCH = 500  # HITL_RESUME_BATCH's default; the crawler's flushes are of this order too
TARGET_RPS = 2000
TARGET_MB = 50
HEADERS = {  # what DefaultHeadersMiddleware (400) and UserAgentMiddleware (500) set before us
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en",
    "User-Agent": "Scrapy/2.19.0 (+https://scrapy.org)",
}


# --- requests and entries ----------------------------------------------------------------------
def make_spider() -> Any:
    from benchlib import spiders

    return spiders.FloodSpider(domain=DOMAIN, count="0")


def make_requests(spider: Any, n: int, start: int = 1) -> list[Any]:
    import scrapy

    return [
        scrapy.Request(
            f"http://{DOMAIN}/catalog/page/{i}?sort=price&view=list",
            callback=spider.parse_page, cb_kwargs={"page": i},
            meta={"category": "catalog", "hitl_expect": "div.product", "download_slot": DOMAIN,
                  "depth": 3},
            headers={**HEADERS, "Referer": f"http://{DOMAIN}/catalog/page/{max(1, i - 1)}"},
        )
        for i in range(start, start + n)
    ]


def make_entries(spider: Any, requests: list[Any], run_id: str,
                 timings: dict[str, float] | None = None) -> list[Any]:
    """What ``HitlRuntime.park`` does per request: fingerprint, serialize, ParkEntry.
    (In a crawl the fingerprint is usually cached already: the dupefilter computed it.)"""
    from scrapy.utils.request import RequestFingerprinter

    from scrapy_hitl.state.parking import ParkEntry
    from scrapy_hitl.state.serialization import request_to_json

    fingerprint = RequestFingerprinter().fingerprint
    t0 = time.perf_counter()
    fps = [fingerprint(r).hex() for r in requests]
    t1 = time.perf_counter()
    now = time.time()
    entries = [
        ParkEntry.build(domain=DOMAIN, fingerprint=fp, request=request_to_json(r, spider),
                  reason="domain_paused", run_id=run_id, parked_at=now)
        for r, fp in zip(requests, fps)
    ]
    if timings is not None:
        timings["fingerprint_s"] = t1 - t0
        timings["serialize_s"] = time.perf_counter() - t1
    return entries


def batches(seq: list[Any], size: int = BATCH) -> list[list[Any]]:
    return [seq[i:i + size] for i in range(0, len(seq), size)]


# --- 1. throughput -------------------------------------------------------------------------------
def throughput_round(state: Any, spider: Any, n: int, i: int) -> dict[str, float]:
    from scrapy_hitl.state.serialization import request_from_json

    state.redis.flushall()
    lot, client = state.parking, state.redis
    requests = make_requests(spider, n, start=1 + i * n)  # new URLs each round

    timings: dict[str, float] = {}
    entries = make_entries(spider, requests, run_id=f"bench-{i}", timings=timings)
    payloads = [e.payload.encode() for e in entries]

    out: dict[str, float] = {"fingerprint_rps": n / timings["fingerprint_s"],
                             "serialize_rps": n / timings["serialize_s"]}
    key = "bench:raw"

    # A: raw RPUSH, B: ParkingLot.park
    t = time.perf_counter()
    for chunk in batches(payloads):
        client.rpush(key, *chunk)
    out["raw_push_rps"] = n / (time.perf_counter() - t)

    t = time.perf_counter()
    parked = 0
    for chunk in batches(entries):
        parked += sum(1 for pid in lot.park(SPIDER, chunk) if pid)
    out["park_rps"] = n / (time.perf_counter() - t)
    if parked != n:
        raise RuntimeError(f"parked {parked} of {n}")

    # A: raw LPOP count, B: claim + ack
    t = time.perf_counter()
    popped = 0
    while True:
        got = client.lpop(key, BATCH)
        if not got:
            break
        popped += len(got)
    out["raw_pop_rps"] = n / (time.perf_counter() - t)

    t = time.perf_counter()
    claimed_all = []
    while True:
        claimed = lot.claim(SPIDER, DOMAIN, BATCH, f"bench-{i}")
        if not claimed:
            break
        lot.ack(SPIDER, [c.park_id for c in claimed])
        claimed_all.extend(claimed)
    out["claim_ack_rps"] = n / (time.perf_counter() - t)
    if popped != n or len(claimed_all) != n:
        raise RuntimeError(f"popped {popped}, claimed {len(claimed_all)} of {n}")
    if [c.request["cb_kwargs"]["page"] for c in claimed_all] != [r.cb_kwargs["page"] for r in requests]:
        raise RuntimeError("claimed requests came back out of order")

    t = time.perf_counter()
    for c in claimed_all:
        request_from_json(c.request, spider)
    out["deserialize_rps"] = n / (time.perf_counter() - t)
    out["payload_bytes_median"] = median([len(p) for p in payloads])
    # What may stay: the id sequence and the (lazily cleaned) index of parked pairs.
    left = {k.decode() for k in client.keys("*")} - {"hitl:seq", "hitl:parked_index"}
    if left:
        raise RuntimeError(f"keys left in Redis after ack: {sorted(left)}")
    return out


# --- 2. fingerprint memory, in a fresh process ------------------------------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def fp_child(redis_url: str) -> int:
    """Child process: RSS and tracemalloc around ``ParkingLot.fingerprints``; prints JSON."""
    import redis

    from scrapy_hitl.state.parking import ParkingLot

    lot = ParkingLot(redis.Redis.from_url(redis_url))
    lot.client.ping()
    gc.collect()
    rss0, hwm0 = _status_kb("VmRSS"), _status_kb("VmHWM")
    t = time.perf_counter()
    fps = lot.fingerprints(SPIDER)
    load_s = time.perf_counter() - t
    gc.collect()
    rss1, hwm1 = _status_kb("VmRSS"), _status_kb("VmHWM")
    deep = sys.getsizeof(fps) + sum(sys.getsizeof(f) for f in fps)
    n = len(fps)
    del fps
    gc.collect()
    tracemalloc.start()
    fps = lot.fingerprints(SPIDER)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({
        "count": n, "load_s": load_s,
        "rss_growth_mb": (rss1 - rss0) / 1024, "peak_rss_growth_mb": (hwm1 - max(hwm0, rss0)) / 1024,
        "set_deep_size_mb": deep / 2**20,
        "tracemalloc_retained_mb": current / 2**20, "tracemalloc_peak_mb": peak / 2**20,
        "retained_bytes_per_fp": current / max(1, len(fps)),
    }))
    return 0


def fingerprint_memory(redis_url: str, spider: Any, n: int) -> dict[str, Any]:
    import redis

    from scrapy_hitl.state.parking import ParkingLot

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    lot = ParkingLot(client)
    mem0 = int(client.info("memory")["used_memory"])
    t = time.perf_counter()
    for start in range(1, n + 1, 10_000):
        chunk = make_entries(spider, make_requests(spider, min(10_000, n + 1 - start), start), "bench")
        for b in batches(chunk):
            lot.park(SPIDER, b)
    fill_s = time.perf_counter() - t
    redis_mb = (int(client.info("memory")["used_memory"]) - mem0) / 2**20
    out = subprocess.run([sys.executable, str(BENCH_DIR / "parking.py"), "--fp-child", redis_url],
                         capture_output=True, check=True, env={**os.environ}, timeout=300)
    data = json.loads(out.stdout.decode().strip().splitlines()[-1])
    data.update({"parked": n, "fill_s": fill_s, "redis_used_memory_mb": redis_mb,
                 "redis_bytes_per_request": redis_mb * 2**20 / n})
    client.flushall()
    return data


# --- 3. a real crawl: paused (parks everything) vs dropped --------------------------------------------
class RedisStallProbe(threading.Thread):
    """PING Redis every 10 ms from this process; the slowest answer says whether Redis itself
    stalled (an AOF rewrite or fsync, say) while the crawler was writing to it."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(daemon=True, name="redis-stall-probe")
        import redis

        self.client = redis.Redis.from_url(redis_url, socket_timeout=60)
        self.stop_event = threading.Event()
        self.max_ms = 0.0

    def run(self) -> None:
        while not self.stop_event.wait(0.01):
            t = time.perf_counter()
            try:
                self.client.ping()
            except Exception:  # noqa: BLE001 - a failed ping is a stall too; keep probing
                pass
            self.max_ms = max(self.max_ms, (time.perf_counter() - t) * 1000)

    def stop(self) -> float:
        self.stop_event.set()
        self.join(5)
        self.client.close()
        return self.max_ms


def _redis_persistence(client: Any) -> dict[str, Any]:
    info = {**client.info("persistence"), **client.info("stats")}
    return {k: info.get(k) for k in ("aof_current_size", "aof_last_rewrite_time_sec", "total_forks")}


def crawl_memory(redis_url: str, wd: Path, n: int, pairs: int) -> list[dict[str, Any]]:
    from scrapy_hitl.state import interventions

    import redis

    settings = {**CRAWL_SETTINGS, "ADDONS": ADDON, "HITL_PAUSE_TIMEOUT": 1, "BENCH_HITL_PROBE": True,
                "DOWNLOADER_MIDDLEWARES": {"benchlib.spiders.DropDomainMiddleware": 530}}
    client = redis.Redis.from_url(redis_url)
    runs = []
    for i in range(pairs):
        for mode in ("dropped", "paused"):
            env = fresh_state_env(redis_url, wd)
            s = dict(settings)
            if mode == "paused":
                state = open_state(env)
                try:
                    interventions.open_or_update(state, type="manual_access", reason="bench",
                                                 domain=DOMAIN, spider=SPIDER)
                finally:
                    state.close()
            else:
                s["BENCH_DROP_DOMAIN"] = DOMAIN
            before = _redis_persistence(client)
            probe = RedisStallProbe(redis_url)
            probe.start()
            try:
                report = run_crawl(SPIDER, settings=s, env=env, out_dir=wd, name=f"mem-{mode}-{i}",
                                   spider_args={"domain": DOMAIN, "count": n})
            finally:
                redis_max_ping_ms = probe.stop()
            after = _redis_persistence(client)
            st = report["stats"]
            state = open_state(env)
            try:
                in_redis = state.parking.count(SPIDER, DOMAIN)
            finally:
                state.close()
            handled = int(st.get("hitl/parked", 0)) + int(st.get("bench/dropped", 0))
            elapsed = float(st["elapsed_time_seconds"])
            # Not elapsed: a paused crawl then waits HITL_PAUSE_TIMEOUT (+ the engine's 5 s
            # idle heartbeat) for a human before it closes.
            busy = report["spider_report"].get("start_exhausted_after_open_s") or elapsed
            r = {
                "mode": mode, "requests": n, "handled": handled, "parked_in_redis": in_redis,
                "elapsed_s": elapsed, "requests_s": busy, "requests_per_s": handled / busy,
                "finish_reason": st.get("finish_reason"),
                "peak_rss_mb": report["peak_rss_kb"] / 1024, "rss_start_mb": report["rss_start_kb"] / 1024,
                "rss_end_mb": report["rss_end_kb"] / 1024, "log_errors": report["log_errors"],
                "max_park_buffer": (report["hitl_probe"] or {}).get("max_park_buffer"),
                "max_write_in_flight_s": (report["hitl_probe"] or {}).get("max_write_in_flight_s"),
                "redis_max_ping_ms": redis_max_ping_ms,
                "redis_forks": (after["total_forks"] or 0) - (before["total_forks"] or 0),
                "redis_aof_size_mb": (after["aof_current_size"] or 0) / 2**20,
            }
            runs.append(r)
            print(f"  memory pair {i + 1}/{pairs} {mode:7s}: {handled:,} requests in {busy:.1f}s, "
                  f"peak RSS {r['peak_rss_mb']:.1f} MB, parked in Redis {in_redis:,}; park buffer max "
                  f"{r['max_park_buffer']:,}, Redis max PING {redis_max_ping_ms:.0f} ms, "
                  f"{r['redis_forks']} fork(s)", flush=True)
            if handled != n or (mode == "paused" and in_redis != n) or r["log_errors"]:
                print(f"  WARNING: {mode}: handled {handled}, in Redis {in_redis}, expected {n}; "
                      f"errors: {r['log_errors'][:3]}", flush=True)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000, help="requests per throughput round")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds (A/B each)")
    parser.add_argument("--memory-requests", type=int, default=100_000, help="parked for the memory runs")
    parser.add_argument("--memory-pairs", type=int, default=2, help="(dropped, paused) crawl pairs")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, one of each")
    parser.add_argument("--fp-child", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="JSON result file (default bench/results/parking.json)")
    ns = parser.parse_args(argv)
    if ns.fp_child:
        return fp_child(ns.fp_child)
    if ns.quick:
        ns.requests, ns.rounds, ns.memory_requests, ns.memory_pairs = 2000, 1, 3000, 1

    spider = make_spider()
    with redis_server() as redis, workdir("parking") as wd:
        state = open_state(fresh_state_env(redis.url, wd))
        rounds = []
        for i in range(ns.rounds):
            r = throughput_round(state, spider, ns.requests, i)
            rounds.append(r)
            print(f"  round {i + 1}/{ns.rounds}: park {r['park_rps']:,.0f}/s (raw RPUSH {r['raw_push_rps']:,.0f}/s), "
                  f"claim+ack {r['claim_ack_rps']:,.0f}/s (raw LPOP {r['raw_pop_rps']:,.0f}/s)", flush=True)
        state.close()
        fp = fingerprint_memory(redis.url, spider, ns.memory_requests)
        print(f"  fingerprints: {fp['count']:,} loaded, RSS +{fp['rss_growth_mb']:.1f} MB", flush=True)
        crawl_runs = crawl_memory(redis.url, wd, ns.memory_requests, ns.memory_pairs)

    med = {k: median([r[k] for r in rounds]) for k in rounds[0]}
    park_ratio = med["park_rps"] / med["raw_push_rps"]
    claim_ratio = med["claim_ack_rps"] / med["raw_pop_rps"]
    print()
    print(f"Throughput, {ns.requests:,} requests x {ns.rounds} rounds (medians), payload "
          f"{med['payload_bytes_median']:.0f} bytes:")
    print(table(["direction", "ParkingLot req/s", "raw Redis req/s", "ratio", "target req/s"], [
        ["park (RPUSH)", med["park_rps"], med["raw_push_rps"], park_ratio, TARGET_RPS],
        ["claim+ack (LPOP)", med["claim_ack_rps"], med["raw_pop_rps"], claim_ratio, TARGET_RPS],
        ["request_to_json (reactor)", med["serialize_rps"], "-", "-", "-"],
        ["fingerprint, uncached", med["fingerprint_rps"], "-", "-", "-"],
        ["request_from_json", med["deserialize_rps"], "-", "-", "-"],
    ]))
    print()
    print(f"Memory, {ns.memory_requests:,} parked:")
    print(table(["measure", "MB"], [
        ["ParkingLot.fingerprints: RSS growth", fp["rss_growth_mb"]],
        ["ParkingLot.fingerprints: tracemalloc retained", fp["tracemalloc_retained_mb"]],
        ["ParkingLot.fingerprints: tracemalloc peak", fp["tracemalloc_peak_mb"]],
        ["Redis used_memory for the parked requests", fp["redis_used_memory_mb"]],
    ]))
    dropped = [r for r in crawl_runs if r["mode"] == "dropped"]
    paused = [r for r in crawl_runs if r["mode"] == "paused"]
    crawl_delta = median([r["peak_rss_mb"] for r in paused]) - median([r["peak_rss_mb"] for r in dropped])
    print()
    print(table(["crawl (medians)", "n", "requests/s", "requests s", "peak RSS MB", "end RSS MB",
                 "max park buffer", "max Redis PING ms"], [
        [f"{m} ({len(g)} runs)", median([r["handled"] for r in g]), median([r["requests_per_s"] for r in g]),
         median([r["requests_s"] for r in g]), median([r["peak_rss_mb"] for r in g]),
         median([r["rss_end_mb"] for r in g]), max(r["max_park_buffer"] or 0 for r in g),
         max(r["redis_max_ping_ms"] for r in g)]
        for m, g in (("dropped (baseline)", dropped), ("paused (parks all)", paused))
    ]))
    print(f"crawl peak RSS, paused - dropped: {crawl_delta:+.1f} MB")

    ok = (med["park_rps"] >= TARGET_RPS and med["claim_ack_rps"] >= TARGET_RPS
          and fp["rss_growth_mb"] < TARGET_MB and crawl_delta < TARGET_MB)
    result = {
        "params": {"requests": ns.requests, "rounds": ns.rounds, "batch": BATCH,
                   "memory_requests": ns.memory_requests, "memory_pairs": ns.memory_pairs, "quick": ns.quick},
        "rounds": rounds, "medians": med,
        "park_rps": med["park_rps"], "claim_ack_rps": med["claim_ack_rps"],
        "park_ratio_to_raw": park_ratio, "claim_ack_ratio_to_raw": claim_ratio,
        "fingerprints": fp, "crawl_runs": crawl_runs, "crawl_peak_rss_delta_mb": crawl_delta,
        "targets": {"rps": TARGET_RPS, "memory_mb": TARGET_MB}, "meets_targets": ok,
    }
    path = write_result("parking", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT parking: park {med['park_rps']:,.0f} req/s ({park_ratio:.2f}x raw RPUSH), "
          f"claim+ack {med['claim_ack_rps']:,.0f} req/s ({claim_ratio:.2f}x raw LPOP); "
          f"{ns.memory_requests:,} fingerprints +{fp['rss_growth_mb']:.1f} MB RSS, "
          f"crawl peak RSS paused-dropped {crawl_delta:+.1f} MB "
          f"(targets >= {TARGET_RPS}/s, < {TARGET_MB} MB: {'met' if ok else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
