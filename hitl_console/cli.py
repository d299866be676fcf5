"""The ``hitl`` command: run the local stack, the demo, and resolve interventions.

Every listing and ``show`` takes ``--json`` for scripts. Errors exit non-zero with a
message that says what to do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hitl_console.words import plural
from scrapy_hitl.config import StateConfig

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState


def lone_redis_warning(config: StateConfig) -> str | None:
    """A worker with a shared database but its own embedded Redis: on a second host it would
    run jobs, parks and pauses nobody else sees (docs/deploy.md). None when that is not so."""
    if config.redis_url or config.database_url.startswith("sqlite"):
        return None
    return (f"Warning: HITL_REDIS_URL is not set, so this host uses its own embedded Redis (in "
            f"{config.data_dir}) while HITL_DATABASE_URL is a shared database: workers on other hosts "
            "will not see its jobs, parked requests or pauses. Set HITL_REDIS_URL to the Redis every "
            "host shares (docs/deploy.md).")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


class _Ctx:
    def __init__(self) -> None:
        self._state: HitlState | None = None
        self._started: Any = None  # hitl_console.embedded.StartedHere

    def state(self) -> HitlState:
        if self._state is None:
            from hitl_console.embedded import StartedHere
            from scrapy_hitl.state import HitlState, RedisUnavailable, SchemaError

            config = StateConfig.from_env()
            self._started = StartedHere(config)
            try:
                self._state = HitlState.open(config)
            except (RedisUnavailable, SchemaError) as exc:
                raise click.ClickException(str(exc)) from exc
        return self._state

    def close(self) -> None:
        """Close the state; stop the embedded Redis if this command started it and nobody else uses it."""
        if self._state is not None:
            self._state.close()
        note = self._started.finish() if self._started is not None else None
        if note:
            click.echo(note, err=True)


pass_ctx = click.make_pass_decorator(_Ctx, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scrapy-hitl")
@click.pass_context
def main(ctx: click.Context) -> None:
    """scrapy-hitl: crawls that pause instead of failing, and ask a human for help.

    State lives in HITL_DATA_DIR (default ./.hitl): a SQLite database and an embedded
    Redis, unless HITL_DATABASE_URL / HITL_REDIS_URL point elsewhere.
    """
    ctx.obj = _Ctx()
    ctx.call_on_close(ctx.obj.close)


# --- db -----------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create the database or upgrade it to the newest schema."""
    from scrapy_hitl.state.db import Database

    database = Database(StateConfig.from_env().database_url)
    before, after = database.upgrade()
    if before == after:
        click.echo(f"Database {database.safe_url} is up to date (schema {after}).")
    else:
        click.echo(f"Database {database.safe_url} upgraded: {before or 'empty'} -> {after}.")
    database.dispose()


@db.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the one this version needs."""
    from scrapy_hitl.state.db import Database

    database = Database(StateConfig.from_env().database_url)
    click.echo(f"current: {database.current_revision()}  head: {database.head_revision()}")
    database.dispose()


# --- stack ---------------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="the console's address")
@click.option("--port", default=8000, show_default=True, help="the console's port")
@click.option("--no-console", is_flag=True, help="only the database and Redis")
@click.option("--no-worker", is_flag=True, help="without the webhook worker (`hitl worker`)")
def up(host: str, port: int, no_console: bool, no_worker: bool) -> None:
    """Run the local stack in the foreground until Ctrl-C: database, Redis, the console and
    the webhook worker."""
    from hitl_console.stack import run_stack

    run_stack(StateConfig.from_env(), host=host, port=port, console=not no_console, worker=not no_worker)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="gunicorn worker processes")
@click.option("--threads", default=32, show_default=True, help="threads per worker (one per open websocket)")
def console(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the reviewers' console (gunicorn, gthread workers)."""
    from hitl_console.embedded import StartedHere
    from hitl_console.server import serve

    from scrapy_hitl.state.vault import VaultKeyError, check_key

    state_config = StateConfig.from_env()
    try:
        check_key(state_config.database_url, state_config.secret_key)  # the hosts' key, not its own
    except VaultKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    started = StartedHere(state_config)
    click.echo(f"Console on http://{host}:{port}/ (Ctrl-C stops it)")
    try:
        serve(host=host, port=port, workers=workers, threads=threads)
    finally:
        note = started.finish()  # its workers' connections are closed by now
        if note:
            click.echo(note, err=True)


