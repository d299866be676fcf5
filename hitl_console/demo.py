"""``hitl demo``: the whole loop on the local sandbox site, narrated.

It runs in its own data dir (./.hitl-demo) with its own embedded Redis and SQLite, so it
never touches your real state, and every run starts from a clean slate:

1. start the sandbox site; its "vip" section answers 403 until a cookie is sent
2. ``scrapy crawl sandbox`` of the demo project (quotes + vip sections)
3. the 403 parks the vip requests and opens an intervention; quotes keep crawling
4. the console (served alongside) shows it live; the intervention is resolved with a
   cookies.txt, by you in the console or the CLI, or by the demo itself through the
   console's JSON API
5. the parked requests resume in the same crawl, which completes with every item
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from hitl_console.auth.users import create_user
from hitl_console.server import ConsoleProcess, free_port
from scrapy_hitl.config import StateConfig
from scrapy_hitl.state import HitlState
from scrapy_hitl.state.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
DEMO_PROJECT = ROOT / "projects" / "demo"
SANDBOX_PROJECT = ROOT / "projects" / "sandbox"
EXPECTED_PER_SECTION = 50  # 5 listing pages x 10 quotes, each with a detail page
DEMO_EMAIL = "demo@example.com"


def _say(text: str, **style: Any) -> None:
    click.echo(click.style(text, **style))


def _hitl_command() -> str:
    exe = shutil.which("hitl") or str(Path(sys.executable).parent / "hitl")
    rel = os.path.relpath(exe)
    return exe if rel.startswith("..") else rel


def run_demo(*, keep: bool, interactive: bool) -> int:
    data_dir = Path.cwd() / ".hitl-demo"
    if data_dir.exists():
        EmbeddedRedis(data_dir).stop()
        shutil.rmtree(data_dir)
    data_dir.mkdir(mode=0o700, parents=True)
    env = {
        "HITL_DATA_DIR": str(data_dir),
        "HITL_DATABASE_URL": f"sqlite:///{data_dir / 'hitl.db'}",
        "HITL_REDIS_URL": "",
        "HITL_SECRET_KEY": "",
    }
    os.environ.update(env)
    state = HitlState.open(StateConfig.from_env())

    sys.path.insert(0, str(SANDBOX_PROJECT))
    from sandbox.control import SandboxServer

    sandbox = SandboxServer()
    base = sandbox.start()
    crawl: subprocess.Popen[bytes] | None = None
    console = ConsoleProcess(port=free_port(int(os.environ.get("HITL_CONSOLE_PORT") or 8000)),
                             log_path=str(data_dir / "console.log"))
    try:
        password = secrets.token_urlsafe(9)
        create_user(state.db, DEMO_EMAIL, password, "admin")
        console.start()
        _say(f"Console on {console.url}/  log in as {DEMO_EMAIL} / {password}", fg="cyan", bold=True)
        _say(f"Sandbox site on {base}: quotes.sandbox.test is open, vip.sandbox.test answers 403 "
             "until it gets the vip_pass cookie.", fg="cyan")
        cookies = data_dir / "cookies.txt"
        cookies.write_text("# Netscape HTTP Cookie File\n"
                           "vip.sandbox.test\tFALSE\t/\tFALSE\t0\tvip_pass\tletmein\n")
        items = data_dir / "items.jsonl"
        log = data_dir / "crawl.log"
        cmd = [sys.executable, "-m", "scrapy", "crawl", "sandbox", "-a", f"base={base}",
               "-a", "sections=quotes,vip", "-o", f"{items}:jsonlines", "-s", f"LOG_FILE={log}",
               "-s", "HITL_PAUSE_TIMEOUT=600"]
        _say("$ scrapy crawl sandbox -a sections=quotes,vip   (log: .hitl-demo/crawl.log)", bold=True)
        crawl = subprocess.Popen(
            cmd, cwd=DEMO_PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(DEMO_PROJECT)])},
        )
        outcome = _narrate(state, crawl, cookies, data_dir, interactive,
                           console=(console.url, DEMO_EMAIL, password))
        crawl.wait(timeout=120)
        return _summary(state, items, outcome)
    finally:
        if crawl is not None and crawl.poll() is None:
            crawl.terminate()
        console.stop()
        sandbox.stop()
        state.close()
        if not keep:
            EmbeddedRedis(data_dir).stop()


def _narrate(state: HitlState, crawl: subprocess.Popen[bytes], cookies: Path, data_dir: Path,
             interactive: bool, console: tuple[str, str, str]) -> dict[str, Any]:
    """Follow the event stream and tell the story; resolve when it is time."""
    last = "0-0"
    outcome: dict[str, Any] = {"parked": 0, "resumed": 0, "finish": None}
    resolver: threading.Thread | None = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for ev in state.events.read(last, block_ms=200):
            last = ev.id or last
            p = ev.payload
            if ev.type == "run.started":
                _say(f"run {ev.run_id[:8]} started", fg="green")
            elif ev.type == "intervention.created":
                _say(f"\nBLOCKED  {ev.domain}: {p['reason']} on {p['url']}", fg="red", bold=True)
                _say(f"Intervention #{ev.intervention_id} opened ({p['type']}). The domain is paused "
                     "and its requests are parked in Redis; other domains keep crawling.")
                command = (f"HITL_DATA_DIR=.hitl-demo {_hitl_command()} interventions resolve "
                           f"{ev.intervention_id} --cookies {os.path.relpath(cookies)}")
                _say("Resolve it in the console: open", bold=True)
                _say(f"  {console[0]}/interventions/{ev.intervention_id}", fg="yellow")
                _say(f"and upload {os.path.relpath(cookies)}; or from a terminal:", bold=True)
                _say(f"  {command}\n", fg="yellow")
                resolver = threading.Thread(
                    target=_resolve_when_ready, daemon=True,
                    args=(ev.intervention_id, cookies, interactive, console),
                )
                resolver.start()
            elif ev.type == "requests.parked":
                outcome["parked"] += p.get("count", 0)
                _say(f"parked {p.get('count')} request(s) for {ev.domain} (total waiting: {p.get('total')})")
            elif ev.type == "run.waiting" and not p.get("closed"):
                _say("the crawl is waiting for a human (every remaining request is parked)", fg="magenta")
            elif ev.type == "intervention.resolved":
                _say(f"intervention #{ev.intervention_id} resolved ({p.get('action')}); "
                     f"{p.get('parked')} parked request(s) resume", fg="green", bold=True)
            elif ev.type == "requests.resumed":
                outcome["resumed"] += p.get("count", 0)
                _say(f"resumed {p.get('count')} request(s) to {ev.domain}", fg="green")
            elif ev.type in ("run.completed", "run.failed") or (ev.type == "run.waiting" and p.get("closed")):
                outcome["finish"] = p.get("finish_reason")
                return outcome
        if crawl.poll() is not None and outcome["finish"] is None:
            _say(f"The crawl exited with code {crawl.returncode}; see {data_dir / 'crawl.log'}", fg="red")
            return outcome
    return outcome


def _resolve_when_ready(intervention_id: int, cookies: Path, interactive: bool,
                        console: tuple[str, str, str]) -> None:
    """Resolve through the console's JSON API, as an agent or a script would."""
    if interactive:
        click.prompt("Press Enter to have the demo resolve it through the console's API",
                     default="", show_default=False, prompt_suffix="")
    else:
        time.sleep(1.5)
    url, email, password = console
    try:
        token = _post_json(f"{url}/api/v1/auth/login", {"email": email, "password": password})["access_token"]
        answer = _post_json(
            f"{url}/api/v1/interventions/{intervention_id}/resolve",
            {"resolution": {"action": "cookies"}, "note": "demo",
             "captured_session": {"cookies": cookies.read_text()}},
            token=token,
        )
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        if exc.code != 409:  # 409: you resolved it first, in the console or the CLI
            _say(f"The console answered {exc.code}: {body}", fg="red")
        return
    _say(f"POST /api/v1/interventions/{intervention_id}/resolve (cookies from {cookies.name}): "
         f"{answer['requests_resumed']} parked request(s) released", bold=True)


def _post_json(url: str, body: dict[str, Any], *, token: str | None = None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _summary(state: HitlState, items_path: Path, outcome: dict[str, Any]) -> int:
    items = [json.loads(x) for x in items_path.read_text().splitlines()] if items_path.exists() else []
    by_section: dict[str, int] = {}
    for item in items:
        by_section[item["section"]] = by_section.get(item["section"], 0) + 1
    _say("\nSummary", bold=True)
    for section in ("quotes", "vip"):
        n = by_section.get(section, 0)
        mark = "ok" if n == EXPECTED_PER_SECTION else "MISSING"
        _say(f"  {section:7} {n:>3} / {EXPECTED_PER_SECTION} items  {mark}")
    _say(f"  parked {outcome['parked']}, resumed {outcome['resumed']}, finish reason: {outcome['finish']}")
    ok = all(by_section.get(s, 0) == EXPECTED_PER_SECTION for s in ("quotes", "vip"))
    if ok:
        _say("One human action unblocked the domain; the crawl resumed by itself and lost nothing. "
             "The vault keeps the session, so the next run will not be blocked.", fg="green")
    else:
        _say("The demo did not complete the loop; see .hitl-demo/crawl.log", fg="red")
    return 0 if ok else 1
