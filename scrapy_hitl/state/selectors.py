"""Selector overrides (versioned, audited, revertible), the fields spiders declare, the
fingerprints of good elements and the pages the selector fixer works on.

One writer of overrides for the console, the CLI and the API: :func:`set_override` and
:func:`revert` validate (the selector parses, the field is declared, it extracts something
from the parked pages unless ``force``), write a new version and emit
``selector.overridden``, which running crawlers apply at once (scrapy_hitl.selectorbook).

Blocking I/O: the console, the CLI, workers, or a crawler's I/O thread. Core statements on
``tables`` (``Database.begin``): a crawl reads the overrides in force and keeps pages and
fingerprints here, and a static crawl never imports SQLAlchemy's ORM.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

from parsel import Selector
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from scrapy_hitl.fields import ROWS, Declaration, FieldsError, check_selector
from scrapy_hitl.state import tables
from scrapy_hitl.state.tables import iso, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.db import Database

MAX_PAGE_BYTES = 1_000_000  # HTML kept per page (the fixer shows and tests on it)
MISSED_KEPT = 20  # pages that missed their data, newest kept per spider and domain
SAMPLES_KEPT = 5  # fingerprints per spider, domain, pattern and field
EVENT = "selector.overridden"
_DECLARATIONS = tables.selector_declarations
_OVERRIDES = tables.selector_overrides
_FINGERPRINTS = tables.selector_fingerprints
_PAGES = tables.selector_pages


class SelectorRefused(ValueError):
    """An override that cannot be saved (unknown field, a selector that does not parse or
    extracts nothing without ``force``): the API answers 422 with this message."""

    def __init__(self, message: str, *, code: str = "invalid_selector", detail: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


class OverrideNotFound(LookupError):
    """No override of that spider, domain and field (the API answers 404)."""


# --- declarations ---------------------------------------------------------------------------
def publish_declaration(db: Database, spider: str, declarations: dict[str, Any]) -> None:
    """What the spider declares (prefix "" or "Class." -> Declaration.to_dict()), replacing
    what an earlier run published, merged so an item class seen once stays known."""
    try:
        _publish(db, spider, declarations)
    except IntegrityError:
        # Another crawl of the spider published its first declaration at the same moment: on
        # PostgreSQL FOR UPDATE locks no row that does not exist yet, and both inserted. Theirs
        # is stored now: merge into it.
        _publish(db, spider, declarations)


def _publish(db: Database, spider: str, declarations: dict[str, Any]) -> None:
    d = _DECLARATIONS.c
    with db.begin(locked=True) as conn:
        found = conn.execute(select(d.declaration).where(d.spider == spider).with_for_update()).first()
        if found is None:
            conn.execute(insert(_DECLARATIONS).values(spider=spider, declaration=dict(declarations)))
        else:
            conn.execute(update(_DECLARATIONS).where(d.spider == spider).values(
                declaration={**(found.declaration or {}), **declarations}, updated_at=utcnow()))


def declarations(db: Database, spider: str) -> dict[str, Declaration]:
    d = _DECLARATIONS.c
    with db.begin() as conn:
        found = conn.execute(select(d.declaration).where(d.spider == spider)).scalar()
    raw = dict(found) if found is not None else {}
    return {prefix: Declaration.from_dict(data, prefix) for prefix, data in raw.items()}


def field_keys(decls: dict[str, Declaration]) -> list[str]:
    return [k for d in decls.values() for k in d.keys()]


def _split(decls: dict[str, Declaration], key: str) -> tuple[Declaration, str]:
    prefix, _, name = key.rpartition(".")
    decl = decls.get(f"{prefix}." if prefix else "")
    if decl is None or (name != ROWS and name not in decl.fields) or (name == ROWS and not decl.rows):
        raise KeyError(key)
    return decl, name


# --- overrides ------------------------------------------------------------------------------
def _row(o: Row[Any]) -> dict[str, Any]:
    return {"id": o.id, "spider": o.spider, "domain": o.domain, "field": o.field, "version": o.version,
            "css": o.css, "xpath": o.xpath, "action": o.action, "before": o.before, "actor": o.actor,
            "note": o.note, "intervention_id": o.intervention_id, "created_at": iso(o.created_at)}


def _newest(conn: Connection, spider: str | None = None, domain: str | None = None) -> list[Row[Any]]:
    o = _OVERRIDES.c
    newest = select(o.spider, o.domain, o.field, func.max(o.version).label("v")).group_by(o.spider, o.domain, o.field)
    if spider:
        newest = newest.where(o.spider == spider)
    if domain:
        newest = newest.where(o.domain == domain)
    sub = newest.subquery()
    q = (select(_OVERRIDES).join(sub, (o.spider == sub.c.spider) & (o.domain == sub.c.domain)
                                 & (o.field == sub.c.field) & (o.version == sub.c.v))
         .order_by(o.spider, o.domain, o.field))
    return list(conn.execute(q))


def list_overrides(db: Database, *, spider: str | None = None, domain: str | None = None) -> list[dict[str, Any]]:
    """The overrides in force (newest version of each field, cleared ones left out)."""
    with db.begin() as conn:
        return [_row(o) for o in _newest(conn, spider, domain) if o.css or o.xpath]


def in_force(db: Database, spider: str) -> dict[str, dict[str, dict[str, Any]]]:
    """domain -> field key -> {"css", "xpath", "version"}: what a crawler applies."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for o in list_overrides(db, spider=spider):
        out.setdefault(o["domain"], {})[o["field"]] = {"css": o["css"], "xpath": o["xpath"], "version": o["version"]}
    return out