@main.command()
@click.option("--burst", is_flag=True, help="Sweep once, run what is queued and due, then exit.")
@click.option("--name", help="The RQ worker name (default: random).")
@click.option("--sweep-interval", type=float, help="Seconds between sweeps (HITL_WEBHOOK_SWEEP_INTERVAL, 5).")
@click.option("--queues", default="crawls,webhooks", show_default=True,
              help="crawls (crawl jobs, docs/jobs.md), webhooks (deliveries and the sweep), or both")
def worker(burst: bool, name: str | None, sweep_interval: float | None, queues: str) -> None:
    """Run crawl jobs; deliver webhooks (RQ worker + scheduler), time out overdue consultations,
    skip overdue items. SIGTERM drains: no new job, running crawls stop gracefully and are queued again."""
    import logging

    from hitl_console.jobs.config import JobsConfig
    from hitl_console.jobs.worker import run_workers
    from hitl_console.notify.config import NotifyConfig
    from hitl_console.webhooks.config import WebhookConfig
    from scrapy_hitl.state import RedisUnavailable, SchemaError
    from scrapy_hitl.state.vault import VaultKeyError, check_key

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger("hitl_console").setLevel(logging.INFO)
    try:
        config = WebhookConfig.from_env(**({"sweep_interval": sweep_interval} if sweep_interval else {}))
        NotifyConfig.from_env()  # a bad HITL_NOTIFY_* / HITL_PUBLIC_URL is said here, not in a thread
        jobs_config = JobsConfig.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    wanted = tuple(dict.fromkeys(q.strip() for q in queues.split(",") if q.strip()))
    if not wanted or set(wanted) - {"crawls", "webhooks"}:
        raise click.BadParameter(f"{queues!r}: give crawls, webhooks or crawls,webhooks", param_hint="--queues")
    try:
        state_config = StateConfig.from_env()
        check_key(state_config.database_url, state_config.secret_key)  # one key for every host
        if warning := lone_redis_warning(state_config):
            click.echo(warning, err=True)
        run_workers(state_config, wanted, burst=burst, name=name, webhook_config=config,
                    jobs_config=jobs_config)
    except (RedisUnavailable, SchemaError, VaultKeyError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
def down() -> None:
    """Stop the embedded Redis that a crawl started in HITL_DATA_DIR."""
    from scrapy_hitl.state.redis_server import EmbeddedRedis

    config = StateConfig.from_env()
    if config.redis_url:
        raise click.ClickException("HITL_REDIS_URL is set: that Redis is not ours to stop.")
    if EmbeddedRedis(config.data_dir).stop():
        click.echo(f"Stopped the embedded Redis of {config.data_dir}.")
    else:
        click.echo(f"No embedded Redis is running for {config.data_dir}.")


@main.command()
@click.option("--keep", is_flag=True, help="Keep the demo's data dir afterwards.")
@click.option("--interactive/--auto", default=None,
              help="Wait for you to resolve (default when run in a terminal), or resolve by itself.")
def demo(keep: bool, interactive: bool | None) -> None:
    """Show the whole loop on a local sandbox site: block, park, resolve, resume."""
    from hitl_console.demo import run_demo

    sys.exit(run_demo(keep=keep, interactive=sys.stdin.isatty() if interactive is None else interactive))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def status(obj: _Ctx, as_json: bool) -> None:
    """Health of Redis and the database, parked requests, open interventions."""
    from hitl_console.status import collect_status, render_status

    data = collect_status(obj.state())
    if as_json:
        _echo_json(data)
    else:
        click.echo(render_status(data))


# --- interventions -------------------------------------------------------------------------------
@main.group()
def interventions() -> None:
    """List, show, resolve and cancel interventions."""


@interventions.command("list")
@click.option("--status", type=click.Choice(["open", "resolved", "cancelled", "expired", "all"]),
              default="open", show_default=True)
@click.option("--type", "type_", help="manual_access, login_refresh, captcha_solve, selector_fix, run_anomaly")
@click.option("--domain")
@click.option("--run", "run_id")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def interventions_list(obj: _Ctx, status: str, type_: str | None, domain: str | None,
                       run_id: str | None, limit: int, as_json: bool) -> None:
    """List interventions, newest first."""
    from scrapy_hitl.state.interventions import list_interventions

    rows = list_interventions(obj.state(), status=None if status == "all" else status,
                              type=type_, domain=domain, run_id=run_id, limit=limit)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo(f"No {'' if status == 'all' else status + ' '}interventions.")
        return
    click.echo(f"{'ID':>5}  {'STATUS':9}  {'TYPE':14}  {'REASON':24}  {'PARKED':>6}  DOMAIN")
    for r in rows:
        click.echo(f"{r['id']:>5}  {r['status']:9}  {r['type']:14}  {r['reason'][:24]:24}  "
                   f"{r['parked_count']:>6}  {r['domain']}")


def _get_intervention(obj: _Ctx, intervention_id: int) -> dict[str, Any]:
    from scrapy_hitl.state.interventions import InterventionNotFound, get

    try:
        return get(obj.state(), intervention_id)
    except InterventionNotFound as exc:
        raise click.ClickException(str(exc)) from exc


@interventions.command("show")
@click.argument("intervention_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def interventions_show(obj: _Ctx, intervention_id: int, as_json: bool) -> None:
    """Show one intervention, its history and its oldest parked requests."""
    data = _get_intervention(obj, intervention_id)
    if as_json:
        _echo_json(data)
        return
    for key in ("id", "status", "type", "reason", "vendor", "domain", "spider", "run_id", "url",
                "response_status", "parked_count", "created_at", "resolved_at", "resolved_by", "note"):
        if data.get(key) not in (None, ""):
            click.echo(f"{key:16} {data[key]}")
    click.echo("history:")
    for h in data["history"]:
        click.echo(f"  {h['at']}  {h['action']:10} {h['actor']}")
    if data.get("parked_requests"):
        click.echo("parked requests (oldest first):")
        for p in data["parked_requests"]:
            click.echo(f"  {p['park_id']:>8}  {p['url']}")
    if data["status"] == "open" and data["type"] == "run_anomaly":
        for alert in (data.get("evidence") or {}).get("alerts", []):
            click.echo(f"  {alert.get('monitor')}: {alert.get('message')}")
        click.echo(f"\nLook at run {data['run_id']}'s data, then: hitl interventions resolve {data['id']} --note ...")
    elif data["status"] == "open":
        click.echo(f"\nResolve: hitl interventions resolve {data['id']} --cookies cookies.txt")


@interventions.command("resolve")
@click.argument("intervention_id", type=int)
@click.option("--cookies", "cookies_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Cookies from your browser: Cookie-Editor JSON, cookies.txt, Playwright "
                   "storage_state JSON, or a raw Cookie: header.")
@click.option("--format", "fmt", type=click.Choice(["cookie-editor-json", "netscape",
              "playwright-storage-state", "cookie-header"]), help="Skip auto-detection.")
@click.option("--user-agent", help="The user agent of the browser the cookies came from.")
@click.option("--proxy", help="A proxy URL the session is bound to.")
@click.option("--note", default="", help="Why, for the audit trail.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def interventions_resolve(obj: _Ctx, intervention_id: int, cookies_file: Path | None, fmt: str | None,
                          user_agent: str | None, proxy: str | None, note: str, as_json: bool) -> None:
    """Resolve an intervention; its parked requests resume in running crawlers (or the next run)."""
    from scrapy_hitl.state.interventions import InterventionClosed, InterventionNotFound, resolve

    state = obj.state()
    cookies = None
    source_format = ""
    origins: tuple[dict[str, Any], ...] = ()
    if cookies_file is not None:
        domain = _get_intervention(obj, intervention_id)["domain"]
        parsed = _read_cookies(cookies_file, fmt, default_domain=domain)
        cookies, source_format, origins = parsed.cookies, parsed.format, parsed.origins
        user_agent = user_agent or parsed.user_agent
    try:
        result = resolve(state, intervention_id, cookies=cookies, user_agent=user_agent, proxy=proxy,
                         source_format=source_format, note=note, actor="cli", origins=origins)
    except (InterventionNotFound, InterventionClosed, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(result)
        return
    i = result["intervention"]
    msg = f"Resolved intervention {i['id']} ({i['type']} on {i['domain']})"
    if result["session"]:
        msg += f" with {plural(len(result['session']['cookie_names']), 'cookie')}"
    click.echo(msg + ".")
    if result["requests_to_resume"]:
        click.echo(f"{plural(result['requests_to_resume'], 'parked request')} will resume.")
    _echo_reruns(result["reruns"])


def _echo_reruns(reruns: dict[str, Any] | None) -> None:
    """Which crawls the resolve queued again, and how to resume those it could not."""
    for job in (reruns or {}).get("jobs", []):
        click.echo(f"Job {job['id']} queued again: it resumes run {job['run_id']} ({job['spider']}) "
                   f"on the next free `hitl worker`.")
    for manual in (reruns or {}).get("manual", []):
        click.echo(f"Run {manual['run_id']} ({manual['spider']}) has no crawler waiting. Resume it with:\n"
                   f"  {manual['command']}\n"
                   f"or register its project (`hitl projects add PATH`) so later resolves re-run it.")


def _read_cookies(path: Path, fmt: str | None, default_domain: str | None) -> Any:
    from scrapy_hitl.cookies import CookieFormatError, parse_cookies

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"Cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_cookies(raw, source=str(path), fmt=fmt, default_domain=default_domain)
    except CookieFormatError as exc:
        raise click.ClickException(str(exc)) from exc


@interventions.command("cancel")
@click.argument("intervention_id", type=int)
@click.option("--note", default="", help="Why, for the audit trail.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def interventions_cancel(obj: _Ctx, intervention_id: int, note: str, as_json: bool) -> None:
    """Give up: the domain's parked requests fail with reason intervention_cancelled."""
    from scrapy_hitl.state.interventions import InterventionClosed, InterventionNotFound, cancel

    try:
        result = cancel(obj.state(), intervention_id, note=note, actor="cli")
    except (InterventionNotFound, InterventionClosed) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(result)
        return
    click.echo(f"Cancelled intervention {intervention_id}; {plural(result['failed'], 'parked request')} failed.")
    _echo_reruns(result["reruns"])


# --- sessions ------------------------------------------------------------------------------------
@main.group()
def sessions() -> None:
    """The session vault: pools of named sessions per domain (values are never shown)."""


@sessions.command("list")
@click.argument("domain", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sessions_list(obj: _Ctx, domain: str | None, as_json: bool) -> None:
    """Every session (or DOMAIN's pool): health, age, uses, errors; never a value."""
    vault = obj.state().vault
    rows = vault.pool_info(domain) if domain else vault.list()
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("The vault is empty." if not domain else f"No session for {domain}.")
        return
    for r in rows:
        storage = f"  localStorage: {', '.join(o['origin'] for o in r['origins'])}" if r["origins"] else ""
        click.echo(f"{r['domain']:30} {r['name']:12} {r['health']:8} captured {r['captured_at'][:19]}  "
                   f"expires {(r['expires_at'] or 'never')[:19]}  uses {r['uses']}  errors {r['errors']}  "
                   f"cookies: {', '.join(r['cookie_names'])}{storage}")


@sessions.command("import")
@click.argument("domain")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default="default", show_default=True,
              help="The session's name in the domain's pool (an account: alice, buyer-2).")
@click.option("--replace", is_flag=True, help="Replace the session of that name if the domain has one.")
@click.option("--format", "fmt", type=click.Choice(["cookie-editor-json", "netscape",
              "playwright-storage-state", "cookie-header"]))
@click.option("--user-agent")
@click.option("--proxy")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sessions_import(obj: _Ctx, domain: str, file: Path, name: str, replace: bool, fmt: str | None,
                    user_agent: str | None, proxy: str | None, as_json: bool) -> None:
    """Store a session for DOMAIN (cookies, and localStorage from a storage_state); crawls
    rotate over the domain's sessions."""
    from scrapy_hitl.state.vault import SessionExists, capture, check_name, normalize_domain

    domain = normalize_domain(domain)
    try:
        check_name(name)
    except ValueError as exc:
        raise click.ClickException(f"--name: {exc}") from exc
    parsed = _read_cookies(file, fmt, default_domain=domain)
    try:
        info = capture(obj.state(), domain, parsed.cookies, name=name, origins=parsed.origins,
                       user_agent=user_agent or parsed.user_agent, proxy=proxy, source_format=parsed.format,
                       captured_by="cli", replace=replace)
    except SessionExists as exc:
        raise click.ClickException(str(exc)) from exc
    except ValueError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    if as_json:
        _echo_json(info)
    else:
        storage = f" and localStorage of {plural(len(info['origins']), 'origin')}" if info["origins"] else ""
        click.echo(f"Stored {plural(len(info['cookie_names']), 'cookie')}{storage} for {domain} as session "
                   f"{info['name']!r} ({parsed.format}).")


@sessions.command("delete")
@click.argument("domain")
@click.option("--name", help="Delete only this session of the domain's pool (default: all of them).")
@pass_ctx
def sessions_delete(obj: _Ctx, domain: str, name: str | None) -> None:
    from scrapy_hitl.state.vault import forget, normalize_domain

    domain = normalize_domain(domain)
    if not forget(obj.state(), domain, name=name, reason="deleted"):
        what = f"No session named {name!r} for {domain}" if name else f"No session for {domain}"
        raise click.ClickException(f"{what}. See `hitl sessions list`.")
    click.echo(f"Deleted the session {name!r} of {domain}." if name else f"Deleted the sessions of {domain}.")


# --- users ---------------------------------------------------------------------------------------
@main.group()
def user() -> None:
    """Console accounts: reviewers and admins."""


@user.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["reviewer", "admin"]), default="reviewer", show_default=True)
@click.option("--password", help="For scripts; prompted for (hidden, twice) when omitted.")
@pass_ctx
def user_create(obj: _Ctx, email: str, role: str, password: str | None) -> None:
    """Create a console account."""
    from hitl_console.auth.users import UserError, create_user

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        created = create_user(obj.state().db, email, password, role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created {created['role']} {created['email']} (id {created['id']}).")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def user_list(obj: _Ctx, as_json: bool) -> None:
    """List console accounts, oldest first."""
    from hitl_console.auth.users import list_users

    rows = list_users(obj.state().db)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No console accounts. Create one with `hitl user create EMAIL --role admin`.")
        return
    click.echo(f"{'ID':>4}  {'ROLE':8}  {'STATUS':8}  {'LAST LOGIN':19}  EMAIL")
    for r in rows:
        click.echo(f"{r['id']:>4}  {r['role']:8}  {'active' if r['active'] else 'disabled':8}  "
                   f"{(r['last_login_at'] or 'never')[:19]:19}  {r['email']}")


def _update_user(obj: _Ctx, email: str, **changes: Any) -> dict[str, Any]:
    from hitl_console.auth.users import UserError, find_user, update_user

    found = find_user(obj.state().db, email)
    if found is None:
        raise click.ClickException(f"No console account {email.strip().lower()}. See `hitl user list`.")
    try:
        updated = update_user(obj.state().db, found["id"], **changes)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    assert updated is not None
    return updated


@user.command("password")
@click.argument("email")
@click.option("--password", help="For scripts; prompted for (hidden, twice) when omitted.")
@pass_ctx
def user_password(obj: _Ctx, email: str, password: str | None) -> None:
    """Set a new password. Every login made with the old one is signed out."""
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    updated = _update_user(obj, email, password=password)
    click.echo(f"Changed the password of {updated['email']}; its existing logins are signed out.")


@user.command("disable")
@click.argument("email")
@pass_ctx
def user_disable(obj: _Ctx, email: str) -> None:
    """Disable an account: it cannot log in, and its existing logins are signed out."""
    updated = _update_user(obj, email, active=False)
    click.echo(f"Disabled {updated['email']}; its existing logins are signed out.")


@user.command("enable")
@click.argument("email")
@pass_ctx
def user_enable(obj: _Ctx, email: str) -> None:
    """Enable a disabled account again (its old logins stay signed out: log in again)."""
    updated = _update_user(obj, email, active=True)
    click.echo(f"Enabled {updated['email']}.")


# --- API keys ------------------------------------------------------------------------------------
@main.group()
def apikey() -> None:
    """Agents' API keys (for the consultations API)."""


@apikey.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "key", "webhook_secret"} only.')
@pass_ctx
def apikey_create(obj: _Ctx, name: str, as_json: bool) -> None:
    """Create a key for an agent. The key and its webhook secret are shown this once."""
    from scrapy_hitl.state import apikeys

    try:
        info, key, secret = apikeys.create(obj.state(), name, created_by="cli")
    except apikeys.ApiKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json({"id": info["id"], "key": key, "webhook_secret": secret})
        return
    click.echo(f"Created API key {info['id']} ({info['name']}).\n")
    click.echo(f"  key:            {key}")
    click.echo(f"  webhook secret: {secret}\n")
    click.echo("Store both now: they are shown only this once (only a hash of the key is kept).\n"
               "The agent sends 'Authorization: Bearer <key>'; the webhook secret verifies callbacks.")


@apikey.command("list")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def apikey_list(obj: _Ctx, active: bool, as_json: bool) -> None:
    """List keys, oldest first (never the keys themselves: their prefixes)."""
    from scrapy_hitl.state import apikeys

    rows = apikeys.list_(obj.state(), include_revoked=not active)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No API keys. Create one with `hitl apikey create NAME`.")
        return
    click.echo(f"{'ID':>4}  {'PREFIX':24}  {'STATUS':7}  {'LAST USED':19}  NAME")
    for r in rows:
        click.echo(f"{r['id']:>4}  {r['prefix']:24}  {'revoked' if r['revoked_at'] else 'active':7}  "
                   f"{(r['last_used_at'] or 'never')[:19]:19}  {r['name']}")


def _apikey_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an apikeys function; its refusals exit 1 with their message."""
    from scrapy_hitl.state import apikeys

    try:
        return fn(*args, **kwargs)
    except (apikeys.ApiKeyNotFound, apikeys.ApiKeyError) as exc:
        raise click.ClickException(str(exc)) from exc


@apikey.command("show")
@click.argument("key_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def apikey_show(obj: _Ctx, key_id: int, as_json: bool) -> None:
    """One key: name, prefix, who made it and when, last use, revocation, webhook state."""
    from scrapy_hitl.state import apikeys

    info = _apikey_call(apikeys.get, obj.state(), key_id)
    if as_json:
        _echo_json(info)
        return
    for field in ("id", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at",
                  "webhook_disabled_at", "previous_secret_expires_at"):
        click.echo(f"{field + ':':27} {'-' if info[field] is None else info[field]}")


@apikey.command("rename")
@click.argument("key_id", type=int)
@click.argument("name")
@pass_ctx
def apikey_rename(obj: _Ctx, key_id: int, name: str) -> None:
    """Rename a key (the key itself does not change)."""
    from scrapy_hitl.state import apikeys

    info = _apikey_call(apikeys.update, obj.state(), key_id, name=name)
    click.echo(f"Renamed API key {info['id']} to {info['name']}.")


@apikey.command("revoke")
@click.argument("key_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def apikey_revoke(obj: _Ctx, key_id: int, as_json: bool) -> None:
    """Revoke a key: it gets 401 from now on. This cannot be undone."""
    from scrapy_hitl.state import apikeys

    info = _apikey_call(apikeys.revoke, obj.state(), key_id)
    if as_json:
        _echo_json(info)
        return
    click.echo(f"Revoked API key {info['id']} ({info['name']}).")


@apikey.command("rotate-secret")
@click.argument("key_id", type=int)
@click.option("--grace", "grace_seconds", type=int, default=24 * 3600, show_default=True,
              help="Seconds the current secret keeps signing too (a second signature); 0 stops it now.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "webhook_secret", "previous_secret_expires_at"}.')
@pass_ctx
def apikey_rotate_secret(obj: _Ctx, key_id: int, grace_seconds: int, as_json: bool) -> None:
    """A new webhook secret for a key, shown this once. The key itself does not change."""
    from scrapy_hitl.state import apikeys

    info, secret = _apikey_call(apikeys.rotate_webhook_secret, obj.state(), key_id, grace_seconds=grace_seconds)
    if as_json:
        _echo_json({"id": info["id"], "webhook_secret": secret,
                    "previous_secret_expires_at": info["previous_secret_expires_at"]})
        return
    click.echo(f"New webhook secret for API key {info['id']} ({info['name']}):\n\n  {secret}\n")
    if info["previous_secret_expires_at"]:
        click.echo(f"The previous secret also signs until {info['previous_secret_expires_at']}: "
                   "switch the receiver over before then.")
    else:
        click.echo("The previous secret no longer signs.")
    click.echo("Store the new secret now: it is shown only this once.")


# --- consultations -------------------------------------------------------------------------------
@main.group("consultations")
def consultations_group() -> None:
    """Questions agents and spiders ask a human: list, show, answer, cancel."""


def _consultation_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from scrapy_hitl.state import consultations as service

    try:
        return fn(*args, **kwargs)
    except (service.ConsultationNotFound, service.ConsultationClosed) as exc:
        raise click.ClickException(str(exc)) from exc
    except service.AnswerInvalid as exc:
        where = f" (at {exc.detail['json_path']})" if exc.detail.get("json_path", "$") != "$" else ""
        raise click.ClickException(f"The answer does not fit: {exc}{where}") from exc


@consultations_group.command("list")
@click.option("--state", type=click.Choice(["pending", "responded", "callback_sent", "callback_failed",
                                            "timed_out", "cancelled", "all"]), default="pending", show_default=True)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def consultations_list(obj: _Ctx, state: str, limit: int, as_json: bool) -> None:
    """The queue: highest priority first, then oldest."""
    from scrapy_hitl.state import consultations as service

    rows = service.list_(obj.state(), state=None if state == "all" else state, order="priority", limit=limit)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo(f"No {'' if state == 'all' else state + ' '}consultations.")
        return
    click.echo(f"{'ID':>5}  {'STATE':15}  {'PRIO':>4}  {'ASKED BY':20}  TITLE")
    for r in rows:
        click.echo(f"{r['id']:>5}  {r['state']:15}  {r['priority']:>4}  {r['asked_by'][:20]:20}  {r['title']}")


@consultations_group.command("show")
@click.argument("consultation_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def consultations_show(obj: _Ctx, consultation_id: int, as_json: bool) -> None:
    """One consultation: the question, its context, what an answer must be, its history."""
    from scrapy_hitl.state import consultations as service

    data = _consultation_call(service.get, obj.state(), consultation_id)
    if as_json:
        _echo_json(data)
        return
    click.echo(f"#{data['id']} [{data['state']}] {data['title']}  (asked by {data['asked_by']}, "
               f"priority {data['priority']}, due {data['deadline_at']})")
    if data["description"]:
        click.echo(f"\n{data['description']}")
    if data["context"] is not None:
        click.echo("\ncontext:\n" + json.dumps(data["context"], indent=2, ensure_ascii=False))
    if data["options"] is not None:
        click.echo("\noptions: " + ", ".join(f"{o['value']!r}" + (f" ({o['label']})" if o["label"] != o["value"] else "")
                                            for o in data["options"]))
    elif data["response_schema"] is not None:
        click.echo("\nthe answer must satisfy:\n" + json.dumps(data["response_schema"], indent=2))
    if data["response"] is not None:
        click.echo(f"\nanswer: {json.dumps(data['response'], ensure_ascii=False)} (by {data['responded_by']})")
    click.echo("\nhistory:")
    for h in data["history"]:
        click.echo(f"  {h['at'][:19]}  {h['action']:15}  {h['actor']}")


@consultations_group.command("respond")
@click.argument("consultation_id", type=int)
@click.argument("answer")
@click.option("--json-answer", "parse", is_flag=True, help="ANSWER is JSON (an object for a response_schema).")
@click.option("--by", "actor", default="cli", show_default=True, help="Who answers, for the history.")
@pass_ctx
def consultations_respond(obj: _Ctx, consultation_id: int, answer: str, parse: bool, actor: str) -> None:
    """Answer a pending consultation: an option's value, or with --json-answer a JSON value."""
    from scrapy_hitl.state import consultations as service

    value: Any = answer
    if parse:
        try:
            value = json.loads(answer)
        except ValueError as exc:
            raise click.ClickException(f"ANSWER is not JSON: {exc}") from exc
    data = _consultation_call(service.respond, obj.state(), consultation_id, value, actor=actor)
    click.echo(f"Answered consultation {data['id']} ({data['title']}).")


@consultations_group.command("cancel")
@click.argument("consultation_id", type=int)
@click.option("--reason", default="", help="Kept in the history.")
@pass_ctx
def consultations_cancel(obj: _Ctx, consultation_id: int, reason: str) -> None:
    """Withdraw a pending consultation (whoever asked gets 'cancelled')."""
    from scrapy_hitl.state import consultations as service

    data = _consultation_call(service.cancel, obj.state(), consultation_id, actor="cli", reason=reason)
    click.echo(f"Cancelled consultation {data['id']} ({data['title']}).")


# --- export --------------------------------------------------------------------------------------
@main.command("export")
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl", "csv", "xlsx"]), default="jsonl",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: standard output; required for xlsx).")
@pass_ctx
def export(obj: _Ctx, run_id: str, fmt: str, output: Path | None) -> None:
    """Write RUN_ID's delivered and approved items (reviewed versions). See docs/quality.md."""
    from scrapy_hitl.quality.export import export_run
    from scrapy_hitl.state.runs import get_run

    state = obj.state()
    if get_run(state.db, run_id) is None:
        raise click.ClickException(f"No run with id {run_id}. The crawl log and the console's Runs page show ids.")
    if output is None:
        if fmt == "xlsx":
            raise click.UsageError("XLSX is a binary file: give -o FILE.")
        n = export_run(state.db, run_id, fmt, click.get_text_stream("stdout"))
    else:
        # Written next to the target, then renamed: an interrupted export leaves no half file.
        part = output.with_name(output.name + ".part")
        try:
            if fmt == "xlsx":
                n = export_run(state.db, run_id, fmt, part)
            else:
                with part.open("w", encoding="utf-8", newline="") as fh:
                    n = export_run(state.db, run_id, fmt, fh)
            part.replace(output)
        finally:
            part.unlink(missing_ok=True)
    click.echo(f"Exported {n} items of run {run_id} ({fmt}){f' to {output}' if output else ''}.", err=True)


# --- spiders and domains -------------------------------------------------------------------------
@main.group()
def spiders() -> None:
    """Pause or unpause a whole spider (every crawler of it, on every host)."""


@spiders.command("pause")
@click.argument("spider")
@pass_ctx
def spiders_pause(obj: _Ctx, spider: str) -> None:
    from scrapy_hitl.state import pauses

    if pauses.set_spider_paused(obj.state(), spider, True, by="cli"):
        click.echo(f"Paused {spider}: its requests are parked until `hitl spiders unpause {spider}`.")
    else:
        click.echo(f"{spider} is already paused.")


@spiders.command("unpause")
@click.argument("spider")
@pass_ctx
def spiders_unpause(obj: _Ctx, spider: str) -> None:
    from scrapy_hitl.state import pauses

    if pauses.set_spider_paused(obj.state(), spider, False, by="cli"):
        click.echo(f"Unpaused {spider}; its parked requests resume.")
    else:
        click.echo(f"{spider} was not paused.")


@main.group("domains")
def domains_group() -> None:
    """What the crawler learned per domain."""


@domains_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def domains_list(obj: _Ctx, as_json: bool) -> None:
    from scrapy_hitl.state import domains

    rows = domains.list_domains(obj.state().db)
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"{'DOMAIN':30} {'CLASS':7} {'SESSION':13} {'ATTEMPTS':>8} {'403%':>6} {'CAPTCHA%':>8}")
    for r in rows:
        click.echo(f"{r['domain']:30} {r['access_class']:7} {r['requires_session']:13} {r['attempts']:>8} "
                   f"{r['block_rate_403'] * 100:>5.0f}% {r['captcha_rate'] * 100:>7.0f}%")


