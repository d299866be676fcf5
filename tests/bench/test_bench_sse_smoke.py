"""Smoke test for bench/sse.py (see test_bench_smoke.py for what these check)."""

from __future__ import annotations

from tests.bench.test_bench_smoke import run_bench  # noqa: F401  (the fixture)


def test_sse_quick(run_bench):  # noqa: F811
    stdout, result = run_bench("sse")
    assert "RESULT sse: 3 SSE clients p50 " in stdout
    (run,) = result["runs"]
    assert run["complete"] and not run["errors"]  # every client of both kinds got every event once, in order
    assert len(run["sse_ms"]) == len(run["ws_ms"]) == 3 * run["events"]
