"""Consultations create latency: ``POST /api/v1/consultations`` with 20 concurrent agents.

    .venv/bin/python bench/consultations_create.py [--agents 20] [--rate 50] [--seconds 10] [--rounds 3] [--quick]

Serves the console with the real server (``hitl console``: gunicorn, gthread, 32 threads) on
a fresh state (SQLite, real Redis), creates one API key per agent, and starts one thread per
agent, each with its own keep-alive HTTP connection and its own key, as separate agent
processes would. The body is realistic: title, description, context, two options, priority,
metadata. Each request is timed from send to the last byte of the answer. Every round has
three phases, all agents at once in each:

1. **paced create** (the target): the agents together send ``--rate`` creates per second for
   ``--seconds``, each agent at random (Poisson) moments, so requests of different agents
   overlap as they would in production;
2. **paced baseline**: the same schedule of ``GET /api/v1/consultations?limit=1`` with the
   agent's key, the cheapest authenticated call (the same key check, one indexed read, no
   write): the ratio of the two p95s is what creating costs over the API's own floor;
3. **flood**: every agent sends ``--requests`` creates back to back, with no pause: the
   sustained rate (creates per second of wall time), and the latency at saturation (which is
   queueing: 20 requests always in flight over what the server completes per second).

Phases alternate over ``--rounds``, so a drift of the machine hits all of them. Target:
paced create p95 <= 25 ms. Every create must be stored.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import threading
import time
from typing import Any

from benchlib.common import fresh_state_env, median, open_state, percentile, redis_server, table, workdir, write_result

TARGET_P95_MS = 25
IDLE_CLOSE = 1.5  # seconds: gunicorn closes a keep-alive connection idle for 2 s
BODY = {
    "title": "Is 12.99 EUR the right price for this item?",
    "description": "Scraped from the product page; the previous crawl saw 14.99 EUR.",
    "context": {"url": "https://shop.example/p/1", "scraped": {"price": "12.99", "currency": "EUR"},
                "previous": {"price": "14.99"}, "html": "<span class=price>12,99 €</span>"},
    "options": ["yes", {"value": "no", "label": "No, the price is wrong"}],
    "timeout_seconds": 3600,
    "priority": 10,
    "metadata": {"trace_id": "bench"},
}


class Agent:
    """One agent: its own key and keep-alive connection."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.body = json.dumps(BODY).encode()
        self.last_used = 0.0

    def reconnect(self) -> None:
        self.conn.close()
        self.conn.connect()
        self.last_used = time.perf_counter()

    def call(self, method: str, path: str, expect: int, body: bytes | None = None,
             auth: bool = True) -> float:
        if time.perf_counter() - self.last_used > IDLE_CLOSE:
            self.reconnect()  # as HTTP clients do: the server has closed it, or is about to
        t0 = time.perf_counter()
        self.conn.request(method, path, body=body, headers=self.headers if auth else {})
        resp = self.conn.getresponse()
        data = resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        self.last_used = time.perf_counter()
        if resp.status != expect:
            raise RuntimeError(f"{method} {path} answered {resp.status}: {data[:500]!r}")
        return elapsed

    def create(self) -> float:
        return self.call("POST", "/api/v1/consultations", 201, self.body)

    def baseline(self) -> float:
        return self.call("GET", "/api/v1/consultations?limit=1", 200)

    def health(self) -> float:
        return self.call("GET", "/health", 200, auth=False)