@domains_group.command("set")
@click.argument("domain")
@click.option("--requires-session", type=click.Choice(["unknown", "required", "not_required"]))
@click.option("--access-class", type=click.Choice(["public", "infra", "human"]))
@pass_ctx
def domains_set(obj: _Ctx, domain: str, requires_session: str | None, access_class: str | None) -> None:
    """Override what was learned about DOMAIN."""
    from scrapy_hitl.state import domains

    fields = {k: v for k, v in (("requires_session", requires_session), ("access_class", access_class)) if v}
    if not fields:
        raise click.UsageError("Give --requires-session and/or --access-class.")
    _echo_json(domains.update(obj.state().db, domain, **fields))


from hitl_console.cli_selectors import selectors as _selectors  # noqa: E402 (docs/selectors.md)

main.add_command(_selectors)

from hitl_console.cli_notify import notify as _notify  # noqa: E402 (docs/notifications.md)

main.add_command(_notify)


from hitl_console.cli_jobs import jobs_group as _jobs, projects_group as _projects  # noqa: E402 (docs/jobs.md)

main.add_command(_projects)
main.add_command(_jobs)

import hitl_console.cli_schedules  # noqa: E402, F401 (adds `hitl jobs schedule|schedules|unschedule`)

from hitl_console.cli_sessions import sessions_check, sessions_probe  # noqa: E402 (docs/sessions.md)

sessions.add_command(sessions_probe)
sessions.add_command(sessions_check)


if __name__ == "__main__":  # pragma: no cover
    main()
