"""Run one benchmark spider in this (fresh) process and write a JSON report.

    PYTHONPATH=bench python -m benchlib.crawl_runner static --settings '{"CONCURRENT_REQUESTS": 16}' \
        -a base=http://127.0.0.1:PORT --out r.json

The report holds the crawl's final stats (``elapsed_time_seconds`` is measured by Scrapy's
CoreStats from spider_opened to spider_closed, so interpreter start-up and imports are not in
it), the time from the first to the last response, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from scrapy import signals

from benchlib import spiders


class ResponseClock:
    """Monotonic time of the first and the last response, without a stat per response."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.opened: float | None = None
        self.cpu: dict[str, float] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> ResponseClock:
        ext = cls()
        crawler.signals.connect(ext.response_received, signals.response_received)
        crawler.signals.connect(ext.spider_opened, signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signals.spider_closed)
        crawler._bench_clock = ext
        return ext

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_s += time.perf_counter() - self._gc_started

    def spider_opened(self, spider: Any) -> None:
        self.threads_at_open = thread_times()
        self.rss_open_kb = _status_kb("VmRSS")
        self.opened = time.monotonic()
        self.gc_s = 0.0
        gc.callbacks.append(self._gc_callback)
        self.cpu = {"process": time.process_time(), "reactor_thread": time.thread_time(),
                    "gc_collections": sum(s["collections"] for s in gc.get_stats())}

    def spider_closed(self, spider: Any) -> None:
        # CPU seconds between spider_opened and spider_closed: all threads, then the reactor's
        self.cpu = {"process": time.process_time() - self.cpu["process"],
                    "reactor_thread": time.thread_time() - self.cpu["reactor_thread"],
                    "gc_collections": sum(s["collections"] for s in gc.get_stats()) - self.cpu["gc_collections"],
                    "gc_s": self.gc_s}
        gc.callbacks.remove(self._gc_callback)
        self.threads = thread_deltas(self.threads_at_open, thread_times())

    def response_received(self, *args: Any, **kwargs: Any) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        self.last = now


def thread_times() -> dict[int, dict[str, Any]]:
    """Per OS thread of this process: its Python name, CPU seconds and context switches, from
    /proc (where the CPU of a crawl goes besides the reactor, and how often it is taken off a
    core: a thread that hands the GIL back and forth switches a lot)."""
    import os
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, dict[str, Any]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/status") as fh:
                status = dict(line.split(":", 1) for line in fh if ":" in line)
        except OSError:  # the thread ended meanwhile
            continue
        found[int(tid)] = {
            "name": names.get(int(tid), "?"),
            "cpu_s": (int(fields[11]) + int(fields[12])) / tick,  # utime + stime
            "system_s": int(fields[12]) / tick,
            "minor_faults": int(fields[7]),
            "switches": int(status["voluntary_ctxt_switches"]),
            "preempted": int(status["nonvoluntary_ctxt_switches"]),
        }
    return found


