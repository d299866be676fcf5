"""Shared helpers of the benchmark scripts: paths, isolated state, crawl subprocesses, results.

Every benchmark runs on this machine only (servers on 127.0.0.1 or a unix socket), compares
against a baseline measured side by side in the same session (A B A B ...), reports medians
and writes ``bench/results/<name>.json``. Nothing here asserts on a time.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

BENCH_DIR = Path(__file__).resolve().parents[1]
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SANDBOX_PROJECT = ROOT / "projects" / "sandbox"
DEMO_PROJECT = ROOT / "projects" / "demo"

for _p in (ROOT, SANDBOX_PROJECT, DEMO_PROJECT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

# Settings every benchmark crawl shares (with and without the add-on).
CRAWL_SETTINGS: dict[str, Any] = {
    "ROBOTSTXT_OBEY": False,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
    "DOWNLOAD_DELAY": 0,
    "LOG_LEVEL": "WARNING",
    "TELNETCONSOLE_ENABLED": False,
    "HTTPCACHE_ENABLED": False,
    "AUTOTHROTTLE_ENABLED": False,
}
ADDON = {"scrapy_hitl.Addon": 500}


# --- statistics ----------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): with 20 samples, p95 is the 19th smallest."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return float(ordered[int(rank) - 1])


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "scrapy_hitl"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"
    return head + ("+dirty scrapy_hitl" if dirty else "")


def machine() -> dict[str, Any]:
    return {
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
    }


def write_result(name: str, data: dict[str, Any], out: str | None = None) -> Path:
    """Write the JSON result: ``out`` if given, else ``bench/results/<name>.json``."""
    path = Path(out) if out else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "machine": machine(), **data}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --- servers and isolated state ------------------------------------------------------------
@contextmanager
def redis_server() -> Iterator[Any]:
    """A real redis-server (AOF on, like production) on a loopback port, for this run only."""
    from tests.support.servers import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def sandbox_server(**options: Any) -> Iterator[Any]:
    from sandbox.control import SandboxServer

    with SandboxServer(**options) as server:
        yield server


def fresh_state_env(redis_url: str, workdir: Path) -> dict[str, str]:
    """HITL_* variables for a new, empty state: flushed Redis, new SQLite file, new data dir."""
    import redis

    redis.Redis.from_url(redis_url).flushall()
    data_dir = workdir / ("hitl-" + uuid.uuid4().hex[:8])
    data_dir.mkdir(parents=True)
    return {
        "HITL_DATA_DIR": str(data_dir),
        "HITL_DATABASE_URL": f"sqlite:///{data_dir / 'hitl.db'}",
        "HITL_REDIS_URL": redis_url,
        "HITL_SECRET_KEY": "bench-" + uuid.uuid4().hex,
    }


def open_state(env: dict[str, str]) -> Any:
    from scrapy_hitl.config import StateConfig
    from scrapy_hitl.state import HitlState

    return HitlState.open(StateConfig.from_env(env))


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"hitl-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- crawl subprocesses ----------------------------------------------------------------------
_COMPILED = False


def compile_sources(env: dict[str, str]) -> None:
    """Byte-compile this tree's sources once per benchmark process, before the first crawl.

    A crawl then loads cached bytecode, as an installed package does (pip compiles at
    install, and so the site-packages the crawl imports are compiled already): it must not
    pay for compiling scrapy_hitl's sources at every start because the calling shell set
    PYTHONDONTWRITEBYTECODE, nor may the first of two crawls counted under valgrind pay it
    and the second not (their difference would be off by the compile).
    """
    global _COMPILED
    if _COMPILED:
        return
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "scrapy_hitl"), str(BENCH_DIR),
                    str(DEMO_PROJECT)], env=env, check=False, capture_output=True)
    _COMPILED = True


def run_crawl(
    spider: str,
    *,
    settings: dict[str, Any],
    env: dict[str, str],
    out_dir: Path,
    name: str,
    spider_args: dict[str, Any] | None = None,
    timeout: float = 900,
    wrapper: Sequence[str] = (),
) -> dict[str, Any]:
    """Run ``benchlib.crawl_runner`` (a CrawlerProcess) in a fresh interpreter; return its report:
    the crawl's final stats plus the process's resource figures, its whole wall time
    (``process_wall_s``, from spawn to exit) and CPU time (``process_cpu_s``). ``wrapper`` prefixes the
    command (valgrind, for instruction counts)."""
    out = out_dir / f"{name}.json"
    log = out_dir / f"{name}.log"
    cmd = [*wrapper, sys.executable, "-m", "benchlib.crawl_runner", spider, "--out", str(out),
           "--settings", json.dumps({**settings, "LOG_FILE": str(log)})]
    for k, v in (spider_args or {}).items():
        cmd += ["-a", f"{k}={v}"]
    full_env = {**os.environ, **env,
                "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT), str(DEMO_PROJECT)])}
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)  # see compile_sources
    compile_sources(full_env)
    started, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=full_env, cwd=out_dir, capture_output=True, timeout=timeout)
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # only waited-for children: this crawl
    cpu_s = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text()[-3000:] if log.exists() else ""
        raise RuntimeError(f"crawl {name} failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}\n{tail}")
    report = json.loads(out.read_text())
    report["log_errors"] = _log_errors(log)
    report["process_wall_s"] = wall_s  # the whole process: interpreter start-up, imports, crawl, exit
    report["process_cpu_s"] = cpu_s  # its CPU time (user + system, all threads): less sensitive to load
    return report


def _log_errors(log: Path) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if " ERROR: " in line or "CRITICAL" in line][:20]