def history(db: Database, spider: str, domain: str, field: str) -> list[dict[str, Any]]:
    """Every version of one field's override, newest first."""
    o = _OVERRIDES.c
    with db.begin() as conn:
        found = [_row(r) for r in conn.execute(select(_OVERRIDES).where(
            o.spider == spider, o.domain == domain, o.field == field).order_by(o.version.desc()))]
    if not found:
        raise OverrideNotFound(f"No override of {field!r} for spider {spider!r} on {domain}")
    return found


def set_override(
    state: HitlState, *, spider: str, domain: str, field: str, css: str | None, xpath: str | None = None,
    actor: str, note: str = "", intervention_id: int | None = None, force: bool = False,
) -> dict[str, Any]:
    """Save a new version of ``field``'s selector for ``spider`` on ``domain`` and tell
    running crawlers. Raises SelectorRefused (unknown field, no parse, extracts nothing
    from the parked pages without ``force``)."""
    domain = domain.strip().lower()
    if not css and not xpath:
        raise SelectorRefused("send a CSS selector (css) or an XPath (xpath)", code="invalid")
    try:
        check_selector(css or None, None if css else xpath)
    except FieldsError as exc:
        raise SelectorRefused(str(exc)) from None
    decls = declarations(state.db, spider)
    try:
        _split(decls, field)
    except KeyError:
        known = field_keys(decls)
        raise SelectorRefused(
            f"spider {spider!r} declares no field {field!r}; declared: {', '.join(known) or 'none yet'}",
            code="unknown_field", detail={"declared": known}) from None
    if not force:
        found = preview(state.db, spider, domain, field, css=css, xpath=xpath)
        if found["pages"] and not any(p["matched"] for p in found["pages"]):
            raise SelectorRefused(
                f"{css or xpath!r} extracts nothing from any of the {len(found['pages'])} parked pages of "
                f"{domain}; check it, or save anyway (force)", code="matches_nothing")
    return _write(state, spider, domain, field, css or None, None if css else xpath, "set", actor, note,
                  intervention_id)


def revert(state: HitlState, *, spider: str, domain: str, field: str, actor: str, note: str = "") -> dict[str, Any]:
    """Undo the last change of ``field``: the selector in force before it comes back (the
    spider's declaration when the first override is reverted). A new version, so the revert
    is audited too; reverting a revert redoes the change."""
    current = history(state.db, spider, domain, field)[0]
    before = current["before"] or {}
    css, xpath = before.get("css"), before.get("xpath")
    return _write(state, spider, domain, field, css, xpath, "revert", actor, note, None)


