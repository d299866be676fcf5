"""``hitl sessions probe`` and ``hitl sessions check``: the session health commands
(added to the ``hitl sessions`` group of :mod:`hitl_console.cli`; docs/sessions.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from hitl_console.cli import _Ctx


def _ctx() -> _Ctx:
    from hitl_console.cli import _Ctx  # here: hitl_console.cli imports this module at its end

    return click.get_current_context().ensure_object(_Ctx)


def _echo_json(data: Any) -> None:
    from hitl_console.cli import _echo_json as echo

    echo(data)


@click.command("probe")
@click.argument("domain")
@click.argument("url", required=False, default="")
@click.option("--selector", help="A CSS selector that a logged-in page shows (e.g. a.logout).")
@click.option("--status", type=int, help="The HTTP status a logged-in page answers (default 200 without --selector).")
@click.option("--browser", is_flag=True,
              help="Check it in headless Chromium, started from each session's cookies and localStorage "
                   "(for a site that keeps its login in localStorage). Default: a plain HTTP request.")
@click.option("--json", "as_json", is_flag=True)
def sessions_probe(domain: str, url: str, selector: str | None, status: int | None, browser: bool,
                   as_json: bool) -> None:
    """Set DOMAIN's health probe: URL, and what a logged-in page shows there. `hitl worker`
    fetches it with each session every HITL_SESSION_PROBE_INTERVAL seconds (in a browser with
    --browser). No URL removes it."""
    from scrapy_hitl.state import session_health

    if browser and not url:
        raise click.UsageError("--browser needs the URL to probe; without a URL the probe is removed.")
    try:
        info = session_health.set_probe(_ctx().state().db, domain, url=url, selector=selector, status=status,
                                        browser=browser)
    except session_health.ProbeError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(info)
    elif info["probe"] is None:
        click.echo(f"Removed the probe of {info['domain']}.")
    else:
        click.echo(f"Probe of {info['domain']}: {session_health.describe_probe(info['probe'])}.")


@click.command("check")
@click.option("--json", "as_json", is_flag=True)
def sessions_check(as_json: bool) -> None:
    """Run the probes and the refresh-ahead check once now (what `hitl worker` does on its schedule)."""
    from hitl_console.session_worker import SessionWorker, SessionWorkerConfig

    try:
        config = SessionWorkerConfig.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    result = SessionWorker(_ctx().state(), config).check(force=True)
    if as_json:
        _echo_json(result)
        return
    for p in result["probed"]:
        failed = ", ".join(f"{n} ({d})" for n, d in p["failed"].items())
        errors = ", ".join(f"{n} ({d})" for n, d in p.get("errors", {}).items())
        click.echo(f"{p['domain']}{' (checked in a browser)' if p.get('browser') else ''}: "
                   f"passed {', '.join(p['passed']) or 'none'}" + (f"; failed {failed}" if failed else "")
                   + (f"; not checked {errors}" if errors else ""))
    for i in result["refresh"]:
        click.echo(f"{i['domain']}: {i['evidence']['summary']} (intervention {i['id']})")
    if not result["probed"] and not result["refresh"]:
        click.echo("No probe is set and no session is near its end.")
