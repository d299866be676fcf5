"""``hitl demo``: the whole loop on the local sandbox site, narrated.

It runs in its own data dir (./.hitl-demo) with its own embedded Redis and SQLite, so it
never touches your real state, and every run starts from a clean slate:

1. start the sandbox site; its "vip" section answers 403 until a cookie is sent
2. ``scrapy crawl sandbox`` of the demo project (quotes + vip sections)
3. the 403 parks the vip requests and opens an intervention; quotes keep crawling
4. the console (served alongside) shows it live; the intervention is resolved with a
   cookies.txt, by you in the console or the CLI, or by the demo itself through the
   console's JSON API (Enter; or after a moment with ``--auto``); or you cancel it
5. the parked requests resume in the same crawl, which completes with every item
6. in a terminal, the console stays up after the summary until Enter or Ctrl-C, so the run,
   its items and the domain can be browsed

No thread reads the terminal: the main thread polls it (``select`` on the file descriptor)
between events, so nothing holds stdin's lock when the interpreter exits. The crawl runs
in its own session: Ctrl-C reaches the demo only, which stops the crawl (SIGTERM, then
SIGKILL to its whole process group if it does not end) before it exits with status 130.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from hitl_console.auth.users import create_user
from hitl_console.server import ConsoleProcess, free_port
from hitl_console.words import plural
from scrapy_hitl.config import StateConfig
from scrapy_hitl.state import HitlState, RedisUnavailable, SchemaError
from scrapy_hitl.state.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
DEMO_PROJECT = ROOT / "projects" / "demo"
SANDBOX_PROJECT = ROOT / "projects" / "sandbox"
EXPECTED_PER_SECTION = 50  # 5 listing pages x 10 quotes, each with a detail page
DEMO_EMAIL = "demo@example.com"
CRAWL_STOP_TIMEOUT = 20  # seconds a crawl gets to shut down cleanly before its process group is killed


def register_demo_project(db: Any) -> str:
    """Register the repo's ``projects/demo`` as the project ``demo`` (``hitl demo``, ``hitl
    up``), so the console's Jobs page can start its spiders at once. A line saying what was
    done, or why not; "" when the package runs without the repo's projects (installed)."""
    from scrapy_hitl.state import projects

    if not (DEMO_PROJECT / "scrapy.cfg").is_file():
        return ""
    try:
        found = projects.add(db, DEMO_PROJECT, "demo")
    except projects.ProjectInvalid as exc:  # a project of yours is called demo: leave it be
        return f"Project   demo not registered: {exc}"
    spiders = ", ".join(found["spiders"]) or f"none ({found['spiders_error']})"
    return f"Project   demo ({DEMO_PROJECT}), spiders: {spiders}; start them from the console's Jobs page"


def _say(text: str, **style: Any) -> None:
    click.echo(click.style(text, **style))


def _hitl_command() -> str:
    exe = shutil.which("hitl") or str(Path(sys.executable).parent / "hitl")
    rel = os.path.relpath(exe)
    return exe if rel.startswith("..") else rel


class Keys:
    """Enter on the terminal, read without a thread: ``pressed()`` polls the descriptor.

    Lines are read with ``os.read`` on the descriptor, not through ``sys.stdin``: a thread
    blocked in ``sys.stdin.readline`` holds the buffer's lock, and an interpreter exiting
    under it aborts (``Fatal Python error: _enter_buffered_busy``)."""

    def __init__(self, interactive: bool) -> None:
        self.fd = sys.stdin.fileno() if interactive else None

    def pressed(self, timeout: float = 0.0) -> bool:
        """True when a line (Enter) came, or the input closed."""
        if self.fd is None:
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        data = os.read(self.fd, 4096)
        if not data:
            self.fd = None  # closed: nothing will ever come
            return True
        return b"\n" in data or b"\r" in data

    def wait(self) -> None:
        """Until Enter (or the input closes); Ctrl-C raises KeyboardInterrupt as usual."""
        while self.fd is not None and not self.pressed(0.5):
            pass


