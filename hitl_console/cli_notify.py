"""``hitl notify``: channels (Apprise URLs) and the rules that send events to them.

    hitl notify add URL [--name N]      hitl notify list      hitl notify test NAME
    hitl notify remove NAME             hitl notify log
    hitl notify rules list|add|set|remove|enable|disable

See docs/notifications.md.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState

ACTOR = "cli"
RULE_ID = click.IntRange(1, 2**31 - 1)  # ids a database column holds (32-bit in PostgreSQL)


def _state(ctx: click.Context) -> HitlState:
    return ctx.obj.state()


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _config() -> Any:
    from hitl_console.notify.config import NotifyConfig

    try:
        return NotifyConfig.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("notify")
def notify() -> None:
    """Tell people where they are: Slack, email, Teams, Telegram, ntfy, JSON... (Apprise URLs)."""


@notify.command("add")
@click.argument("url")
@click.option("--name", help="A short name for the channel (default: the URL's scheme).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def add(ctx: click.Context, url: str, name: str | None, as_json: bool) -> None:
    """Add a channel: an Apprise URL such as slack://T0/B0/XXXX or mailto://user:pass@example.com.

    The URL is stored encrypted and shown redacted. The first channel also gets the default
    rules: every intervention, and every consultation of priority 50 or more."""
    from hitl_console.notify.channels import ChannelUrlError, check_url
    from scrapy_hitl.state import notify_channels

    try:
        scheme, redacted = check_url(url)
    except ChannelUrlError as exc:
        raise click.ClickException(str(exc)) from exc
    state = _state(ctx)
    if not name:
        taken = {c["name"] for c in notify_channels.list_(state)}
        name = next(n for n in (scheme, *(f"{scheme}-{i}" for i in range(2, 10_000))) if n not in taken)
    try:
        channel = notify_channels.add(state, name=name, url=url.strip(), scheme=scheme, redacted=redacted,
                                      actor=ACTOR)
    except notify_channels.ChannelInvalid as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(channel)
        return
    click.echo(f"Added channel #{channel['id']} {channel['name']!r}: {channel['url']}")
    click.echo(f"Send it a test message with: hitl notify test {channel['name']}")


@notify.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """The channels, redacted, with their health."""
    from scrapy_hitl.state import notify_channels

    rows = notify_channels.list_(_state(ctx), failing_after=_config().failing_after)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No channels. Add one with: hitl notify add URL --name NAME")
        return
    for c in rows:
        health = (f"FAILING ({c['failures']} failed in a row: {c['last_error']})" if c["failing"]
                  else f"{c['failures']} failure(s) in a row" if c["failures"] else "ok")
        click.echo(f"#{c['id']:<4} {c['name']:20} {health}\n      {c['url']}")


@notify.command("test")
@click.argument("channel")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def test(ctx: click.Context, channel: str, as_json: bool) -> None:
    """Send CHANNEL (a name or id) a test message now and report what the service answered."""
    from hitl_console.notify.delivery import send_test
    from scrapy_hitl.state import notify_channels

    try:
        result = send_test(_state(ctx), _config(), channel, actor=ACTOR)
    except notify_channels.ChannelNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _echo_json(result)
    elif result["outcome"] == "delivered":
        click.echo(f"Sent a test message to {result['channel']!r}.")
    if result["outcome"] != "delivered":
        if not as_json:
            click.echo(f"Could not send to {result['channel']!r}: {result['error']}", err=True)
        ctx.exit(1)


@notify.command("remove")
@click.argument("channel")
@click.pass_context
def remove(ctx: click.Context, channel: str) -> None:
    """Remove CHANNEL (a name or id) and its message history."""
    from scrapy_hitl.state import notify_channels

    try:
        gone = notify_channels.remove(_state(ctx), channel)
    except notify_channels.ChannelNotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Removed channel #{gone['id']} {gone['name']!r}.")


@notify.command("log")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def log(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The latest messages: to which channel, about what, and how each attempt went."""
    from scrapy_hitl.state import notifications

    rows = notifications.list_(_state(ctx).db, limit=limit)
    if as_json:
        _echo_json(rows)
        return
    for n in rows:
        what = f"{n['subject_kind']} {n['subject_id']}".strip()
        grouped = f" x{n['grouped']}" if n["grouped"] > 1 else ""
        error = f"  ({n['last_error']})" if n["last_error"] and n["state"] != "delivered" else ""
        click.echo(f"#{n['id']:<5} {n['state']:9} {n['channel'] or n['channel_id']!s:16} {n['event_type']:22} "
                   f"{what}{grouped} attempts {n['attempts']}{error}")


