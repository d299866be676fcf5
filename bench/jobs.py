"""Job dispatch overhead: one-page crawls as jobs through the queue vs the same crawls run back
to back by a shell loop.

    .venv/bin/python bench/jobs.py [--jobs 20] [--rounds 2] [--quick]

A round runs N jobs on each side, in blocks of ``--block`` (5) that alternate (queue block,
shell block, shell block, queue block, ...), so a machine that slows down for a minute slows
both sides alike. One state (Redis, SQLite, data dir) and one sandbox server with a single
quotes page serve the whole run.

- **queue**: one `hitl worker --queues crawls` (one crawl slot, as the loop runs one at a
  time) is started once and left idle; a block queues its jobs at once (`jobs.create`:
  validation, the job and run rows, the RQ enqueue) of the demo project's `sandbox` spider
  (`-a sections=quotes -a details=0`: one page) and waits until every one has ended. Time =
  the first `create` -> the last job ended (its row polled every 20 ms). That includes
  everything a job adds: the queue, the claim and its transitions, the go-between process,
  the log tail to Redis, the ending.
- **shell**: `sh` runs the very command lines the worker would run (`runner.build_command`:
  the same arguments, caps, a run id and a JOBDIR each) one after the other, each with its
  output appended to a log file, in the project's folder with the project's environment.
  Time = the loop's wall time.

Ratio = queue / shell: the sums of a round's blocks, median over the rounds. Target: <= 1.15.
The worker's own start-up is not counted (it is started once and serves every job after);
the first dispatch latency (`queued_at` -> `started_at`) and the gaps between two jobs are
reported too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib.common import (
    DEMO_PROJECT, ROOT, compile_sources, fresh_state_env, median, open_state, percentile, redis_server, sandbox_server, table,
    workdir, write_result,
)

TARGET_RATIO = 1.15
SPIDER = "sandbox"


def spider_args(sandbox: Any) -> dict[str, str]:
    return {"base": sandbox.url, "sections": "quotes", "details": "0"}


def _child_env(env: dict[str, str]) -> dict[str, str]:
    full = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    full.pop("PYTHONDONTWRITEBYTECODE", None)
    return full


class QueueSide:
    """One idle `hitl worker --queues crawls` (one crawl slot) for the whole run."""

    def __init__(self, env: dict[str, str], wd: Path) -> None:
        from rq import Worker

        from scrapy_hitl.state import projects

        self.state = open_state(env)
        projects.add(self.state.db, DEMO_PROJECT)
        self.log = wd / "worker.log"
        with open(self.log, "wb") as out:
            self.worker = subprocess.Popen([sys.executable, "-m", "hitl_console.cli", "worker", "--queues", "crawls"],
                                           env={**_child_env(env), "HITL_JOB_LIMIT_CRAWLS": "1"}, stdout=out,
                                           stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not Worker.all(connection=self.state.redis):
            if time.monotonic() > deadline or self.worker.poll() is not None:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        time.sleep(1.0)  # idle, as a worker waiting for work

    def block(self, sandbox: Any, n: int) -> dict[str, Any]:
        """Queue n jobs at once; time until the last has ended."""
        from scrapy_hitl.state import jobs

        started = time.perf_counter()
        ids = [jobs.create(self.state, project="demo", spider=SPIDER, args=spider_args(sandbox))["id"]
               for _ in range(n)]
        deadline = time.monotonic() + 120 * n
        while True:
            rows = jobs.list_(self.state.db, limit=n, cursor=max(ids) + 1)
            if all(r["status"] in ("finished", "failed", "cancelled") for r in rows):
                break
            if time.monotonic() > deadline or self.worker.poll() is not None:
                raise RuntimeError(f"jobs did not end\n{self.log.read_text()[-3000:]}")
            time.sleep(0.02)
        wall = time.perf_counter() - started
        rows = sorted(rows, key=lambda r: r["id"])
        bad = [(r["id"], r["status"], r["reason"], r["message"][:200]) for r in rows if r["status"] != "finished"]
        if bad:
            raise RuntimeError(f"jobs that did not finish: {bad}")
        gaps = [(_ts(b["started_at"]) - _ts(a["finished_at"])) * 1000 for a, b in zip(rows, rows[1:], strict=False)]
        return {"wall_s": wall, "first_dispatch_ms": (_ts(rows[0]["started_at"]) - _ts(rows[0]["queued_at"])) * 1000,
                "gap_ms": gaps, "job_s": [_ts(r["finished_at"]) - _ts(r["started_at"]) for r in rows]}

    def close(self) -> None:
        self.worker.send_signal(signal.SIGTERM)
        self.worker.wait(120)
        self.state.close()


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def shell_block(env: dict[str, str], sandbox: Any, n: int, wd: Path) -> dict[str, Any]:
    """The same n crawls as the worker would run them, by `sh`, one after the other."""
    from hitl_console.jobs.config import JobsConfig
    from hitl_console.jobs.runner import build_command
    from scrapy_hitl.state import projects, runs

    config = JobsConfig.from_env(env)
    data_dir = Path(env["HITL_DATA_DIR"])
    log = wd / f"shell-{time.monotonic_ns()}.log"
    lines = ["set -e", f"cd {shlex.quote(str(DEMO_PROJECT))}"]
    for _ in range(n):
        run_id = runs.new_run_id()
        jobdir = data_dir / "jobs" / run_id
        cmd, _ = build_command({"spider": SPIDER, "args": spider_args(sandbox), "settings": {}, "run_id": run_id},
                               config, jobdir)
        lines.append(f"mkdir -p {shlex.quote(str(jobdir))}")
        lines.append(" ".join(shlex.quote(c) for c in cmd) + f" >> {shlex.quote(str(log))} 2>&1")
    script = wd / f"loop-{time.monotonic_ns()}.sh"
    script.write_text("\n".join(lines) + "\n")
    child_env = {**projects.project_env(DEMO_PROJECT), **env, "PYTHONUNBUFFERED": "1"}
    child_env.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    proc = subprocess.run(["sh", str(script)], env=child_env, capture_output=True)
    wall = time.perf_counter() - started
    text = log.read_text()
    if proc.returncode != 0 or text.count("Spider closed (finished)") != n:
        raise RuntimeError(f"the loop failed ({proc.returncode}):\n{text[-3000:]}")
    return {"wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20, help="one-page jobs per side and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds (queue and shell, alternating)")
    parser.add_argument("--block", type=int, default=5, help="jobs per block: the sides alternate block by block")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 jobs, 1 round, no warm-up")
    parser.add_argument("--out", help="JSON result file (default bench/results/jobs.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.jobs, ns.rounds, ns.block = 2, 1, 2

    blocks: list[dict[str, Any]] = []
    sizes = [ns.block] * (ns.jobs // ns.block) + ([ns.jobs % ns.block] if ns.jobs % ns.block else [])
    with redis_server() as redis, sandbox_server(pages=1) as sandbox, workdir("jobs") as wd:
        env = fresh_state_env(redis.url, wd)
        compile_sources(_child_env(env))
        queue = QueueSide(env, wd)
        try:
            if not ns.quick:  # warm-up, untimed: the first crawl of a state pays for more than the rest
                queue.block(sandbox, 1)
                shell_block(env, sandbox, 1, wd)
            for r in range(ns.rounds):
                for b, size in enumerate(sizes):
                    order = ("queue", "shell") if (r + b) % 2 == 0 else ("shell", "queue")
                    result: dict[str, Any] = {"round": r, "size": size}
                    for side in order:
                        result[side] = (queue.block(sandbox, size) if side == "queue"
                                        else shell_block(env, sandbox, size, wd))
                    result["ratio"] = result["queue"]["wall_s"] / result["shell"]["wall_s"]
                    blocks.append(result)
                    q, s = result["queue"], result["shell"]
                    print(f"  round {r + 1}/{ns.rounds} block {b + 1}/{len(sizes)} ({size} each): "
                          f"queue {q['wall_s']:.2f} s, shell {s['wall_s']:.2f} s, ratio {result['ratio']:.3f}; "
                          f"first dispatch {q['first_dispatch_ms']:.0f} ms", flush=True)
        finally:
            queue.close()

    rounds = []
    for r in range(ns.rounds):
        mine = [b for b in blocks if b["round"] == r]
        q = sum(b["queue"]["wall_s"] for b in mine)
        s = sum(b["shell"]["wall_s"] for b in mine)
        rounds.append({"queue": {"wall_s": q, "gap_ms": [g for b in mine for g in b["queue"]["gap_ms"]],
                                 "job_s": [j for b in mine for j in b["queue"]["job_s"]]},
                       "shell": {"wall_s": s}, "ratio": q / s})

    ratio = median([r["ratio"] for r in rounds])
    queue_s = median([r["queue"]["wall_s"] for r in rounds])
    shell_s = median([r["shell"]["wall_s"] for r in rounds])
    gaps = [g for r in rounds for g in r["queue"]["gap_ms"]]
    job_s = [j for r in rounds for j in r["queue"]["job_s"]]
    print()
    print(table(["measure", "value"], [
        [f"queue: {ns.jobs} jobs, first create -> last finished (s, median)", queue_s],
        [f"shell: {ns.jobs} scrapy crawl back to back (s, median)", shell_s],
        ["per job, queue (s)", queue_s / ns.jobs],
        ["per job, shell (s)", shell_s / ns.jobs],
        ["job started -> finished (s, p50)", median(job_s)],
        ["gap: job finished -> next started (ms, p50 / p95)",
         f"{median(gaps):.0f} / {percentile(gaps, 95):.0f}" if gaps else "-"],
        ["ratio queue / shell (median of rounds)", ratio],
    ]))
    out = {
        "params": {"jobs": ns.jobs, "rounds": ns.rounds, "block": ns.block, "quick": ns.quick},
        "blocks": blocks, "rounds": rounds, "ratio": ratio, "queue_s": queue_s, "shell_s": shell_s,
        "target_ratio": TARGET_RATIO, "meets_target": ratio <= TARGET_RATIO,
    }
    path = write_result("jobs", out, ns.out)
    print(f"results: {path}")
    print(f"RESULT jobs: {ns.jobs} one-page jobs through the queue {queue_s:.2f} s vs {shell_s:.2f} s by a "
          f"shell loop: ratio {ratio:.3f} (target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