def run_demo(*, keep: bool, interactive: bool) -> int:
    """The demo; 0 when the loop completed (or you cancelled it), 130 after Ctrl-C."""
    try:
        return _run(keep=keep, interactive=interactive)
    except KeyboardInterrupt:
        _say("\nStopped (Ctrl-C): the crawl, the console and the sandbox site are down.", fg="yellow")
        return 130
    except (RedisUnavailable, SchemaError, RuntimeError) as exc:  # a known start-up failure: one message
        raise click.ClickException(str(exc)) from None


def _console_port(preferred: int) -> tuple[int, str]:
    """The port for the console, and why it is not ``preferred`` ("" when it is)."""
    port = free_port(preferred)
    if port == preferred:
        return port, ""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        listening = probe.connect_ex(("127.0.0.1", preferred)) == 0
    why = "another program listens there" if listening else "it cannot be bound"
    return port, f"Port {preferred} is taken ({why}): the console uses port {port} instead."


def _stop_crawl(crawl: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (Scrapy's graceful stop, which keeps what it parked), then SIGKILL to the whole
    process group if it has not ended: a crawl stuck in its shutdown must not outlive us."""
    if crawl is None:
        return
    if crawl.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(crawl.pid, signal.SIGTERM)
        try:
            crawl.wait(timeout=CRAWL_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(crawl.pid, signal.SIGKILL)  # and anything it started (a browser tier's Chromium)
    with contextlib.suppress(subprocess.TimeoutExpired):
        crawl.wait(timeout=10)


def _run(*, keep: bool, interactive: bool) -> int:
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
    port, moved = _console_port(int(os.environ.get("HITL_CONSOLE_PORT") or 8000))
    console = ConsoleProcess(port=port, log_path=str(data_dir / "console.log"))
    keys = Keys(interactive)
    try:
        password = secrets.token_urlsafe(9)
        create_user(state.db, DEMO_EMAIL, password, "admin")
        registered = register_demo_project(state.db)
        if registered:
            _say(registered)
        console.start()
        if moved:
            _say(moved, fg="yellow")
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
        # Its own session: the terminal's Ctrl-C reaches the demo, which stops the crawl itself.
        crawl = subprocess.Popen(
            cmd, cwd=DEMO_PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(DEMO_PROJECT)])},
            start_new_session=True,
        )
        outcome = _narrate(state, crawl, cookies, data_dir, keys, console=(console.url, DEMO_EMAIL, password))
        with contextlib.suppress(subprocess.TimeoutExpired):
            crawl.wait(timeout=120)
        code = _summary(state, items, outcome)
        if interactive:
            _say(f"\nThe console stays up: browse the run, its items and the domain at {console.url}/ "
                 f"(log in as {DEMO_EMAIL} / {password}). Press Enter to stop the demo.", bold=True)
            keys.wait()
        return code
    finally:
        # A second Ctrl-C must not cut the clean-up short: each step below is bounded.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            _stop_crawl(crawl)
            console.stop()
            sandbox.stop()
            state.close()
            if not keep:
                EmbeddedRedis(data_dir).stop()
        finally:
            signal.signal(signal.SIGINT, previous)


def _narrate(state: HitlState, crawl: subprocess.Popen[bytes], cookies: Path, data_dir: Path,
             keys: Keys, console: tuple[str, str, str]) -> dict[str, Any]:
    """Follow the event stream and tell the story; resolve when it is time (Enter, or after a
    moment without a terminal), unless you resolved or cancelled it in the console first."""
    last = "0-0"
    outcome: dict[str, Any] = {"parked": 0, "resumed": 0, "finish": None, "cancelled": None}
    pending: int | None = None  # the intervention the demo may resolve itself
    resolve_at: float | None = None  # without a terminal: when to resolve it
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
                pending = ev.intervention_id
                if keys.fd is not None:
                    _say("Or press Enter to have the demo resolve it through the console's API.", bold=True)
                else:
                    resolve_at = time.monotonic() + 1.5
            elif ev.type == "requests.parked":
                outcome["parked"] += p.get("count", 0)
                _say(f"parked {plural(p.get('count', 0), 'request')} for {ev.domain} "
                     f"(total waiting: {p.get('total')})")
            elif ev.type == "run.waiting" and not p.get("closed"):
                _say("the crawl is waiting for a human (every remaining request is parked)", fg="magenta")
            elif ev.type == "intervention.resolved":
                pending = resolve_at = None
                _say(f"intervention #{ev.intervention_id} resolved ({p.get('action')}); "
                     f"{plural(p.get('parked') or 0, 'parked request')} "
                     f"{'resumes' if p.get('parked') == 1 else 'resume'}", fg="green", bold=True)
            elif ev.type == "intervention.cancelled":
                pending = resolve_at = None
                outcome["cancelled"] = ev.domain
                note = f" ({p['note']})" if p.get("note") else ""
                _say(f"intervention #{ev.intervention_id} cancelled{note}: "
                     f"{plural(p.get('failed') or 0, 'parked request')} of {ev.domain} failed; "
                     "the crawl goes on without them", fg="yellow", bold=True)
            elif ev.type == "requests.resumed":
                outcome["resumed"] += p.get("count", 0)
                _say(f"resumed {plural(p.get('count', 0), 'request')} to {ev.domain}", fg="green")
            elif ev.type in ("run.completed", "run.failed") or (ev.type == "run.waiting" and p.get("closed")):
                outcome["finish"] = p.get("finish_reason")
                return outcome
        if pending is not None and (keys.pressed() or (resolve_at is not None and time.monotonic() >= resolve_at)):
            _resolve(pending, cookies, console)
            pending = resolve_at = None
        if crawl.poll() is not None and outcome["finish"] is None:
            _say(f"The crawl exited with code {crawl.returncode}; see {data_dir / 'crawl.log'}", fg="red")
            return outcome
    return outcome


def _resolve(intervention_id: int, cookies: Path, console: tuple[str, str, str]) -> None:
    """Resolve through the console's JSON API, as an agent or a script would."""
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
        if exc.code != 409:  # 409: you resolved or cancelled it first, in the console or the CLI
            _say(f"The console answered {exc.code}: {body}", fg="red")
        return
    _say(f"POST /api/v1/interventions/{intervention_id}/resolve (cookies from {cookies.name}): "
         f"{plural(answer['requests_resumed'], 'parked request')} released", bold=True)


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
        cancelled = str(outcome.get("cancelled") or "").startswith(f"{section}.")
        mark = "ok" if n == EXPECTED_PER_SECTION else "cancelled" if cancelled else "MISSING"
        _say(f"  {section:7} {n:>3} / {EXPECTED_PER_SECTION} items  {mark}")
    _say(f"  parked {outcome['parked']}, resumed {outcome['resumed']}, finish reason: {outcome['finish']}")
    if outcome.get("cancelled"):
        _say(f"You cancelled the intervention, so the requests parked for {outcome['cancelled']} failed "
             "and its pages were not crawled; every other domain was crawled as usual. Run the demo "
             "again and resolve it to see the crawl resume.", fg="yellow")
        return 0 if by_section.get("quotes", 0) == EXPECTED_PER_SECTION else 1
    ok = all(by_section.get(s, 0) == EXPECTED_PER_SECTION for s in ("quotes", "vip"))
    if ok:
        _say("One human action unblocked the domain; the crawl resumed by itself and lost nothing. "
             "The vault keeps the session, so the next run will not be blocked.", fg="green")
    else:
        _say("The demo did not complete the loop; see .hitl-demo/crawl.log", fg="red")
    return 0 if ok else 1