# --- rules -----------------------------------------------------------------------------------------

_AFTER = re.compile(r"^(\d+(?:\.\d+)?)([smh]?):(.+)$")


def parse_step(value: str) -> dict[str, Any]:
    """``15m:oncall`` -> ``{"after": 900.0, "channel": "oncall"}`` (no unit: minutes)."""
    m = _AFTER.match(value.strip())
    if not m:
        raise click.BadParameter(f"{value!r}: write DELAY:CHANNEL, such as 15m:oncall, 90s:team or 1h:lead")
    factor = {"s": 1, "m": 60, "": 60, "h": 3600}[m.group(2)]
    channel = m.group(3)
    return {"after": float(m.group(1)) * factor, "channel": int(channel) if channel.isascii() and channel.isdigit() else channel}


@notify.group("rules", invoke_without_command=True)
@click.pass_context
def rules(ctx: click.Context) -> None:
    """Which events go to which channels (list, add, set, remove, enable, disable)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(rules_list)


def _rule_line(r: dict[str, Any], names: dict[int, str]) -> str:
    to = ", ".join(names.get(c, f"#{c}") for c in r["channels"]) or "every channel"
    f = r["filters"]
    parts = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in f.items()]
    esc = " -> ".join(f"{int(s['after'] // 60) if s['after'] >= 60 else s['after']}"
                      f"{'m' if s['after'] >= 60 else 's'}:{names.get(s['channel'], s['channel'])}"
                      for s in r["escalate"])
    return (f"#{r['id']:<4} {'on ' if r['enabled'] else 'OFF'} {r['name']!r}: {r['event']}"
            f"{' [' + ' '.join(parts) + ']' if parts else ''} to {to}{'; escalate ' + esc if esc else ''}")


@rules.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_list(ctx: click.Context, as_json: bool = False) -> None:
    from scrapy_hitl.state import notify_channels, notify_rules

    state = _state(ctx)
    rows = notify_rules.list_(state)
    if as_json:
        _echo_json(rows)
        return
    names = {c["id"]: c["name"] for c in notify_channels.list_(state)}
    if not rows:
        click.echo("No rules: nothing is sent. Add one with: hitl notify rules add intervention.created")
    for r in rows:
        click.echo(_rule_line(r, names))


@rules.command("add")
@click.argument("event")
@click.option("--name")
@click.option("--channel", "channels", multiple=True, help="A channel name or id (repeat; none: every channel).")
@click.option("--type", "types", multiple=True, help="Intervention types (repeat).")
@click.option("--domain", "domains", multiple=True, help="example.com or *.example.com (repeat).")
@click.option("--min-priority", type=int)
@click.option("--threshold", type=int, help="review_queue: items held for review before it fires.")
@click.option("--escalate", "steps", multiple=True,
              help="DELAY:CHANNEL, e.g. 15m:oncall then 30m:lead: told if nobody took the item by then.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_add(ctx: click.Context, event: str, name: str | None, channels: tuple[str, ...], types: tuple[str, ...],
              domains: tuple[str, ...], min_priority: int | None, threshold: int | None, steps: tuple[str, ...],
              as_json: bool) -> None:
    """Add a rule for EVENT: intervention.created, consultation.created, review_queue,
    run.failed, run_anomaly or job.failed."""
    from scrapy_hitl.state import notify_channels, notify_rules

    filters: dict[str, Any] = {"types": list(types) or None, "domains": list(domains) or None,
                               "min_priority": min_priority, "threshold": threshold}
    data = {"event": event, "name": name or event, "filters": {k: v for k, v in filters.items() if v is not None},
            "channels": list(channels), "escalate": [parse_step(s) for s in steps]}
    state = _state(ctx)
    try:
        rule = notify_rules.add(state, data, actor=ACTOR)
    except notify_rules.RuleInvalid as exc:
        raise click.ClickException(f"Rule not added: {exc}") from exc
    if as_json:
        _echo_json(rule)
    else:
        click.echo("Added " + _rule_line(rule, {c["id"]: c["name"] for c in notify_channels.list_(state)}))


@rules.command("set")
@click.argument("rule_id", type=RULE_ID)
@click.option("--event")
@click.option("--name")
@click.option("--channel", "channels", multiple=True, help="Replaces the rule's channels (repeat).")
@click.option("--all-channels", is_flag=True, help="Send to every channel.")
@click.option("--type", "types", multiple=True, help="Replaces the intervention types (repeat).")
@click.option("--domain", "domains", multiple=True, help="Replaces the domains (repeat).")
@click.option("--min-priority", type=int)
@click.option("--threshold", type=int)
@click.option("--escalate", "steps", multiple=True, help="Replaces the escalation chain: DELAY:CHANNEL (repeat).")
@click.option("--no-escalate", is_flag=True, help="Remove the escalation chain.")
@click.option("--clear-filters", is_flag=True, help="Remove every filter first.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_set(ctx: click.Context, rule_id: int, event: str | None, name: str | None, channels: tuple[str, ...],
              all_channels: bool, types: tuple[str, ...], domains: tuple[str, ...], min_priority: int | None,
              threshold: int | None, steps: tuple[str, ...], no_escalate: bool, clear_filters: bool,
              as_json: bool) -> None:
    """Change rule RULE_ID: only what is given changes; the whole rule is checked again."""
    from scrapy_hitl.state import notify_channels, notify_rules

    state = _state(ctx)
    try:
        rule = notify_rules.get(state, rule_id)
        filters = {} if clear_filters else dict(rule["filters"])
        for key, value in (("types", list(types)), ("domains", list(domains)), ("min_priority", min_priority),
                           ("threshold", threshold)):
            if value or (value is not None and not isinstance(value, list)):
                filters[key] = value
        changes: dict[str, Any] = {"filters": filters}
        if event:
            changes["event"] = event
        if name:
            changes["name"] = name
        if all_channels:
            changes["channels"] = []
        elif channels:
            changes["channels"] = list(channels)
        if no_escalate:
            changes["escalate"] = []
        elif steps:
            changes["escalate"] = [parse_step(step) for step in steps]
        rule = notify_rules.update_(state, rule_id, changes)
    except (notify_rules.RuleNotFound, notify_rules.RuleInvalid) as exc:
        raise click.ClickException(f"Rule not changed: {exc}") from exc
    if as_json:
        _echo_json(rule)
    else:
        click.echo("Changed " + _rule_line(rule, {c["id"]: c["name"] for c in notify_channels.list_(state)}))


def _rule_command(action: str) -> Any:
    @click.argument("rule_id", type=RULE_ID)
    @click.pass_context
    def command(ctx: click.Context, rule_id: int) -> None:
        from scrapy_hitl.state import notify_rules

        state = _state(ctx)
        try:
            if action == "remove":
                rule = notify_rules.remove(state, rule_id)
            else:
                rule = notify_rules.update_(state, rule_id, {"enabled": action == "enable"})
        except (notify_rules.RuleNotFound, notify_rules.RuleInvalid) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Rule #{rule['id']} {rule['name']!r}: {action}d.")

    command.__doc__ = f"{action.capitalize()} rule RULE_ID."
    return command


for _action in ("remove", "enable", "disable"):
    rules.command(_action)(_rule_command(_action))
