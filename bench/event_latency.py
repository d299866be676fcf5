"""Event latency: an event added to the stream -> each reviewer's websocket receiving it.

    .venv/bin/python bench/event_latency.py [--clients 1,20] [--rate 50] [--seconds 10] [--quick]

Serves the console with the real server (``hitl console``: gunicorn, gthread) on a fresh
state, logs in, and opens N websockets on ``/ws/events`` (``tests.support.console.LiveClient``,
simple_websocket's client), each read by its own thread. Then it emits ``run.progress``
events through ``EventStream.emit`` at a steady ``--rate`` for ``--seconds``, each carrying
the time just before its ``XADD`` in its payload; a client's latency for an event is the
moment its ``receive()`` returned minus that time (one process, one clock). Every client
must get every event once, in order.

Baseline, side by side: during the same emission a thread of this process reads the same
stream with a raw ``XREAD BLOCK`` (redis-py, no console, no websocket), so the ratio of the
two shows what the console adds. The client counts alternate (1, 20, 1, 20, ...) over
``--rounds``. Target: p95 <= 100 ms with 1 and with 20 clients.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

from benchlib.common import fresh_state_env, median, open_state, percentile, redis_server, table, workdir, write_result

TARGET_P95_MS = 100
EMAIL, PASSWORD = "bench@example.com", "bench-password"


class Reader(threading.Thread):
    """Collects (event id, latency ms) from a websocket client or from raw XREAD."""

    def __init__(self, name: str, expect: int, recv: Any) -> None:
        super().__init__(daemon=True, name=name)
        self.expect, self.recv = expect, recv
        self.ids: list[str] = []
        self.latency_ms: list[float] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            while len(self.ids) < self.expect:
                for event, received_at in self.recv():
                    self.ids.append(event["id"])
                    self.latency_ms.append((received_at - event["payload"]["sent_at"]) * 1000)
        except Exception as exc:  # reported in the table, never hidden
            self.error = f"{type(exc).__name__}: {exc}"


def ws_recv(client: Any) -> Any:
    def recv() -> list[tuple[dict[str, Any], float]]:
        raw = client.receive(timeout=60)
        received_at = time.perf_counter()
        if raw is None:
            raise TimeoutError("no event for 60 s")
        return [(json.loads(raw), received_at)]

    return recv


def xread_recv(redis_url: str, after: str) -> Any:
    import redis

    from scrapy_hitl.state.events import STREAM_KEY

    client = redis.Redis.from_url(redis_url)
    last = [after]

    def recv() -> list[tuple[dict[str, Any], float]]:
        resp = client.xread({STREAM_KEY: last[0]}, count=500, block=1000)
        received_at = time.perf_counter()
        out = []
        for _key, entries in resp or ():
            for stream_id, fields in entries:
                last[0] = stream_id.decode()
                out.append(({"id": last[0], **json.loads(fields[b"data"])}, received_at))
        return out

    return recv


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the gunicorn arbiter and workers)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            pids += [int(p) for p in fh.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def one_round(n: int, console: Any, token: str, state: Any, redis_url: str, rate: float,
              seconds: float) -> dict[str, Any]:
    from tests.support.console import LiveClient

    count = int(rate * seconds)
    clients = [LiveClient.connect(console.ws_url + "/ws/events", headers=[("Authorization", f"Bearer {token}")])
               for _ in range(n)]
    try:
        # Warm-up: one event every client must see, so all are connected and reading.
        state.events.emit("run.progress", {"seq": -1, "sent_at": time.perf_counter()}, run_id="bench")
        for c in clients:
            if c.receive(timeout=60) is None:
                raise RuntimeError("a client got no warm-up event within 60 s")
        start_id = state.events.last_id()
        readers = [Reader(f"ws-{i}", count, ws_recv(c)) for i, c in enumerate(clients)]
        raw = Reader("xread", count, xread_recv(redis_url, start_id))
        for r in (*readers, raw):
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
        for r in (*readers, raw):
            r.join(90)
        cpu = cpu_seconds(console.process.proc.pid) - cpu0
    finally:
        for c in clients:
            if c.connected:
                c.close()
    ws_ms = [ms for r in readers for ms in r.latency_ms]
    return {
        "clients": n, "events": count, "rate": rate,
        "ws_ms": ws_ms, "raw_ms": raw.latency_ms,
        "complete": all(r.ids == emitted for r in readers) and raw.ids == emitted,
        "errors": [r.error for r in (*readers, raw) if r.error],
        "console_cpu_ms_per_message": cpu * 1000 / max(1, len(ws_ms)),
    }


def login(console: Any) -> str:
    status, _headers, body = console.request("POST", "/api/v1/auth/login", {"email": EMAIL, "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"login failed: {body}")
    return body["access_token"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,20", help="websocket client counts, comma-separated")
    parser.add_argument("--rate", type=float, default=50, help="events per second (default 50)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of emission per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every client count, alternating")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 and 3 clients, 2 s, 1 round")
    parser.add_argument("--out", help="JSON result file (default bench/results/event_latency.json)")
    ns = parser.parse_args(argv)
    counts = [int(c) for c in ns.clients.split(",")]
    if ns.quick:
        counts, ns.seconds, ns.rounds = [1, 3], 2, 1

    from hitl_console.auth.users import create_user
    from tests.support.console import RunningConsole

    runs: list[dict[str, Any]] = []
    with redis_server() as redis, workdir("events") as wd:
        env = fresh_state_env(redis.url, wd)
        state = open_state(env)
        create_user(state.db, EMAIL, PASSWORD, "reviewer")
        console = RunningConsole(env, str(wd / "console.log")).start()
        try:
            token = login(console)
            for round_no in range(ns.rounds):
                for n in counts:
                    run = one_round(n, console, token, state, redis.url, ns.rate, ns.seconds)
                    run["round"] = round_no
                    runs.append(run)
                    print(f"  round {round_no + 1}/{ns.rounds}, {n} client(s): websocket p95 "
                          f"{percentile(run['ws_ms'], 95):.2f} ms, raw XREAD p95 {percentile(run['raw_ms'], 95):.2f} ms"
                          f"{'' if run['complete'] else ', INCOMPLETE'}{'; ' + run['errors'][0] if run['errors'] else ''}",
                          flush=True)
        finally:
            console.stop()
            state.close()

    rows, summary = [], {}
    for n in counts:
        mine = [r for r in runs if r["clients"] == n]
        ws = [ms for r in mine for ms in r["ws_ms"]]
        raw = [ms for r in mine for ms in r["raw_ms"]]
        cpu = median([r["console_cpu_ms_per_message"] for r in mine])
        summary[n] = {"p50": median(ws), "p95": percentile(ws, 95), "max": max(ws, default=float("nan")),
                      "raw_p50": median(raw), "raw_p95": percentile(raw, 95), "raw_max": max(raw, default=float("nan")),
                      "console_cpu_ms_per_message": cpu, "complete": all(r["complete"] for r in mine)}
        s = summary[n]
        rows.append([f"{n} client(s): websocket", len(ws), s["p50"], s["p95"], s["max"], cpu])
        rows.append(["  baseline: raw XREAD BLOCK", len(raw), s["raw_p50"], s["raw_p95"], s["raw_max"], ""])
    print()
    print(table(["XADD -> receipt (ms)", "n", "p50", "p95", "max", "console CPU ms/msg"], rows))
    met = all(s["p95"] <= TARGET_P95_MS and s["complete"] for s in summary.values())
    result = {
        "params": {"clients": counts, "rate": ns.rate, "seconds": ns.seconds, "rounds": ns.rounds, "quick": ns.quick},
        "runs": runs, "summary": summary, "target_p95_ms": TARGET_P95_MS, "meets_target": met,
    }
    path = write_result("event_latency", result, ns.out)
    print(f"results: {path}")
    parts = ", ".join(f"{n} client(s) p50 {s['p50']:.1f} ms p95 {s['p95']:.1f} ms "
                      f"(raw XREAD p95 {s['raw_p95']:.2f} ms, ratio {s['p95'] / s['raw_p95']:.1f}x)"
                      for n, s in summary.items())
    complete = all(s["complete"] for s in summary.values())
    print(f"RESULT event_latency: {parts}; every event delivered once, in order: {'yes' if complete else 'NO'} "
          f"(target p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