def phase(agents: list[Agent], work: Any, *, n: int | None = None, rate: float = 0,
          seconds: float = 0, seed: int = 0) -> tuple[list[float], float, list[str]]:
    """All agents at once, each calling ``work(agent)`` either ``n`` times back to back or at
    Poisson moments (``rate`` per second in all) for ``seconds``: (samples ms, wall s, errors)."""
    samples: list[list[float]] = [[] for _ in agents]
    errors: list[str] = []
    start = threading.Barrier(len(agents) + 1)

    def run(i: int, agent: Agent) -> None:
        rng = random.Random(seed * 1000 + i)
        agent.reconnect()  # the server closes keep-alive connections idle for 2 s (between phases)
        start.wait()
        t0 = time.perf_counter()
        try:
            if n is not None:
                for _ in range(n):
                    samples[i].append(work(agent))
                return
            at = t0 + rng.expovariate(rate / len(agents))
            while at < t0 + seconds:
                pause = at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                samples[i].append(work(agent))
                at += rng.expovariate(rate / len(agents))
        except Exception as exc:  # reported, never hidden
            errors.append(f"agent {i}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i, a), daemon=True) for i, a in enumerate(agents)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join(600)
    wall = time.perf_counter() - t0
    return [s for per_agent in samples for s in per_agent], wall, errors


KINDS = ("paced create", "paced baseline: GET list (key)", "flood create")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=20, help="concurrent agents, one API key each")
    parser.add_argument("--rate", type=float, default=50, help="paced phase: creates per second, all agents")
    parser.add_argument("--seconds", type=float, default=10, help="paced phase: seconds per round")
    parser.add_argument("--requests", type=int, default=25, help="flood phase: creates per agent per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three phases, alternating")
    parser.add_argument("--threads", type=int, default=32, help="the console's gunicorn threads")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 agents, 20/s for 2 s, 5 flood requests, 1 round")
    parser.add_argument("--out", help="JSON result file (default bench/results/consultations_create.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.agents, ns.rate, ns.seconds, ns.requests, ns.rounds = 4, 20, 2, 5, 1

    from hitl_console.server import ConsoleProcess, free_port
    from scrapy_hitl.state import apikeys, consultations

    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    rounds: list[dict[str, Any]] = []
    creates = 0
    with redis_server() as redis, workdir("consultations") as wd:
        env = fresh_state_env(redis.url, wd)
        state = open_state(env)
        keys = [apikeys.create(state, f"bench agent {i}")[1] for i in range(ns.agents)]
        console = ConsoleProcess(port=free_port(0), env=env, log_path=str(wd / "console.log"),
                                 threads=ns.threads).start()
        try:
            agents = [Agent(console.port, key) for key in keys]
            for agent in agents:  # warm-up: connections, key checks, imports, the first write
                agent.create()
                agent.baseline()
            creates += len(agents)
            for round_no in range(ns.rounds):
                paced, paced_wall, e1 = phase(agents, Agent.create, rate=ns.rate, seconds=ns.seconds, seed=round_no)
                base, _, e2 = phase(agents, Agent.baseline, rate=ns.rate, seconds=ns.seconds, seed=round_no)
                flood, flood_wall, e3 = phase(agents, Agent.create, n=ns.requests)
                creates += len(paced) + len(flood)
                for kind, values in zip(KINDS, (paced, base, flood)):
                    samples[kind] += values
                rounds.append({
                    "round": round_no, "paced_creates": len(paced), "paced_rate_per_s": len(paced) / paced_wall,
                    "paced_p95_ms": percentile(paced, 95), "baseline_p95_ms": percentile(base, 95),
                    "flood_creates": len(flood), "flood_wall_s": flood_wall, "sustained_per_s": len(flood) / flood_wall,
                    "flood_p95_ms": percentile(flood, 95), "errors": e1 + e2 + e3,
                })
                r = rounds[-1]
                print(f"  round {round_no + 1}/{ns.rounds}: paced {r['paced_rate_per_s']:.0f}/s create p95 "
                      f"{r['paced_p95_ms']:.1f} ms, baseline p95 {r['baseline_p95_ms']:.1f} ms; flood "
                      f"{r['sustained_per_s']:.0f} creates/s, p95 {r['flood_p95_ms']:.0f} ms"
                      f"{'; ' + r['errors'][0] if r['errors'] else ''}", flush=True)
        finally:
            console.stop()
        stored = len(consultations.list_(state, limit=10**9))
        state.close()

    rows = [[name, len(v), median(v), percentile(v, 95), percentile(v, 99), max(v, default=float("nan"))]
            for name, v in samples.items()]
    print()
    print(table(["request (ms)", "n", "p50", "p95", "p99", "max"], rows))
    p95 = {name: percentile(v, 95) for name, v in samples.items()}
    rate = sum(r["flood_creates"] for r in rounds) / sum(r["flood_wall_s"] for r in rounds)
    ratio = p95[KINDS[0]] / p95[KINDS[1]]
    errors = [e for r in rounds for e in r["errors"]]
    met = p95[KINDS[0]] <= TARGET_P95_MS and not errors and stored == creates
    print(f"{creates} creates by {ns.agents} agents, {stored} consultations stored; errors: {len(errors)}")
    result = {
        "params": {"agents": ns.agents, "rate": ns.rate, "seconds": ns.seconds, "requests": ns.requests,
                   "rounds": ns.rounds, "threads": ns.threads, "quick": ns.quick},
        "samples_ms": samples, "rounds": rounds, "p95_ms": p95, "sustained_per_s": rate,
        "create_over_baseline_p95": ratio, "stored": stored, "expected": creates, "errors": errors,
        "target_p95_ms": TARGET_P95_MS, "meets_target": met,
    }
    path = write_result("consultations_create", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT consultations_create: p95 {p95[KINDS[0]]:.1f} ms with {ns.agents} concurrent agents at "
          f"{ns.rate:g} creates/s (baseline authenticated GET p95 {p95[KINDS[1]]:.1f} ms, ratio {ratio:.2f}x); "
          f"sustained {rate:.0f} creates/s (p95 at saturation {p95[KINDS[2]]:.0f} ms) "
          f"(target p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
