"""`/api/v1/selectors` and an intervention's selector fixer (docs/selectors.md).

Overrides go through :mod:`scrapy_hitl.state.selectors`, as ``hitl selectors`` does: the
same checks (the selector parses, the field is declared, it extracts something from the
parked pages unless ``force``), the same versions and audit, the same event to crawlers.
Console users and agents (API keys) alike.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from hitl_console import api
from hitl_console.auth.guard import require_user_or_agent
from hitl_console.errors import ApiError
from scrapy_hitl.state import interventions, selectors as store

bp = Blueprint("api_selectors", __name__)

_SET_FIELDS = {"spider", "domain", "field", "css", "xpath", "note", "force", "intervention_id"}


def _actor() -> str:
    agent = g.get("agent")
    return f"agent:{agent['id']}" if agent else api.actor()


def _refused(exc: store.SelectorRefused) -> ApiError:
    detail: dict[str, Any] = {"field": "css", "message": str(exc)}
    if exc.detail:
        detail.update(exc.detail)
    return ApiError(422, exc.code, detail)


def _strings(data: dict[str, Any], *names: str, required: tuple[str, ...] = ()) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    bad = {}
    for name in names:
        value = data.get(name)
        if value is None or value == "":
            if name in required:
                bad[name] = "required"
            out[name] = None
        elif not isinstance(value, str) or len(value) > 2000:
            bad[name] = "must be a string of at most 2000 characters"
        else:
            out[name] = value
    if bad:
        raise ApiError(422, "invalid", bad)
    return out


@bp.get("/api/v1/selectors")
@require_user_or_agent()
def list_() -> Any:
    """The overrides in force (``?spider=&domain=``)."""
    rows = store.list_overrides(api.state().db, spider=request.args.get("spider") or None,
                                domain=request.args.get("domain") or None)
    return jsonify({"items": rows})


@bp.get("/api/v1/selectors/history")
@require_user_or_agent()
def history() -> Any:
    """Every version of one field's override, newest first (``?spider=&domain=&field=``)."""
    args = _strings(dict(request.args), "spider", "domain", "field", required=("spider", "domain", "field"))
    try:
        return jsonify({"items": store.history(api.state().db, args["spider"], args["domain"], args["field"])})
    except store.OverrideNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@bp.get("/api/v1/selectors/export")
@require_user_or_agent()
def export() -> Any:
    """The spider's overrides in force as Python source (``?spider=``)."""
    spider = _strings(dict(request.args), "spider", required=("spider",))["spider"]
    return jsonify({"spider": spider, "python": store.export(api.state().db, spider or "")})


@bp.post("/api/v1/selectors")
@require_user_or_agent()
def set_() -> Any:
    """Save a new version of a field's selector: ``{"spider", "domain", "field", "css"}``
    (or ``"xpath"``), optional ``note``, ``force`` (save even if it extracts nothing from the
    parked pages), ``intervention_id``."""
    data = api.json_object(_SET_FIELDS)
    args = _strings(data, "spider", "domain", "field", "css", "xpath", "note", required=("spider", "domain", "field"))
    force = data.get("force", False)
    if not isinstance(force, bool):
        raise ApiError(422, "invalid", {"force": "must be true or false"})
    iid = data.get("intervention_id")
    if iid is not None and (type(iid) is not int or iid < 1):
        raise ApiError(422, "invalid", {"intervention_id": "must be a positive integer"})
    try:
        row = store.set_override(api.state(), spider=args["spider"] or "", domain=args["domain"] or "",
                                 field=args["field"] or "", css=args["css"], xpath=args["xpath"], actor=_actor(),
                                 note=args["note"] or "", intervention_id=iid, force=force)
    except store.SelectorRefused as exc:
        raise _refused(exc) from None
    return jsonify(row), 201


@bp.post("/api/v1/selectors/revert")
@require_user_or_agent()
def revert() -> Any:
    """Undo the last change of a field: ``{"spider", "domain", "field"}``, optional ``note``."""
    data = api.json_object({"spider", "domain", "field", "note"})
    args = _strings(data, "spider", "domain", "field", "note", required=("spider", "domain", "field"))
    try:
        row = store.revert(api.state(), spider=args["spider"] or "", domain=args["domain"] or "",
                           field=args["field"] or "", actor=_actor(), note=args["note"] or "")
    except store.OverrideNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    return jsonify(row)


# --- an intervention's fixer ------------------------------------------------------------------
def _selector_fix(intervention_id: int) -> dict[str, Any]:
    try:
        found = interventions.get(api.state(), intervention_id, parked_limit=0)
    except interventions.InterventionNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if found["type"] != "selector_fix":
        raise ApiError(409, "not_selector_fix", f"Intervention {intervention_id} is a {found['type']}, "
                                                "not a selector_fix: there are no selectors to fix.")
    return found


@bp.get("/api/v1/interventions/<int:intervention_id>/selector-suggestions")
@require_user_or_agent()
def suggestions(intervention_id: int) -> Any:
    """``{"fields": {key: [{"css", "xpath", "score", "samples", "good"}]}, "broken": [...]}``."""
    return jsonify(store.suggestions(api.state().db, _selector_fix(intervention_id)))


