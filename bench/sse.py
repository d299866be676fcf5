"""Server-Sent Events latency: an event added to the stream -> each SSE client receiving it,
against the same number of websocket clients in the same run.

    .venv/bin/python bench/sse.py [--clients 20] [--rate 50] [--seconds 10] [--rounds 2] [--quick]

Serves the console with the real server (``hitl console``: gunicorn, gthread, 64 threads, so
40 live connections fit under the per-process cap) on a fresh state, logs in, and opens N
streams on ``GET /api/v1/events`` (``tests.support.sse.SseClient``: http.client, no SSE
library) and N websockets on ``/ws/events`` at the same time, each read by its own thread.
Then it emits ``run.progress`` events at a steady ``--rate`` for ``--seconds``, each carrying
the time just before its ``XADD``; a client's latency for an event is when it had parsed the
message minus that time (one process, one clock). Every client must get every event once,
in order. A raw ``XREAD BLOCK`` reader of the same stream runs alongside as the floor.

Target: SSE p95 within 1.5x of the websocket p95 of the same rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from benchlib.common import fresh_state_env, median, open_state, percentile, redis_server, table, workdir, write_result
from event_latency import EMAIL, PASSWORD, Reader, cpu_seconds, login, ws_recv, xread_recv

TARGET_RATIO = 1.5
THREADS = 64  # live connections per process: 64 - 16 = 48 (server.py keeps a quarter for the API)


def sse_recv(client: Any) -> Any:
    def recv() -> list[tuple[dict[str, Any], float]]:
        message = client.message()
        received_at = time.perf_counter()
        return [(json.loads(message.data), received_at)] if message.data else []

    return recv


def one_round(n: int, console: Any, token: str, state: Any, redis_url: str, rate: float,
              seconds: float) -> dict[str, Any]:
    from tests.support.console import LiveClient
    from tests.support.sse import SseClient

    from simple_websocket import ConnectionError as Refused

    count = int(rate * seconds)
    auth = {"Authorization": f"Bearer {token}"}

    def stream() -> SseClient:
        # The previous round's connections free their slots within a second of closing.
        for _ in range(100):
            client = SseClient(console.url + "/api/v1/events", headers=auth, timeout=60)
            if client.status != 503:
                return client
            time.sleep(0.1)
        raise RuntimeError(f"a stream was refused: {client.body}")

    def socket() -> LiveClient:
        for attempt in range(100):
            try:
                return LiveClient.connect(console.ws_url + "/ws/events", headers=list(auth.items()))
            except Refused as exc:
                if exc.status_code != 503 or attempt == 99:
                    raise
                time.sleep(0.1)
        raise AssertionError("unreachable")

    streams = [stream() for _ in range(n)]
    sockets = [socket() for _ in range(n)]
    try:
        if any(s.status != 200 for s in streams):
            raise RuntimeError(f"a stream was refused: {[s.body for s in streams if s.status != 200][:1]}")
        # Warm-up: one event every client must see, so all are connected and reading.
        state.events.emit("run.progress", {"seq": -1, "sent_at": time.perf_counter()}, run_id="bench")
        for s in streams:
            s.events(1)
        for c in sockets:
            if c.receive(timeout=60) is None:
                raise RuntimeError("a websocket got no warm-up event within 60 s")
        start_id = state.events.last_id()
        sse_readers = [Reader(f"sse-{i}", count, sse_recv(s)) for i, s in enumerate(streams)]
        ws_readers = [Reader(f"ws-{i}", count, ws_recv(c)) for i, c in enumerate(sockets)]
        raw = Reader("xread", count, xread_recv(redis_url, start_id))
        for r in (*sse_readers, *ws_readers, raw):
            r.start()
        cpu0 = cpu_seconds(console.process.proc.pid)
        emitted: list[str] = []
        t_start = time.perf_counter()
        for i in range(count):
            wait = t_start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            emitted.append(state.events.emit("run.progress", {"seq": i, "sent_at": time.perf_counter()},
                                             run_id="bench"))
        for r in (*sse_readers, *ws_readers, raw):
            r.join(90)
        cpu = cpu_seconds(console.process.proc.pid) - cpu0
    finally:
        for s in streams:
            s.close()
        for c in sockets:
            if c.connected:
                c.close()
    return {
        "clients": n, "events": count, "rate": rate,
        "sse_ms": [ms for r in sse_readers for ms in r.latency_ms],
        "ws_ms": [ms for r in ws_readers for ms in r.latency_ms],
        "raw_ms": raw.latency_ms,
        "complete": all(r.ids == emitted for r in (*sse_readers, *ws_readers, raw)),
        "errors": [r.error for r in (*sse_readers, *ws_readers, raw) if r.error],
        "console_cpu_ms_per_message": cpu * 1000 / max(1, 2 * n * count),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20, help="SSE clients, and as many websockets (default 20)")
    parser.add_argument("--rate", type=float, default=50, help="events per second (default 50)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of emission per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 clients of each, 2 s, 1 round")
    parser.add_argument("--out", help="JSON result file (default bench/results/sse.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.clients, ns.seconds, ns.rounds = 3, 2, 1

    from hitl_console.auth.users import create_user
    from tests.support.console import RunningConsole

    runs: list[dict[str, Any]] = []
    with redis_server() as redis, workdir("sse") as wd:
        env = fresh_state_env(redis.url, wd)
        state = open_state(env)
        create_user(state.db, EMAIL, PASSWORD, "reviewer")
        console = RunningConsole(env, str(wd / "console.log"), threads=THREADS).start()
        try:
            token = login(console)
            for round_no in range(ns.rounds):
                run = one_round(ns.clients, console, token, state, redis.url, ns.rate, ns.seconds)
                run["round"] = round_no
                runs.append(run)
                print(f"  round {round_no + 1}/{ns.rounds}, {ns.clients} + {ns.clients} clients: SSE p95 "
                      f"{percentile(run['sse_ms'], 95):.2f} ms, websocket p95 {percentile(run['ws_ms'], 95):.2f} ms, "
                      f"raw XREAD p95 {percentile(run['raw_ms'], 95):.2f} ms"
                      f"{'' if run['complete'] else ', INCOMPLETE'}{'; ' + run['errors'][0] if run['errors'] else ''}",
                      flush=True)
        finally:
            console.stop()
            state.close()

    series = {name: [ms for r in runs for ms in r[f"{name}_ms"]] for name in ("sse", "ws", "raw")}
    summary = {name: {"n": len(ms), "p50": median(ms), "p95": percentile(ms, 95), "max": max(ms, default=float("nan"))}
               for name, ms in series.items()}
    ratio = summary["sse"]["p95"] / summary["ws"]["p95"]
    complete = all(r["complete"] for r in runs)
    cpu = median([r["console_cpu_ms_per_message"] for r in runs])
    labels = {"sse": f"{ns.clients} SSE clients", "ws": f"{ns.clients} websockets (same rounds)",
              "raw": "  baseline: raw XREAD BLOCK"}
    print()
    print(table(["XADD -> receipt (ms)", "n", "p50", "p95", "max"],
                [[labels[k], s["n"], s["p50"], s["p95"], s["max"]] for k, s in summary.items()]))
    met = ratio <= TARGET_RATIO and complete
    result = {
        "params": {"clients": ns.clients, "rate": ns.rate, "seconds": ns.seconds, "rounds": ns.rounds,
                   "quick": ns.quick, "threads": THREADS},
        "runs": runs, "summary": summary, "sse_ws_p95_ratio": ratio, "console_cpu_ms_per_message": cpu,
        "target_ratio": TARGET_RATIO, "meets_target": met,
    }
    path = write_result("sse", result, ns.out)
    print(f"results: {path}")
    s, w = summary["sse"], summary["ws"]
    print(f"RESULT sse: {ns.clients} SSE clients p50 {s['p50']:.1f} ms p95 {s['p95']:.1f} ms; {ns.clients} websockets "
          f"p50 {w['p50']:.1f} ms p95 {w['p95']:.1f} ms; ratio {ratio:.2f}x (raw XREAD p95 "
          f"{summary['raw']['p95']:.2f} ms); every event delivered once, in order: {'yes' if complete else 'NO'} "
          f"(target ratio <= {TARGET_RATIO}: {'met' if met else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
