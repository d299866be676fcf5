"""Webhook latency: a reviewer's answer submitted -> the agent's receiver has the signed webhook.

    .venv/bin/python bench/webhook_latency.py [--consultations 200] [--rounds 2] [--quick]

Runs a real ``hitl worker`` (a subprocess: RQ worker, scheduler and sweep) on a fresh state
(real Redis, SQLite) and a real HTTP receiver on 127.0.0.1 in this process. Each sample is
one consultation, asked by an agent with that receiver as its ``callback_url``: the clock
starts just before ``consultations.respond`` (the call the console's respond endpoint makes:
the answer and the webhook's outbox row in one transaction, then the RQ enqueue) and stops
when the receiver has read the webhook's body (one process, one clock: ``perf_counter``).
Answers are given one at a time, each once the previous webhook arrived. Every webhook is
checked with ``standardwebhooks.Webhook(secret).verify`` afterwards.

Baseline, side by side (A B A B ... over ``--rounds``): the same payload signed with
``standardwebhooks`` and POSTed to the same receiver by this process (the worker's own
transport: SSRF check, pinned connection), so the ratio shows what the outbox, the queue and
the worker add to a bare signed POST. The table also shows the ``respond()`` call's own share
(the answer's transaction: a database commit, events, the enqueue). Target: p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from typing import Any

from benchlib.common import fresh_state_env, median, open_state, percentile, redis_server, table, workdir, write_result

TARGET_P95_MS = 1000
WAIT_S = 30  # the longest one webhook may take before the run is reported incomplete


def wait_requests(receiver: Any, n: int, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while len(receiver.requests) < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def webhook_round(state: Any, agent: dict[str, Any], receiver: Any, n: int) -> dict[str, Any]:
    """n answers through the worker; latency per webhook."""
    from scrapy_hitl.state import consultations

    latency_ms, respond_ms, missing = [], [], 0
    for i in range(n):
        asked = consultations.create(state, title=f"bench {i}", options=["yes", "no"], callback_url=receiver.url,
                                     api_key_id=agent["id"], actor=f"agent:{agent['id']}")
        before = len(receiver.requests)
        start = time.perf_counter()
        consultations.respond(state, asked["id"], "yes", actor="user:bench@example.com")
        respond_ms.append((time.perf_counter() - start) * 1000)
        if not wait_requests(receiver, before + 1):
            missing += 1
            continue
        latency_ms.append((receiver.requests[before]["at"] - start) * 1000)
    return {"kind": "webhook", "samples": n, "ms": latency_ms, "respond_ms": respond_ms, "missing": missing}


def baseline_round(agent: dict[str, Any], receiver: Any, n: int) -> dict[str, Any]:
    """n signed POSTs from this process: sign (standardwebhooks) + the worker's transport."""
    import json

    from hitl_console.webhooks import transport
    from hitl_console.webhooks.delivery import signature_headers
    from scrapy_hitl.state.webhook_events import new_webhook_id

    latency_ms, missing = [], 0
    for i in range(n):
        before = len(receiver.requests)
        start = time.perf_counter()
        body = json.dumps({"type": "consultation.responded", "data": {"id": i, "response": "yes"}})
        headers = {"Content-Type": "application/json",
                   **signature_headers(new_webhook_id(), body, [agent["secret"]], datetime.now(timezone.utc))}
        result = transport.post(receiver.url, body.encode(), headers, timeout=10, allow_private=True)
        if result.status_code != 200 or not wait_requests(receiver, before + 1):
            missing += 1
            continue
        latency_ms.append((receiver.requests[before]["at"] - start) * 1000)
    return {"kind": "baseline", "samples": n, "ms": latency_ms, "missing": missing}


def verified(receiver: Any, secret: str) -> int:
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    ok = 0
    for request in receiver.requests:
        try:
            Webhook(secret).verify(request["body"], request["headers"])
            ok += 1
        except WebhookVerificationError:
            pass
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consultations", type=int, default=200, help="answers per round (default 200)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of webhook and baseline, alternating")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 answers, 1 round")
    parser.add_argument("--out", help="JSON result file (default bench/results/webhook_latency.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.consultations, ns.rounds = 20, 1

    from hitl_console.webhooks.worker import WorkerProcess
    from scrapy_hitl.state import apikeys
    from tests.support.receiver import Receiver

    runs: list[dict[str, Any]] = []
    with redis_server() as redis, workdir("webhooks") as wd:
        env = {**fresh_state_env(redis.url, wd), "HITL_WEBHOOK_ALLOW_PRIVATE": "1"}
        state = open_state(env)
        info, _key, secret = apikeys.create(state, "bench agent")
        agent = {"id": info["id"], "secret": secret}
        receiver = Receiver().start()
        worker = WorkerProcess(log_path=str(wd / "worker.log"), env=env).start()
        try:
            warm = webhook_round(state, agent, receiver, 3)  # the worker is up and has run a job
            if warm["missing"]:
                raise RuntimeError(f"the worker delivered nothing; see {wd / 'worker.log'}:\n"
                                   + (wd / "worker.log").read_text()[-3000:])
            for round_no in range(ns.rounds):
                for run in (webhook_round(state, agent, receiver, ns.consultations),
                            baseline_round(agent, receiver, ns.consultations)):
                    run["round"] = round_no
                    runs.append(run)
                    print(f"  round {round_no + 1}/{ns.rounds}, {run['kind']}: p50 {median(run['ms']):.2f} ms, "
                          f"p95 {percentile(run['ms'], 95):.2f} ms"
                          f"{', MISSING ' + str(run['missing']) if run['missing'] else ''}", flush=True)
            good = verified(receiver, secret)
            total = len(receiver.requests)
        finally:
            worker.stop()
            receiver.stop()
            state.close()

    hook = [ms for r in runs if r["kind"] == "webhook" for ms in r["ms"]]
    base = [ms for r in runs if r["kind"] == "baseline" for ms in r["ms"]]
    answer = [ms for r in runs if r["kind"] == "webhook" for ms in r["respond_ms"]]
    missing = sum(r["missing"] for r in runs)
    summary = {"p50": median(hook), "p95": percentile(hook, 95), "max": max(hook, default=float("nan")),
               "baseline_p50": median(base), "baseline_p95": percentile(base, 95),
               "baseline_max": max(base, default=float("nan")), "missing": missing,
               "verified": good, "received": total}
    summary["ratio_p95"] = summary["p95"] / summary["baseline_p95"]
    print()
    print(table(["answer -> webhook received (ms)", "n", "p50", "p95", "max"], [
        ["webhook via hitl worker", len(hook), summary["p50"], summary["p95"], summary["max"]],
        ["  of which the respond() call", len(answer), median(answer), percentile(answer, 95),
         max(answer, default=float("nan"))],
        ["  baseline: direct signed POST", len(base), summary["baseline_p50"], summary["baseline_p95"],
         summary["baseline_max"]],
    ]))
    met = summary["p95"] <= TARGET_P95_MS and not missing and good == total
    result = {"params": {"consultations": ns.consultations, "rounds": ns.rounds, "quick": ns.quick},
              "runs": runs, "summary": summary, "target_p95_ms": TARGET_P95_MS, "meets_target": met}
    path = write_result("webhook_latency", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT webhook_latency: p50 {summary['p50']:.1f} ms p95 {summary['p95']:.1f} ms "
          f"(baseline direct signed POST p95 {summary['baseline_p95']:.2f} ms, ratio {summary['ratio_p95']:.1f}x); "
          f"delivered {len(hook)}/{len(hook) + missing}, signatures verified {good}/{total} "
          f"(target p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
