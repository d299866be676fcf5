"""Notification latency: a block -> the message received by an SMTP server and by a JSON receiver.

    .venv/bin/python bench/notify.py [--blocks 100] [--rounds 2] [--quick]

Runs a real ``hitl worker`` (a subprocess: the notifier thread reading the event stream, RQ
worker and scheduler) on a fresh state (real Redis, SQLite), with two channels: a real SMTP
server (aiosmtpd) and a real JSON receiver (``json://``), both on 127.0.0.1 in this process.
Each sample is one block on its own domain (so no storm grouping is involved): the clock
starts just before the crawler's own calls for a block on a browser tier
(``interventions.open_or_update``, which emits ``intervention.created``, then
``artifacts.attach`` with a 60 KB PNG screenshot) and stops when each server has read the
message (the email with the screenshot inline; the JSON POST); one process, one clock
(``perf_counter``). Blocks are made one at a time, each once both messages of the previous
one arrived: the worker is idle when a block happens.

Baseline, alternating round by round: the same message (title, text, HTML, screenshot) sent
to the same two servers by this process with Apprise directly (``channels.send``), so the
ratio is what the event stream, the rules, the outbox, the queue and the worker add.
Target: p95 <= 2 s for each channel.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
import zlib
from typing import Any

from benchlib.common import fresh_state_env, median, open_state, percentile, redis_server, table, workdir, write_result

TARGET_P95_MS = 2000
WAIT_S = 30  # the longest one message may take before the sample counts as missing


def png(width: int = 400, height: int = 300) -> bytes:
    """A real PNG of about 60 KB (noise does not compress), like a small screenshot."""
    rows = b"".join(b"\x00" + os.urandom(width // 2) + b"\x80" * (width * 3 - width // 2) for _ in range(height))
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def wait_for(counts: Any, n: int, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while any(len(c) < n for c in counts):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def block(state: Any, i: int, shot: bytes) -> None:
    """What the crawler does for a block on a browser tier (``runtime._open_with_artifacts``)."""
    from scrapy_hitl.state import artifacts, interventions

    data, _ = interventions.open_or_update(
        state, type="captcha_solve", reason="cloudflare_challenge", domain=f"shop-{i}.bench.test", spider="bench",
        url=f"https://shop-{i}.bench.test/p/1", response_status=403, evidence={"tier": "browser"})
    artifacts.attach(state.db, data["id"], {"screenshot": ("image/png", shot)})


def notify_round(state: Any, smtp: Any, receiver: Any, n: int, offset: int, shot: bytes) -> dict[str, Any]:
    mail_ms, json_ms, missing = [], [], 0
    for i in range(offset, offset + n):
        before = len(smtp.received_at)
        before_json = len(receiver.requests)
        start = time.perf_counter()
        block(state, i, shot)
        if not wait_for((smtp.received_at, receiver.requests), max(before, before_json) + 1):
            missing += 1
            continue
        mail_ms.append((smtp.received_at[before] - start) * 1000)
        json_ms.append((receiver.requests[before_json]["at"] - start) * 1000)
    return {"kind": "worker", "samples": n, "mail_ms": mail_ms, "json_ms": json_ms, "missing": missing}


def baseline_round(smtp: Any, receiver: Any, urls: dict[str, str], n: int, shot: bytes) -> dict[str, Any]:
    """The same message sent by this process with Apprise, straight to both servers."""
    from hitl_console.notify import channels, messages

    mail_ms, json_ms, missing = [], [], 0
    item = {"id": 1, "type": "captcha_solve", "reason": "cloudflare_challenge", "domain": "shop.bench.test",
            "spider": "bench", "parked_count": 0, "url": "https://shop.bench.test/p/1", "owner": None}
    files = [channels.Attachment(messages.SCREENSHOT_NAME, "image/png", shot)]
    for _ in range(n):
        before, before_json = len(smtp.received_at), len(receiver.requests)
        start = time.perf_counter()
        message = messages.compose("intervention", item, link="http://127.0.0.1:8000/interventions/1", age=0,
                                   extra={"screenshot": True})
        ok = all(channels.send(urls[k], title=message.title, body=message.text, html=message.html,
                               attachments=files).ok for k in ("mail", "json"))
        if not ok or not wait_for((smtp.received_at, receiver.requests), max(before, before_json) + 1):
            missing += 1
            continue
        mail_ms.append((smtp.received_at[before] - start) * 1000)
        json_ms.append((receiver.requests[before_json]["at"] - start) * 1000)
    return {"kind": "baseline", "samples": n, "mail_ms": mail_ms, "json_ms": json_ms, "missing": missing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=100, help="blocks per round (default 100)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of worker and baseline, alternating")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 blocks, 1 round")
    parser.add_argument("--out", help="JSON result file (default bench/results/notify.json)")
    ns = parser.parse_args(argv)
    if ns.quick:
        ns.blocks, ns.rounds = 10, 1

    from hitl_console.notify.channels import check_url
    from hitl_console.webhooks.worker import WorkerProcess
    from scrapy_hitl.state import notify_channels
    from tests.support.receiver import Receiver
    from tests.support.smtp import SmtpServer

    shot = png()
    runs: list[dict[str, Any]] = []
    with redis_server() as redis, workdir("notify") as wd:
        env = {**fresh_state_env(redis.url, wd), "HITL_PUBLIC_URL": "https://hitl.bench.test"}
        state = open_state(env)
        smtp, receiver = SmtpServer().start(), Receiver().start()
        port = receiver.server.server_address[1]
        urls = {"mail": smtp.url(), "json": f"json://127.0.0.1:{port}/hook"}
        for name, url in urls.items():
            scheme, redacted = check_url(url)
            notify_channels.add(state, name=name, url=url, scheme=scheme, redacted=redacted, actor="bench")
        worker = WorkerProcess(log_path=str(wd / "worker.log"), env=env).start()
        try:
            deadline = time.monotonic() + 60
            while not state.redis.exists("hitl:notify:cursor"):  # the notifier routes from now on
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the worker's notifier did not start; see {wd / 'worker.log'}")
                time.sleep(0.05)
            warm = notify_round(state, smtp, receiver, 3, 0, shot)  # the worker has run a job
            if warm["missing"]:
                raise RuntimeError("the worker sent nothing; its log:\n" + (wd / "worker.log").read_text()[-3000:])
            offset = 3
            for round_no in range(ns.rounds):
                for run in (notify_round(state, smtp, receiver, ns.blocks, offset, shot),
                            baseline_round(smtp, receiver, urls, ns.blocks, shot)):
                    offset += ns.blocks
                    run["round"] = round_no
                    runs.append(run)
                    print(f"  round {round_no + 1}/{ns.rounds}, {run['kind']}: email p95 "
                          f"{percentile(run['mail_ms'], 95):.1f} ms, json p95 {percentile(run['json_ms'], 95):.1f} ms"
                          f"{', MISSING ' + str(run['missing']) if run['missing'] else ''}", flush=True)
            inline = sum(1 for m in smtp.messages
                         if any(p.get("Content-ID") == "<screenshot.png>" for p in m.walk()))
            received = len(smtp.messages)
        finally:
            worker.stop()
            smtp.stop()
            receiver.stop()
            state.close()

    def pick(kind: str, key: str) -> list[float]:
        return [ms for r in runs if r["kind"] == kind for ms in r[key]]

    mail, js = pick("worker", "mail_ms"), pick("worker", "json_ms")
    base_mail, base_js = pick("baseline", "mail_ms"), pick("baseline", "json_ms")
    missing = sum(r["missing"] for r in runs)
    summary = {"mail_p50": median(mail), "mail_p95": percentile(mail, 95), "mail_max": max(mail, default=float("nan")),
               "json_p50": median(js), "json_p95": percentile(js, 95), "json_max": max(js, default=float("nan")),
               "baseline_mail_p95": percentile(base_mail, 95), "baseline_json_p95": percentile(base_js, 95),
               "missing": missing, "emails": received, "screenshots_inline": inline}
    print()
    print(table(["block -> message received (ms)", "n", "p50", "p95", "max"], [
        ["email (SMTP) via hitl worker", len(mail), summary["mail_p50"], summary["mail_p95"], summary["mail_max"]],
        ["json:// via hitl worker", len(js), summary["json_p50"], summary["json_p95"], summary["json_max"]],
        ["  baseline: Apprise email from here", len(base_mail), median(base_mail), summary["baseline_mail_p95"],
         max(base_mail, default=float("nan"))],
        ["  baseline: Apprise json from here", len(base_js), median(base_js), summary["baseline_json_p95"],
         max(base_js, default=float("nan"))],
    ]))
    met = max(summary["mail_p95"], summary["json_p95"]) <= TARGET_P95_MS and not missing and inline == received
    result = {"params": {"blocks": ns.blocks, "rounds": ns.rounds, "quick": ns.quick}, "runs": runs,
              "summary": summary, "target_p95_ms": TARGET_P95_MS, "meets_target": met}
    path = write_result("notify", result, ns.out)
    print(f"results: {path}")
    print(f"RESULT notify: email p50 {summary['mail_p50']:.1f} ms p95 {summary['mail_p95']:.1f} ms, "
          f"json p50 {summary['json_p50']:.1f} ms p95 {summary['json_p95']:.1f} ms "
          f"(baseline direct Apprise p95: email {summary['baseline_mail_p95']:.1f} ms, json "
          f"{summary['baseline_json_p95']:.1f} ms); missing {missing}, screenshots inline {inline}/{received} "
          f"(target p95 <= {TARGET_P95_MS} ms: {'met' if met else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
