"""Throughput with one crawler host vs two, on the multi-host rig (tests/support/rig.py).

    sudo .venv/bin/python bench/multihost.py [--jobs 8] [--pages 2000] [--rounds 1] [--quick]

The rig: a state namespace (Redis with AOF, PostgreSQL, the sandbox site answering after
``--latency-ms``, as a remote site does) and two crawler-host namespaces. Each side queues the
same ``--jobs`` static-crawl jobs (the rig project's ``pages`` spider: ``/static/page/1..N``, one
item per page, the add-on and its quality gate on, every item stored in PostgreSQL):

- **one host**: `hitl worker` on host a only;
- **two hosts**: `hitl worker` on hosts a and b.

Each worker runs ``--crawls`` crawls at once (HITL_JOB_LIMIT_CRAWLS, 1 by default: the
namespace "hosts" share this machine's cores, and at 2 crawls per host a 2-core machine is
CPU-bound, which real hosts are not; ``--crawls 2`` shows that). Workers are started and
idle before a side's jobs are queued, and stopped after; time = the first job queued -> the
last job finished (the jobs' own timestamps). A round is one host, two hosts, two hosts, one
host (so a machine that slows down weighs on both sides alike); ratio = one host's time / two
hosts' time, summed per round, median over rounds. Target: >= 1.8.

Where the rest went: the mean time of one job on each side (a job slower with two hosts pays
for something shared), and the CPU seconds of each namespace's processes, sampled every
0.5 s (Redis, PostgreSQL, the sandbox, the crawler hosts), and the machine's CPU use: on one
machine the two "hosts" share its cores, which real hosts would not.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.common import median, table, write_result  # noqa: E402

from tests.support.rig import RIG_PROJECT, Rig, _ns_pids, available  # noqa: E402

TARGET = 1.8
CLK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> tuple[str, float]:
    """(command name, CPU seconds so far) of a process; ("", 0) if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return "", 0.0
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return name, (int(fields[11]) + int(fields[12])) / CLK


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


class CpuSampler:
    """CPU seconds per namespace and per kind of process while a side runs. A process that
    exits between two samples loses its last < 0.5 s: an approximation, the same on both sides."""

    def __init__(self, namespaces: dict[str, str]) -> None:
        self.namespaces = namespaces
        self.seen: dict[int, tuple[str, str, float, float]] = {}  # pid -> (ns, name, first, last)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> CpuSampler:
        self.busy0 = machine_busy()
        self._sample()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join()
        self._sample()
        self.busy1 = machine_busy()

    def _loop(self) -> None:
        while not self.stop_event.wait(0.5):
            self._sample()

    def _sample(self) -> None:
        for label, ns in self.namespaces.items():
            for pid in _ns_pids(ns):
                name, cpu = cpu_of(pid)
                if not name:
                    continue
                if pid in self.seen:
                    ns0, name0, first, _ = self.seen[pid]
                    self.seen[pid] = (ns0, name0, first, cpu)
                else:  # new since the side started: all its CPU counts
                    self.seen[pid] = (label, name, 0.0 if self.thread.is_alive() else cpu, cpu)

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for label, name, first, last in self.seen.values():
            if label == "state":
                kind = {"redis-server": "redis", "postgres": "postgresql"}.get(name, "sandbox" if "python" in name
                                                                             else name)
            else:
                kind = "crawler hosts"
            out[kind] = out.get(kind, 0.0) + max(0.0, last - first)
        return out

    def machine_share(self) -> float:
        busy = self.busy1[0] - self.busy0[0]
        total = self.busy1[1] - self.busy0[1]
        return busy / total if total else 0.0


def start_workers(rig: Rig, hosts: list[Any], crawls: int) -> None:
    for host in hosts:
        host.start_worker(queues="crawls", HITL_JOB_LIMIT_CRAWLS=str(crawls), HITL_JOB_HEARTBEAT="2")
    deadline = time.monotonic() + 180
    while True:  # every crawl slot listening
        logs = [w.log() for h in hosts for w in h.workers if w.popen.poll() is None]
        if len(logs) == len(hosts) and all(log.count("Listening on hitl-crawls") >= crawls for log in logs):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start:\n" + "\n".join(log[-2000:] for log in logs))
        time.sleep(0.2)


def stop_workers(hosts: list[Any]) -> None:
    for host in hosts:
        for worker in host.workers:
            if worker.popen.poll() is None:
                worker.popen.send_signal(signal.SIGTERM)
        for worker in host.workers:
            try:
                worker.popen.wait(timeout=60)
            except subprocess.TimeoutExpired:
                host.kill_all()
        host.kill_all()  # anything left in the namespace
        host.workers.clear()


