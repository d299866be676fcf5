"""``hitl selectors``: the selector overrides of spiders that declare their fields
(docs/selectors.md). The console's fixer and ``/api/v1/selectors`` write the same records."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from hitl_console.cli import _Ctx


def _ctx() -> _Ctx:
    from hitl_console.cli import _Ctx

    return click.get_current_context().ensure_object(_Ctx)


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group("selectors")
def selectors() -> None:
    """Selector overrides: repair a spider's declared fields without a code change."""


@selectors.command("list")
@click.option("--spider", help="only this spider's")
@click.option("--domain", help="only this domain's")
@click.option("--json", "as_json", is_flag=True)
def list_(spider: str | None, domain: str | None, as_json: bool) -> None:
    """The overrides in force (the newest version of each field)."""
    from scrapy_hitl.state import selectors as store

    rows = store.list_overrides(_ctx().state().db, spider=spider, domain=domain)
    if as_json:
        _echo(rows)
        return
    if not rows:
        click.echo("No selector overrides in force.")
    for r in rows:
        click.echo(f"{r['spider']:20} {r['domain']:28} {r['field']:16} v{r['version']:<3} {r['css'] or r['xpath']}"
                   f"  ({r['actor']}, {r['created_at']})")


@selectors.command("show")
@click.argument("spider")
@click.argument("domain")
@click.argument("field")
@click.option("--json", "as_json", is_flag=True)
def show(spider: str, domain: str, field: str, as_json: bool) -> None:
    """Every version of FIELD's override for SPIDER on DOMAIN, newest first (the audit trail)."""
    from scrapy_hitl.state import selectors as store

    try:
        rows = store.history(_ctx().state().db, spider, domain, field)
    except store.OverrideNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _echo(rows)
        return
    for r in rows:
        before = (r["before"] or {}).get("css") or (r["before"] or {}).get("xpath") or "(declared)"
        click.echo(f"v{r['version']} {r['action']:6} {before} -> {r['css'] or r['xpath'] or '(declared)'}  "
                   f"by {r['actor']} at {r['created_at']}{'  ' + r['note'] if r['note'] else ''}")


@selectors.command("set")
@click.argument("spider")
@click.argument("domain")
@click.argument("field")
@click.option("--css", help="the new CSS selector (keep ::text / ::attr(name) as the field had)")
@click.option("--xpath", help="an XPath instead of --css")
@click.option("--note", default="", help="why, for the audit trail")
@click.option("--force", is_flag=True, help="save even if it extracts nothing from the parked pages")
@click.option("--json", "as_json", is_flag=True)
def set_(spider: str, domain: str, field: str, css: str | None, xpath: str | None, note: str, force: bool,
         as_json: bool) -> None:
    """Save a selector for FIELD of SPIDER on DOMAIN (``_rows`` for the row selector,
    ``Class.field`` for an item class's field). Running crawls apply it at once."""
    from scrapy_hitl.state import selectors as store

    try:
        row = store.set_override(_ctx().state(), spider=spider, domain=domain, field=field, css=css, xpath=xpath,
                                 actor="cli", note=note, force=force)
    except store.SelectorRefused as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _echo(row)
    else:
        click.echo(f"{field} of {spider} on {domain}: v{row['version']} {row['css'] or row['xpath']}")


@selectors.command("revert")
@click.argument("spider")
@click.argument("domain")
@click.argument("field")
@click.option("--note", default="", help="why, for the audit trail")
@click.option("--json", "as_json", is_flag=True)
def revert(spider: str, domain: str, field: str, note: str, as_json: bool) -> None:
    """Undo the last change of FIELD: the selector before it comes back."""
    from scrapy_hitl.state import selectors as store

    try:
        row = store.revert(_ctx().state(), spider=spider, domain=domain, field=field, actor="cli", note=note)
    except store.OverrideNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        _echo(row)
    else:
        click.echo(f"{field} of {spider} on {domain}: v{row['version']} "
                   f"{row['css'] or row['xpath'] or '(back to the spider declaration)'}")


@selectors.command("export")
@click.argument("spider")
def export(spider: str) -> None:
    """Print SPIDER's overrides in force as a Python dict, to fold back into its code."""
    from scrapy_hitl.state import selectors as store

    click.echo(store.export(_ctx().state().db, spider), nl=False)


@selectors.command("suggest")
@click.argument("intervention_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="(always JSON)")
def suggest(intervention_id: int, as_json: bool) -> None:
    """Suggestions (JSON) for the broken fields of a selector_fix intervention."""
    from scrapy_hitl.state import interventions
    from scrapy_hitl.state import selectors as store

    state = _ctx().state()
    try:
        found = interventions.get(state, intervention_id, parked_limit=0)
    except interventions.InterventionNotFound as exc:
        raise click.ClickException(str(exc)) from None
    _echo(store.suggestions(state.db, found))