def _write(state: HitlState, spider: str, domain: str, field: str, css: str | None, xpath: str | None,
           action: str, actor: str, note: str, intervention_id: int | None) -> dict[str, Any]:
    args = (state.db, spider, domain, field, css, xpath, action, actor, note, intervention_id)
    try:
        data = _insert_version(*args)
    except IntegrityError:  # another reviewer's version of the field came first: ours follows it
        data = _insert_version(*args)
    state.events.emit(EVENT, {"field": field, "css": css, "xpath": xpath, "version": data["version"],
                              "action": action, "actor": actor}, spider=spider, domain=domain)
    return data


def _insert_version(db: Database, spider: str, domain: str, field: str, css: str | None, xpath: str | None,
                    action: str, actor: str, note: str, intervention_id: int | None) -> dict[str, Any]:
    """The field's next version, after the newest one stored (IntegrityError if another
    writer stores that version first)."""
    o = _OVERRIDES.c
    with db.begin() as conn:
        last = conn.execute(select(o.css, o.xpath, o.version).where(
            o.spider == spider, o.domain == domain, o.field == field).order_by(o.version.desc()).limit(1)).first()
        before = {"css": last.css, "xpath": last.xpath, "version": last.version} if last else {}
        row = conn.execute(insert(_OVERRIDES).values(
            spider=spider, domain=domain, field=field, version=(last.version + 1) if last else 1, css=css,
            xpath=xpath, action=action, before=before, actor=actor, note=note, intervention_id=intervention_id,
        ).returning(*_OVERRIDES.c)).one()
        return _row(row)


def export(db: Database, spider: str) -> str:
    """The overrides in force as a Python dict, for a developer to fold into the spider."""
    lines = [f"# selector overrides of spider {spider!r} in force (hitl selectors export)", "HITL_OVERRIDES = {"]
    for domain, fields in sorted(in_force(db, spider).items()):
        lines.append(f"    {domain!r}: {{")
        for key, o in sorted(fields.items()):
            value = {"css": o["css"]} if o["css"] else {"xpath": o["xpath"]}
            lines.append(f"        {key!r}: {value!r},  # v{o['version']}")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- fingerprints and pages -----------------------------------------------------------------
def save_fingerprints(db: Database, spider: str, domain: str, pattern: str,
                      samples: dict[str, list[dict[str, Any]]]) -> None:
    """Add fingerprints (field key -> new ones), keeping the newest SAMPLES_KEPT per key."""
    try:
        _save_fingerprints(db, spider, domain, pattern, samples)
    except IntegrityError:  # another crawl stored a key's first ones meanwhile (PostgreSQL: no row to lock)
        _save_fingerprints(db, spider, domain, pattern, samples)


def _save_fingerprints(db: Database, spider: str, domain: str, pattern: str,
                       samples: dict[str, list[dict[str, Any]]]) -> None:
    f = _FINGERPRINTS.c
    with db.begin(locked=True) as conn:
        for key, new in samples.items():
            row = conn.execute(select(f.id, f.samples).where(
                f.spider == spider, f.domain == domain, f.pattern == pattern, f.field == key).with_for_update()).first()
            if row is None:
                conn.execute(insert(_FINGERPRINTS).values(spider=spider, domain=domain, pattern=pattern, field=key,
                                                          samples=new[-SAMPLES_KEPT:]))
            else:
                conn.execute(update(_FINGERPRINTS).where(f.id == row.id).values(
                    samples=(list(row.samples or []) + new)[-SAMPLES_KEPT:], updated_at=utcnow()))


