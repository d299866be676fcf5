"""Export speed and memory: ``hitl export`` of a 100,000-item run to CSV and to XLSX.

    .venv/bin/python bench/export.py [--items 100000] [--reps 2] [--quick]

A fresh SQLite state gets one run with ``--items`` scored items, stored through
``state.items.record`` in batches as the crawler stores them (every item exportable: delivered,
or approved with a second version). Each item has 10 fields, nested ones included (a dict of
dicts, a list), so CSV and XLSX flatten to 13 columns. Each export is the real command,
``hitl export RUN --format F -o FILE``, in its own process: the time is
its wall clock (start-up included) and the memory its peak RSS (VmHWM, read at its exit).
Baseline, in the same session: a process that only streams the run's items out of the database
(``iter_export``, JSON parsed), the database's share of every export. Formats alternate
(read, csv, xlsx, read, csv, xlsx, ...). Targets: CSV and XLSX each <= 15 s and < 300 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from benchlib.common import (
    DEMO_PROJECT, ROOT, fresh_state_env, median, open_state, redis_server, table, workdir, write_result,
)

TIME_TARGET_S = 15.0
RSS_TARGET_MB = 300.0
# The peak RSS is the process's own VmHWM, printed at exit: wait4's ru_maxrss would include
# the RSS of this (forking) benchmark process, which Linux carries over exec.
REPORT_PEAK = (
    "import atexit, sys\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('BENCH_VMHWM_KB=' + line.split()[1] + '\\n')\n"
    "atexit.register(_peak)\n"
)
EXPORT = REPORT_PEAK + (
    "import runpy\n"
    "sys.argv = ['hitl'] + sys.argv[1:]\n"
    "runpy.run_module('hitl_console.cli', run_name='__main__', alter_sys=True)\n"
)
READ_ONLY = REPORT_PEAK + (
    "from scrapy_hitl.config import StateConfig\n"
    "from scrapy_hitl.state.db import Database\n"
    "from scrapy_hitl.state.items import iter_export\n"
    "db = Database(StateConfig.from_env().database_url)\n"
    "print(sum(1 for _ in iter_export(db, sys.argv[1])))\n"
)


def item(n: int) -> dict:
    return {
        "sku": f"SKU-{n:06d}",
        "name": f"Walnut Teapot #{n}",
        "price": f"£{10 + n % 90}.{n % 100:02d}",
        "in_stock": n % 9 != 0,
        "rating": round(1 + (n % 40) / 10, 1),
        "url": f"http://shop.example.com/catalog/item/{n}",
        "tags": ["kitchen", "walnut", f"batch-{n % 17}"],
        "specs": {"weight": {"value": 0.4 + (n % 7) / 10, "unit": "kg"}, "color": ("red", "oak", "ink")[n % 3]},
        "seller": {"name": "Sandbox Shop", "rating": 4.7},
        "description": "A walnut teapot from the sandbox shop, hand finished, catalogue number " + str(n),
    }


def seed(env: dict[str, str], count: int) -> str:
    from scrapy_hitl.state import items, runs

    state = open_state(env)
    try:
        run_id = runs.new_run_id()
        runs.create_run(state.db, run_id, "bench", {}, str(ROOT))
        batch = 5000
        for start in range(0, count, batch):
            rows = [{"run_id": run_id, "spider": "bench", "item_type": "Product", "url": f"http://shop/{n}",
                     "status": "delivered" if n % 50 else "pending_review", "score": 0.95,
                     "breakdown": {"completeness": 1.0}, "failing": [], "data": item(n)}
                    for n in range(start, min(count, start + batch))]
            items.record(state.db, rows)
        held = items.list_items(state.db, run_id=run_id, status="pending_review", limit=count, with_data=False)
        for h in held:  # reviewed: the export carries the approved, edited version
            items.approve(state, h["id"], actor="bench", changes={"price": "£1.00"})
        assert sum(1 for _ in items.iter_export(state.db, run_id)) == count
        return run_id
    finally:
        state.close()


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> dict:
    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(DEMO_PROJECT)])}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({os.waitstatus_to_exitcode(status)}):\n{err[-3000:]}")
    peak_kb = [int(line.split("=", 1)[1]) for line in err.splitlines() if line.startswith("BENCH_VMHWM_KB=")]
    return {"elapsed_s": elapsed, "peak_rss_mb": peak_kb[-1] / 1024 if peak_kb else float("nan"),
            "cpu_s": usage.ru_utime + usage.ru_stime, "stdout": out.strip()[-200:],
            "stderr": "\n".join(line for line in err.splitlines() if not line.startswith("BENCH_"))[-200:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="items in the run (default 100000)")
    parser.add_argument("--reps", type=int, default=2, help="rounds of (read, csv, xlsx) (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3,000 items, 1 round")
    parser.add_argument("--out", help="JSON result file (default bench/results/export.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.items, ns.reps = 3000, 1

    runs: list[dict] = []
    with redis_server() as redis, workdir("export") as wd:
        env = fresh_state_env(redis.url, wd)
        t = time.perf_counter()
        run_id = seed(env, ns.items)
        print(f"  seeded {ns.items:,} items in {time.perf_counter() - t:.1f}s", flush=True)
        for rep in range(ns.reps):
            for fmt in ("read", "csv", "xlsx"):
                if fmt == "read":
                    cmd = [sys.executable, "-c", READ_ONLY, run_id]
                    path = None
                else:
                    path = wd / f"export-{rep}.{fmt}"
                    cmd = [sys.executable, "-c", EXPORT, "export", run_id, "--format", fmt, "-o", str(path)]
                r = {"format": fmt, "rep": rep, **measure(cmd, env, wd)}
                if path is not None:
                    r["file_mb"] = path.stat().st_size / 1e6
                    path.unlink()
                runs.append(r)
                print(f"  round {rep + 1}/{ns.reps} {fmt:4} {r['elapsed_s']:6.2f}s  peak RSS {r['peak_rss_mb']:6.1f} MB"
                      + (f"  {r['file_mb']:.1f} MB file" if path is not None else ""), flush=True)

    summary = {}
    rows = []
    for fmt in ("read", "csv", "xlsx"):
        group = [r for r in runs if r["format"] == fmt]
        summary[fmt] = {"elapsed_s": median([r["elapsed_s"] for r in group]),
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in group),
                        "cpu_s": median([r["cpu_s"] for r in group])}
        rows.append([fmt if fmt != "read" else "read only (baseline)", len(group), summary[fmt]["elapsed_s"],
                     summary[fmt]["cpu_s"], summary[fmt]["peak_rss_mb"],
                     median([r.get("file_mb", 0.0) for r in group]) if fmt != "read" else float("nan")])
    print()
    print(table(["export", "n", "elapsed s", "CPU s", "peak RSS MB", "file MB"], rows))
    met = all(summary[f]["elapsed_s"] <= TIME_TARGET_S and summary[f]["peak_rss_mb"] < RSS_TARGET_MB
              for f in ("csv", "xlsx"))
    result = {"params": {"items": ns.items, "reps": ns.reps, "quick": ns.quick}, "runs": runs, "summary": summary,
              "targets": {"elapsed_s": TIME_TARGET_S, "peak_rss_mb": RSS_TARGET_MB}, "meets_target": met}
    path = write_result("export", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT export: {ns.items:,} items: csv {summary['csv']['elapsed_s']:.1f}s / "
          f"{summary['csv']['peak_rss_mb']:.0f} MB, xlsx {summary['xlsx']['elapsed_s']:.1f}s / "
          f"{summary['xlsx']['peak_rss_mb']:.0f} MB (read only {summary['read']['elapsed_s']:.1f}s); "
          f"targets <= {TIME_TARGET_S:g}s and < {RSS_TARGET_MB:g} MB each: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