@bp.get("/api/v1/interventions/<int:intervention_id>/selector-fixer")
@require_user_or_agent()
def fixer(intervention_id: int) -> Any:
    """What the fixer page shows: the spider's fields (overrides applied) with the values
    each extracts from the parked pages, the pages, the overrides in force."""
    found = _selector_fix(intervention_id)
    ctx = store.context(api.state().db, found)
    fields = []
    for decl in ctx["declarations"].values():
        for key in decl.keys():
            name = key.rpartition(".")[2]
            css = decl.rows if name == store.ROWS else (decl.fields[name].css or decl.fields[name].xpath)
            shown = [store.values_on(decl, name, p["html"]) for p in ctx["pages"]]
            base = ctx["bare"].get(decl.prefix)
            declared = (base.rows if name == store.ROWS else (base.fields[name].css or base.fields[name].xpath)) if base else css
            fields.append({"key": key, "selector": css, "declared": declared, "override": ctx["overrides"].get(key),
                           "broken": bool(shown) and not any(m for m, _ in shown),
                           "values": [v for _, v in shown]})
    return jsonify({"intervention": {"id": found["id"], "status": found["status"], "url": found["url"]},
                    "spider": ctx["spider"], "domain": ctx["domain"], "pattern": ctx["pattern"],
                    "declared": bool(ctx["declarations"]), "fields": fields,
                    "pages": [{"id": p["id"], "url": p["url"]} for p in ctx["pages"]],
                    "good": {"id": ctx["good"]["id"], "url": ctx["good"]["url"]} if ctx["good"] else None})


@bp.post("/api/v1/interventions/<int:intervention_id>/selector-preview")
@require_user_or_agent()
def preview(intervention_id: int) -> Any:
    """What ``{"field", "css" | "xpath", "rows"?, "page_id"?}`` extracts from every parked page
    and the good page; ``marks``: the numbers of the elements it matches on page ``page_id``."""
    data = api.json_object({"field", "css", "xpath", "rows", "page_id"})
    args = _strings(data, "field", "css", "xpath", "rows", required=("field",))
    if not args["css"] and not args["xpath"]:
        raise ApiError(422, "invalid", {"css": "send css or xpath"})
    mark_page = data.get("page_id")
    if mark_page is not None and type(mark_page) is not int:
        raise ApiError(422, "invalid", {"page_id": "an integer"})
    found = _selector_fix(intervention_id)
    from scrapy_hitl.fields import FieldsError, check_selector

    try:
        check_selector(args["css"], None if args["css"] else args["xpath"])
        if args["rows"]:
            check_selector(args["rows"])
    except FieldsError as exc:
        raise ApiError(422, "invalid_selector", {"field": "css", "message": str(exc)}) from None
    evidence = found.get("evidence") or {}
    try:
        return jsonify(store.preview(api.state().db, found["spider"] or "", found["domain"], args["field"] or "",
                                     css=args["css"], xpath=args["xpath"], urls=evidence.get("pages") or None,
                                     pattern=evidence.get("pattern"), rows=args["rows"], mark_page=mark_page))
    except KeyError:
        raise ApiError(422, "unknown_field", {"field": "field", "message": f"no declared field {args['field']!r}"}) from None


@bp.post("/api/v1/interventions/<int:intervention_id>/selector-pick")
@require_user_or_agent()
def pick(intervention_id: int) -> Any:
    """Selectors for the element a reviewer clicked: ``{"field", "page_id", "index", "rows"?}``
    -> ``{"selectors": [css, ...]}``, most robust first."""
    from scrapy_hitl.fields import Declaration
    from scrapy_hitl.suggest import PickError, picked

    data = api.json_object({"field", "page_id", "index", "rows"})
    args = _strings(data, "field", "rows", required=("field",))
    page_id, index = data.get("page_id"), data.get("index")
    if type(page_id) is not int or type(index) is not int or index < 0:
        raise ApiError(422, "invalid", {"page_id": "an integer", "index": "an integer >= 0"})
    found = _selector_fix(intervention_id)
    ctx = store.context(api.state().db, found)
    page = next((p for p in ctx["pages"] + ([ctx["good"]] if ctx["good"] else []) if p["id"] == page_id), None)
    if page is None:
        raise ApiError(404, "not_found", f"No page {page_id} for this intervention")
    key = args["field"] or ""
    prefix, _, name = key.rpartition(".")
    decl = ctx["declarations"].get(f"{prefix}." if prefix else "")
    if decl is None or (name != store.ROWS and name not in decl.fields):
        raise ApiError(422, "unknown_field", {"field": "field", "message": f"no declared field {key!r}"})
    if args["rows"] and name != store.ROWS:
        from scrapy_hitl.fields import FieldsError, check_selector

        try:
            check_selector(args["rows"])
        except FieldsError as exc:
            raise ApiError(422, "invalid_selector", {"field": "rows", "message": str(exc)}) from None
        decl = Declaration(decl.fields, args["rows"], decl.prefix)
    try:
        return jsonify({"field": key, "selectors": picked(decl, name, page["html"], index)})
    except PickError as exc:
        raise ApiError(422, "bad_pick", {"field": "index", "message": str(exc)}) from None