def fingerprints(db: Database, spider: str, domain: str, pattern: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """field key -> fingerprints; of ``pattern`` if it has any, else of every pattern."""
    f = _FINGERPRINTS.c
    with db.begin() as conn:
        rows = list(conn.execute(select(f.pattern, f.field, f.samples).where(f.spider == spider, f.domain == domain)))
    chosen = [r for r in rows if r.pattern == pattern] or rows
    out: dict[str, list[dict[str, Any]]] = {}
    for r in chosen:
        out.setdefault(r.field, []).extend(r.samples or [])
    return out


def save_page(db: Database, spider: str, domain: str, pattern: str, kind: str, url: str, html: bytes) -> None:
    """Keep a page: one good page per spider, domain and pattern; the newest MISSED_KEPT
    missed pages per spider and domain (a page missed again replaces its older copy)."""
    html = html[:MAX_PAGE_BYTES]
    p = _PAGES.c
    with db.begin() as conn:
        same = (p.spider == spider, p.domain == domain, p.kind == kind)
        if kind == "good":
            conn.execute(delete(_PAGES).where(*same, p.pattern == pattern))
        else:
            conn.execute(delete(_PAGES).where(*same, p.url == url))
        conn.execute(insert(_PAGES).values(spider=spider, domain=domain, pattern=pattern, kind=kind, url=url,
                                           size=len(html), html=gzip.compress(html, compresslevel=6)))
        if kind == "missed":
            old = list(conn.execute(select(p.id).where(*same).order_by(p.id.desc()).offset(MISSED_KEPT)).scalars())
            if old:
                conn.execute(delete(_PAGES).where(p.id.in_(old)))


def pages(db: Database, spider: str, domain: str, kind: str, urls: list[str] | None = None,
          pattern: str | None = None) -> list[dict[str, Any]]:
    """Kept pages, oldest first: ``{"id", "url", "pattern", "html"}`` (html decoded)."""
    p = _PAGES.c
    q = select(p.id, p.url, p.pattern, p.html).where(p.spider == spider, p.domain == domain, p.kind == kind)
    if urls is not None:
        q = q.where(p.url.in_(urls))
    with db.begin() as conn:
        rows = list(conn.execute(q.order_by(p.id)))
    if pattern is not None and any(r.pattern == pattern for r in rows):
        rows = [r for r in rows if r.pattern == pattern]
    return [{"id": r.id, "url": r.url, "pattern": r.pattern,
             "html": gzip.decompress(r.html).decode("utf-8", "replace")} for r in rows]


# --- preview --------------------------------------------------------------------------------
def effective(db: Database, spider: str, domain: str) -> dict[str, Declaration]:
    """The spider's declarations with the overrides in force on ``domain`` applied."""
    overrides = in_force(db, spider).get(domain, {})
    return {p: d.with_overrides(overrides) for p, d in declarations(db, spider).items()}


def values_on(decl: Declaration, name: str, html: str, *, rows: int = 3) -> tuple[bool, list[Any]]:
    """(matched, values) of field ``name`` (or the rows) of ``decl`` on one page; with rows
    declared, the values of the first ``rows`` rows."""
    sel = Selector(text=html)
    if decl.rows is None:
        value = decl.fields[name].extract(sel)
        return value not in (None, [], ""), [value]
    found = sel.css(decl.rows)
    if name == ROWS:
        return bool(found), [len(found)]
    values = [decl.fields[name].extract(r) for r in found]
    return any(v not in (None, [], "") for v in values), values[:rows]


def preview(db: Database, spider: str, domain: str, field: str, *, css: str | None, xpath: str | None = None,
            urls: list[str] | None = None, pattern: str | None = None, rows: str | None = None,
            mark_page: int | None = None) -> dict[str, Any]:
    """What ``field`` would extract with this selector from the parked (missed) pages of
    ``domain`` and from its good page: ``{"pages": [{"url", "matched", "values"}], "good": ...}``.
    ``rows``: a row selector not saved yet (the fixer's draft), for a field of its rows.
    ``mark_page``: a page id whose matched elements' numbers come back in ``marks`` (the
    fixer outlines them in its frame)."""
    decls = effective(db, spider, domain)
    decl, name = _split(decls, field)
    if rows and decl.rows is not None and name != ROWS:
        decl = Declaration(decl.fields, rows, decl.prefix)
    if name == ROWS:
        trial = Declaration(decl.fields, css, decl.prefix)
    else:
        trial = Declaration({**decl.fields, name: decl.fields[name].with_selector(css, xpath)}, decl.rows, decl.prefix)

    marks: list[int] = []

    def one(page: dict[str, Any]) -> dict[str, Any]:
        matched, values = values_on(trial, name, page["html"])
        if page["id"] == mark_page:
            marks.extend(marked(trial, name, page["html"]))
        return {"url": page["url"], "matched": matched, "values": values}

    missed = pages(db, spider, domain, "missed", urls, pattern)
    good = pages(db, spider, domain, "good", None, pattern)
    return {"field": field, "css": css, "xpath": xpath, "pages": [one(p) for p in missed],
            "good": one(good[-1]) if good else None, "marks": marks}


def marked(decl: Declaration, name: str, html: str, limit: int = 200) -> list[int]:
    """The numbers (scrapy_hitl.suggest.elements) of the elements field ``name`` (or the
    rows) of ``decl`` matches on a page."""
    from scrapy_hitl.suggest import elements

    sel, els = elements(html)
    number = {el: i for i, el in enumerate(els)}
    scopes = [sel] if decl.rows is None else list(sel.css(decl.rows))
    if name == ROWS:
        found = [s.root for s in scopes]
    else:
        spec = decl.fields[name]
        css = spec.element_css()
        found = []
        for scope in scopes:
            hits = scope.css(css) if css is not None else scope.xpath(spec.xpath or "")
            found += [h.root if not isinstance(h.root, str) else None for h in hits]
    return [number[el] for el in found if el is not None and el in number][:limit]


# --- an intervention's fixer ------------------------------------------------------------------
def context(db: Database, intervention: dict[str, Any]) -> dict[str, Any]:
    """What the fixer of a ``selector_fix`` intervention works on: the spider's declarations
    (overrides applied), the parked pages kept for it (those the intervention lists, else
    the domain's newest), the good page of its template, and the overrides in force."""
    spider, domain = intervention.get("spider") or "", intervention.get("domain") or ""
    evidence = intervention.get("evidence") or {}
    pattern = evidence.get("pattern")
    urls = evidence.get("pages") or None
    missed = pages(db, spider, domain, "missed", urls, pattern) if urls else []
    if not missed:
        missed = pages(db, spider, domain, "missed", None, pattern)
    good = pages(db, spider, domain, "good", None, pattern)
    return {"spider": spider, "domain": domain, "pattern": pattern, "declarations": effective(db, spider, domain),
            "bare": declarations(db, spider),
            "pages": missed, "good": good[-1] if good else None,
            "overrides": in_force(db, spider).get(domain, {})}


def suggestions(db: Database, intervention: dict[str, Any]) -> dict[str, Any]:
    """Suggestions for every broken field of the intervention's spider on its parked pages
    (scrapy_hitl.suggest): ``{"spider", "domain", "pages", "broken", "fields": {key: [...]}}``."""
    from scrapy_hitl.suggest import suggest

    ctx = context(db, intervention)
    known = fingerprints(db, ctx["spider"], ctx["domain"], ctx["pattern"])
    htmls = [p["html"] for p in ctx["pages"]]
    broken: list[str] = []
    fields: dict[str, list[dict[str, Any]]] = {}
    if htmls:
        good = ctx["good"]["html"] if ctx["good"] else None
        for decl in ctx["declarations"].values():
            found = suggest(decl, htmls, known, good=good)
            broken += found["broken"]
            fields.update(found["fields"])
    return {"spider": ctx["spider"], "domain": ctx["domain"], "pages": [p["url"] for p in ctx["pages"]],
            "good_page": ctx["good"]["url"] if ctx["good"] else None, "broken": broken, "fields": fields}