def run_side(rig: Rig, state: Any, hosts: list[Any], ns: argparse.Namespace) -> dict[str, Any]:
    from scrapy_hitl.state import jobs

    start_workers(rig, hosts, ns.crawls)
    namespaces = {"state": rig.state_ns, **{h.name: h.ns for h in rig.hosts}}
    ids = []
    with CpuSampler(namespaces) as sampler:
        for _ in range(ns.jobs):
            created = rig.hitl_json("jobs", "run", "rig", "pages", "-a", f"base={rig.sandbox_url}",
                                    "-a", "section=static", "-a", f"last={ns.pages}",
                                    "-s", f"CONCURRENT_REQUESTS={ns.concurrency}", "-s", "LOG_LEVEL=WARNING")
            ids.append(created["id"])
        while True:
            rows = [jobs.get(state.db, i) for i in ids]
            if all(r["status"] in ("finished", "failed", "cancelled") for r in rows):
                break
            time.sleep(0.5)
    stop_workers(hosts)
    bad = [r for r in rows if r["status"] != "finished"]
    if bad:
        raise RuntimeError(f"jobs did not finish: {[(r['id'], r['status'], r['message']) for r in bad]}")
    parse = _parse_time
    first = min(parse(r["queued_at"]) for r in rows)
    last = max(parse(r["finished_at"]) for r in rows)
    per_job = [parse(r["finished_at"]) - parse(r["started_at"]) for r in rows]
    return {"hosts": len(hosts), "seconds": last - first, "pages": ns.jobs * ns.pages,
            "job_seconds_mean": sum(per_job) / len(per_job),
            "job_hosts": sorted({r["host"] for r in rows}), "cpu_seconds": sampler.by_kind(),
            "machine_busy": sampler.machine_share()}


def _parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--pages", type=int, default=2000, help="pages per job (default 2,000)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of one, two, two, one host(s)")
    parser.add_argument("--crawls", type=int, default=1,
                        help="crawls at once per host (HITL_JOB_LIMIT_CRAWLS; 1: the namespace hosts share "
                             "this machine's cores, and two crawls per host saturate 2 of them)")
    parser.add_argument("--concurrency", type=int, default=8, help="CONCURRENT_REQUESTS of each crawl")
    parser.add_argument("--latency-ms", type=int, default=100, help="the sandbox's answer delay (a remote site)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 jobs of 100 pages, one pair")
    parser.add_argument("--out", help="JSON result file (default bench/results/multihost.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.jobs, ns.pages, ns.rounds = 2, 100, 1
    why = available()
    if why:  # `make bench` runs every script: say so and carry on
        print(f"RESULT multihost: skipped: {why}")
        return 0
    sides: list[dict[str, Any]] = []
    ratios = []
    with Rig(console=False, sandbox_options={"latency_ms": ns.latency_ms}) as rig:
        rig.hitl("projects", "add", str(RIG_PROJECT), "--name", "rig")
        state = rig.state()
        try:
            order = [1, 2] if ns.quick else [1, 2, 2, 1]
            for round_no in range(ns.rounds):
                times = {1: 0.0, 2: 0.0}
                for n in order:
                    side = run_side(rig, state, rig.hosts[:n], ns)
                    side["round"] = round_no + 1
                    sides.append(side)
                    times[n] += side["seconds"]
                    print(f"round {round_no + 1}: {n} host(s): {side['seconds']:.1f} s, "
                          f"{side['pages'] / side['seconds']:.0f} pages/s", flush=True)
                ratios.append(times[1] / times[2])
        finally:
            state.close()
    ratio = median(ratios)
    rows = [[s["round"], s["hosts"], s["seconds"], s["pages"] / s["seconds"], s["job_seconds_mean"],
             s["cpu_seconds"].get("crawler hosts", 0.0), s["cpu_seconds"].get("redis", 0.0),
             s["cpu_seconds"].get("postgresql", 0.0), s["cpu_seconds"].get("sandbox", 0.0),
             f"{s['machine_busy']:.0%}"] for s in sides]
    print(table(["round", "hosts", "seconds", "pages/s", "s per job", "CPU s crawls", "CPU s redis",
                 "CPU s pg", "CPU s sandbox", "machine busy"], rows))
    path = write_result("multihost", {
        "settings": {k: getattr(ns, k) for k in ("jobs", "pages", "rounds", "crawls", "concurrency", "latency_ms")},
        "sides": sides, "ratios": ratios, "ratio": ratio, "target": TARGET}, ns.out)
    print(f"RESULT multihost: {ns.jobs} jobs x {ns.pages} pages: two hosts {ratio:.2f}x one host's throughput "
          f"(target >= {TARGET}); {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
