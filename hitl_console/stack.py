"""``hitl up``: the local stack in the foreground until Ctrl-C.

Creates or upgrades the database, runs the embedded Redis (unless HITL_REDIS_URL points at
another one), then serves the console (a ``hitl console`` child process) and runs the
webhook worker (a ``hitl worker`` child process: RQ worker, scheduler and sweep).
"""

from __future__ import annotations

import os
import signal
import threading

import click

from hitl_console.server import ConsoleProcess
from hitl_console.webhooks.worker import WorkerProcess
from scrapy_hitl.config import StateConfig
from scrapy_hitl.state.db import Database
from scrapy_hitl.state.redis_server import EmbeddedRedis, RedisUnavailable, connect


def run_stack(config: StateConfig, *, host: str = "127.0.0.1", port: int = 8000, console: bool = True,
              worker: bool = True) -> None:
    database = Database(config.database_url)
    before, after = database.upgrade()
    click.echo(f"Database  {database.safe_url}  schema {after}"
               + (f" (upgraded from {before or 'empty'})" if before != after else ""))
    # The repo's demo project, registered while Redis and the console start (`scrapy list`
    # takes a second or more): its line comes before Ready.
    from hitl_console.demo import register_demo_project

    registered: list[str] = []
    registering = threading.Thread(target=lambda: registered.append(register_demo_project(database)),
                                   name="hitl-register-demo", daemon=True)
    registering.start()

    embedded: EmbeddedRedis | None = None
    try:
        if config.redis_url:
            connect(config.redis_url, config.data_dir)
            click.echo(f"Redis     {config.redis_url} (HITL_REDIS_URL)")
        else:
            embedded = EmbeddedRedis(config.data_dir, server=config.redis_server)
            if embedded.is_running():
                click.echo(f"Redis     embedded, already running on {embedded.socket_path}")
                embedded = None  # someone else started it: not ours to stop
            else:
                embedded.run_foreground()
                click.echo(f"Redis     embedded on {embedded.socket_path} (AOF in {config.data_dir}; "
                           f"{embedded.binary})")
    except RedisUnavailable as exc:
        raise click.ClickException(str(exc)) from exc

    server: ConsoleProcess | None = None
    if console:
        server = ConsoleProcess(host=host, port=port, log_path=str(config.data_dir / "console.log"))
        try:
            server.start()
        except RuntimeError as exc:
            if embedded is not None:
                embedded.stop()
            raise click.ClickException(f"{exc}. Is port {port} taken? Pick another with --port.") from exc
        click.echo(f"Console   {server.url}/  (log: {config.data_dir / 'console.log'}; "
                   "create a login with `hitl user create EMAIL --role admin`)")

    webhooks: WorkerProcess | None = None
    if worker:
        log = config.data_dir / "worker.log"
        # notification links point at this console unless HITL_PUBLIC_URL says otherwise
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 (a bind-all address is no link)
        shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address, in brackets in a URL
        public = {} if os.environ.get("HITL_PUBLIC_URL") else {"HITL_PUBLIC_URL": f"http://{shown}:{port}"}
        webhooks = WorkerProcess(log_path=str(log), env=public).start()
        click.echo(f"Worker    webhooks, notifications, consultation timeouts and crawl jobs (log: {log})")

    registering.join()
    database.dispose()
    if registered and registered[0]:
        click.echo(registered[0])
    click.echo("Ready. Run `scrapy crawl` in your project; Ctrl-C stops the stack.")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    click.echo("Stopping...")
    if webhooks is not None:
        webhooks.stop()
    if server is not None:
        server.stop()
    if embedded is not None:
        embedded.stop()
    click.echo("Stopped.")