def thread_deltas(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """What each thread alive at the close spent since the open (a thread born in between from 0)."""
    rows = []
    for tid, now in after.items():
        was = before.get(tid, {"cpu_s": 0.0, "system_s": 0.0, "minor_faults": 0, "switches": 0, "preempted": 0})
        rows.append({"tid": tid, "name": now["name"], "cpu_s": round(now["cpu_s"] - was["cpu_s"], 3),
                     "system_s": round(now["system_s"] - was["system_s"], 3),
                     "minor_faults": now["minor_faults"] - was["minor_faults"],
                     "switches": now["switches"] - was["switches"],
                     "preempted": now["preempted"] - was["preempted"]})
    return sorted(rows, key=lambda r: -r["cpu_s"])


class GcFreeze:
    """Opt-in (setting BENCH_GC_FREEZE): at spider_opened, collect the young generations and
    ``gc.freeze()`` every object alive, exactly what the add-on does (``scrapy_hitl.runtime.
    _freeze_startup_objects``, ``HITL_GC_FREEZE``). The like-for-like baseline of
    bench/overhead.py: vanilla Scrapy with the same freeze, so the ratio prices the add-on's
    work and not the collector's. Written out here rather than imported, so the baseline
    process does not load scrapy_hitl."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> GcFreeze:
        from scrapy.exceptions import NotConfigured

        if not crawler.settings.getbool("BENCH_GC_FREEZE"):
            raise NotConfigured
        ext = cls()
        crawler.signals.connect(ext.spider_opened, signals.spider_opened)
        return ext

    def spider_opened(self, spider: Any) -> None:
        gc.collect(1)
        gc.freeze()


class HitlProbe:
    """Opt-in (setting BENCH_HITL_PROBE): every 0.25 s, sample the add-on runtime's park
    buffer and whether a write to Redis is in flight. Reads private attributes of
    ``scrapy_hitl.runtime.HitlRuntime`` on purpose: this is a diagnostic, not an API."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.max_buffer = 0
        self.max_stall_s = 0.0
        self._stall_since: float | None = None
        self.loop: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> HitlProbe:
        from scrapy.exceptions import NotConfigured

        if not crawler.settings.getbool("BENCH_HITL_PROBE"):
            raise NotConfigured
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signals.spider_opened)
        crawler._bench_probe = ext
        return ext

    def spider_opened(self, spider: Any) -> None:
        from twisted.internet import task

        self.loop = task.LoopingCall(self.sample)
        self.loop.start(0.25)

    def sample(self) -> None:
        rt = getattr(self.crawler, "_hitl_runtime", None)
        if rt is None:
            return
        self.max_buffer = max(self.max_buffer, len(rt._park_buffer))
        now = time.monotonic()
        if rt._flushing is not None:
            if self._stall_since is None:
                self._stall_since = now
            self.max_stall_s = max(self.max_stall_s, now - self._stall_since)
        else:
            self._stall_since = None

    def report(self) -> dict[str, Any]:
        return {"max_park_buffer": self.max_buffer, "max_write_in_flight_s": self.max_stall_s}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _relative(report: dict[str, float], opened: float | None) -> dict[str, float]:
    """``*_monotonic`` values of the spider's report as seconds after spider_opened."""
    out = {}
    for k, v in report.items():
        if k.endswith("_monotonic") and opened is not None:
            out[k.removesuffix("_monotonic") + "_after_open_s"] = v - opened
        else:
            out[k] = v
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("spider", choices=sorted(spiders.SPIDERS))
    parser.add_argument("--settings", default="{}")
    parser.add_argument("-a", dest="args", action="append", default=[])
    parser.add_argument("--out", required=True)
    ns = parser.parse_args(argv)

    from scrapy.crawler import CrawlerProcess

    settings = json.loads(ns.settings)
    settings.setdefault("EXTENSIONS", {})["benchlib.crawl_runner.ResponseClock"] = 0
    settings["EXTENSIONS"]["benchlib.crawl_runner.HitlProbe"] = 0
    settings["EXTENSIONS"]["benchlib.crawl_runner.GcFreeze"] = 0
    spider_args = dict(a.split("=", 1) for a in ns.args)
    rss_start_kb = _status_kb("VmRSS")

    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spiders.SPIDERS[ns.spider])
    process.crawl(crawler, **spider_args)
    process.start()

    stats = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v))
             for k, v in crawler.stats.get_stats().items()}
    clock: ResponseClock = crawler._bench_clock  # type: ignore[attr-defined]
    report = {
        "stats": stats,
        "first_to_last_response_s": (clock.last - clock.first) if clock.first and clock.last else None,
        "open_to_last_response_s": (clock.last - clock.opened) if clock.opened and clock.last else None,
        "cpu_s": clock.cpu,
        "threads": getattr(clock, "threads", []),
        "rss_start_kb": rss_start_kb,
        "rss_open_kb": getattr(clock, "rss_open_kb", None),
        "peak_rss_kb": _status_kb("VmHWM"),
        "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_end_kb": _status_kb("VmRSS"),
        "gc_frozen_objects": gc.get_freeze_count(),
        "hitl_probe": probe.report() if (probe := getattr(crawler, "_bench_probe", None)) else None,
        "spider_report": _relative(getattr(crawler.spider, "bench_report", {}), clock.opened),
    }
    Path(ns.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
