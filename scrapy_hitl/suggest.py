"""Selector suggestions for a ``selector_fix``: which element of the parked pages is the
field that broke, and a robust selector for it.

For each broken field (it extracts nothing from any parked page), the elements of the
parked pages are ranked by similarity to the fingerprints of the elements the field matched
on good pages (scrapy_hitl.fingerprints). For the best of them a CSS selector is derived,
stable attributes first (a class, ``itemprop``, ``data-*``, ``name``, ``role``), positions
never, then checked against every parked page: a candidate's score is its similarity
weighted by how many parked pages it extracts from. Fields are relative to the rows when
rows are declared (the rows' own suggestion is used when the rows broke too).

Pure: pages and fingerprints in, suggestions out; the console and ``hitl worker`` call it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from parsel import Selector
from parsel.csstranslator import css2xpath

from scrapy_hitl.fields import ROWS, Declaration, FieldSpec
from scrapy_hitl.fingerprints import best_similarity, fingerprint

if TYPE_CHECKING:
    from collections.abc import Iterable

TOP = 3  # suggestions per field
RANK_PAGES = 5  # pages whose elements are ranked (all parked pages check the selectors)
CANDIDATES = 8  # best elements per field turned into selectors
ROW_SCOPE = 3  # rows per page whose elements are ranked for a field
_STABLE_ATTRS = ("itemprop", "name", "role", "property", "aria-label")
_GENERATED = re.compile(r"\d{3,}|^[a-z]{1,3}-(?=[a-z0-9]*\d)[a-z0-9]{5,}$|^_|[A-Z].*\d|^[0-9a-f]{6,}$")
_SKIP_TAGS = {"script", "style", "noscript", "template", "head", "meta", "link", "title", "html", "body"}


def _css_ident(value: str) -> str | None:
    return value if re.fullmatch(r"-?[A-Za-z_][\w-]*", value) else None


def _stable_classes(el: Any) -> list[str]:
    return [c for c in (el.get("class") or "").split() if _css_ident(c) and not _GENERATED.search(c)]


def simple_selectors(el: Any) -> list[str]:
    """CSS selectors for ``el`` alone, most robust first: classes, stable attributes, tag."""
    tag = el.tag.lower() if isinstance(el.tag, str) else "*"
    out = []
    classes = _stable_classes(el)
    for c in classes[:2]:
        out.append(f"{tag}.{c}")
    if len(classes) > 1:
        out.append(f"{tag}.{classes[0]}.{classes[1]}")
    for name in _STABLE_ATTRS:
        value = el.get(name)
        if value and len(value) <= 40 and '"' not in value:
            out.append(f'{tag}[{name}="{value}"]')
    for name in el.attrib:
        if name.startswith("data-") and _css_ident(name):
            out.append(f"{tag}[{name}]")
    out.append(tag)
    return out


def derive(el: Any, scope: Any) -> list[str]:
    """Selectors that find ``el`` within ``scope`` (an lxml element), shortest first: its
    own; then qualified by its parent's (``footer.meta span``)."""
    own = simple_selectors(el)
    parent = el.getparent()
    out = list(own)
    if parent is not None and parent is not scope:
        for p in simple_selectors(parent)[:2]:
            for o in own[:2]:
                out.append(f"{p} > {o}")
    return out


def _bare(css: str) -> float:
    """A bare tag (``article``, ``li > span``) catches whatever else the page grows: a
    selector with a class or an attribute is preferred when it finds the same."""
    last = css.split()[-1] if css else css
    return 1.0 if ("." in last or "[" in last) else 0.97


def _ok(value: Any) -> bool:
    return value not in (None, "", [])


def _elements(root: Any) -> Iterable[Any]:
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.lower() not in _SKIP_TAGS:
            yield el


def _rank(known: list[dict[str, Any]], scopes: list[Any], limit: int) -> list[tuple[float, Any, Any]]:
    """(similarity, element, its scope) of the best ``limit`` elements under ``scopes``."""
    scored = []
    for scope in scopes:
        for el in _elements(scope):
            if el is scope:
                continue
            scored.append((best_similarity(fingerprint(el), known), el, scope))
    scored.sort(key=lambda t: -t[0])
    return scored[:limit]


def _first_rows(sel: Selector, rows: str | None) -> list[Selector]:
    if rows is None:
        return [sel]
    try:
        return list(sel.css(rows))
    except Exception:
        return []


def suggest(declaration: Declaration, pages: list[str], known: dict[str, list[dict[str, Any]]], *,
            good: str | None = None, only: Iterable[str] | None = None) -> dict[str, Any]:
    """Suggestions for the broken fields of ``declaration`` (overrides applied) on the parked
    ``pages`` (HTML), from the fingerprints ``known`` (field key -> list).

    Returns ``{"broken": [keys], "fields": {key: [{"css", "xpath", "score", "samples",
    "good"}]}}``; ``samples`` holds the value extracted from each parked page (the row
    count, for the rows), ``good`` the value on the stored good page.
    """
    sels = [Selector(text=p) for p in pages]
    good_sel = Selector(text=good) if good else None
    wanted = set(only) if only is not None else None
    broken: list[str] = []
    out: dict[str, list[dict[str, Any]]] = {}
    rows = declaration.rows
    # the rows first: fields are relative to them
    if rows is not None:
        rows_key = declaration.key(ROWS)
        rows_broken = not any(_first_rows(s, rows) for s in sels)
        if rows_broken or (wanted is not None and rows_key in wanted):
            out[rows_key] = _suggest_rows(known.get(rows_key, []), sels, good_sel)
        if rows_broken:
            broken.append(rows_key)
            if out[rows_key]:  # the fields are judged, and found, in the suggested rows
                rows = out[rows_key][0]["css"]
    scopes_of = [_first_rows(s, rows) for s in sels]
    for name, spec in declaration.fields.items():
        key = declaration.key(name)
        is_broken = not any(_ok(spec.extract(r)) for scopes in scopes_of for r in scopes)
        if is_broken:
            broken.append(key)
        if not is_broken and (wanted is None or key not in wanted):
            continue
        if spec.css is None and not known.get(key):
            out[key] = []
            continue
        out[key] = _suggest_field(spec, known.get(key, []), scopes_of, good_sel, declaration.rows,
                                  relative=rows is not None)
    return {"broken": broken, "fields": out}


def _suggest_rows(known: list[dict[str, Any]], sels: list[Selector], good: Selector | None) -> list[dict[str, Any]]:
    if not known:
        return []
    ranked = _rank(known, [s.root for s in sels[:RANK_PAGES]], CANDIDATES * 3)
    seen: dict[str, dict[str, Any]] = {}
    for sim, el, _scope in ranked:
        for css in derive(el, None)[:4]:
            if css in seen:
                continue
            counts = [len(s.css(css)) for s in sels]
            if not all(counts):
                continue
            # rows repeat: a selector for one element per page is not a row selector
            repeat = min(1.0, sum(min(c, 10) for c in counts) / (len(counts) * 3))
            matched = [m.root for s in sels[:RANK_PAGES] for m in s.css(css)[:5]]
            mean = sum(best_similarity(fingerprint(m), known) for m in matched) / len(matched)
            seen[css] = {"css": css, "xpath": css2xpath(css), "score": round((0.5 * sim + 0.4 * mean + 0.1 * repeat) * _bare(css), 4),
                         "samples": counts, "good": len(good.css(css)) if good is not None else None}
    return sorted(seen.values(), key=lambda c: (-c["score"], len(c["css"])))[:TOP]


def _suggest_field(spec: FieldSpec, known: list[dict[str, Any]], scopes_of: list[list[Selector]],
                   good: Selector | None, good_rows: str | None, *, relative: bool) -> list[dict[str, Any]]:
    if not known:
        return []
    pseudo = spec.pseudo()
    rank_scopes = [r.root for scopes in scopes_of[:RANK_PAGES] for r in scopes[:ROW_SCOPE]]
    ranked = _rank(known, rank_scopes, CANDIDATES * 3)
    seen: dict[str, dict[str, Any]] = {}
    for sim, el, scope in ranked:
        for base in derive(el, scope if relative else None)[:5]:
            css = f"{base}{pseudo}"
            if css in seen:
                continue
            trial = spec.with_selector(css)
            try:
                values = [next((v for v in (trial.extract(r) for r in scopes) if _ok(v)), None) for scopes in scopes_of]
            except Exception:
                continue
            hits = sum(_ok(v) for v in values)
            if not hits:
                continue
            # one row, one value: a selector matching several elements of a row is ambiguous
            first = scopes_of[0][0] if scopes_of and scopes_of[0] else None
            ambiguous = first is not None and len(first.css(base)) > 1 and not spec.many
            score = sim * (hits / len(values)) * (0.85 if ambiguous else 1.0) * _bare(base)
            good_value = None
            if good is not None:
                good_scope = _first_rows(good, good_rows)[:1] or [good]
                good_value = trial.extract(good_scope[0])
            seen[css] = {"css": css, "xpath": css2xpath(css), "score": round(score, 4), "samples": values,
                         "good": good_value}
    return sorted(seen.values(), key=lambda c: (-c["score"], len(c["css"])))[:TOP]


# --- the fixer's page: elements by index, and selectors for a picked one -----------------------
_DROP_TAGS = ("script", "base", "iframe", "object", "embed", "frame", "frameset", "portal")
INDEX_ATTR = "data-hitl-i"


def elements(html: str) -> tuple[Selector, list[Any]]:
    """The page parsed as the fixer parses it, and its elements in document order (an
    element's index is its position here: the served page carries it, a pick names it)."""
    sel = Selector(text=html)
    return sel, [el for el in sel.root.iter() if isinstance(el.tag, str)]


def instrument(html: str, script: str, nonce: str) -> str:
    """The page for the fixer's frame: every element numbered (``data-hitl-i``), the site's
    scripts, frames, ``<base>`` and ``<meta http-equiv>`` removed, and the fixer's own
    ``script`` added under ``nonce`` (the frame's CSP lets only that one run)."""
    from lxml import etree, html as lxml_html

    sel, els = elements(html)
    for i, el in enumerate(els):
        el.set(INDEX_ATTR, str(i))
    root = sel.root
    for el in list(root.iter(*_DROP_TAGS)) + [m for m in root.iter("meta") if m.get("http-equiv")]:
        parent = el.getparent()
        if parent is not None:
            el.drop_tree() if hasattr(el, "drop_tree") else parent.remove(el)
    for el in root.iter():
        if isinstance(el.tag, str):
            for name in [n for n in el.attrib if n.lower().startswith("on")]:
                del el.attrib[name]
    body = root.find("body")
    tag = etree.SubElement(body if body is not None else root, "script")
    tag.set("nonce", nonce)
    tag.text = script
    return "<!DOCTYPE html>\n" + lxml_html.tostring(root, encoding="unicode", method="html")


class PickError(ValueError):
    """A pick the fixer cannot turn into a selector (the API answers 422 with the message)."""


def picked(declaration: Declaration, name: str, html: str, index: int) -> list[str]:
    """Selectors for field ``name`` (``_rows``: the rows) from the element a reviewer clicked,
    most robust first, each checked to find that element (relative to its row when rows are
    declared; a row selector must find at least two rows)."""
    sel, els = elements(html)
    if not 0 <= index < len(els):
        raise PickError(f"no element {index} on this page (it has {len(els)})")
    el = els[index]
    if name == ROWS:
        # the nearest enclosing element whose selector finds siblings (rows share a parent),
        # else the nearest that repeats at all
        loose: list[str] = []
        node = el
        while node is not None and isinstance(node.tag, str) and node.tag not in ("body", "html"):
            repeating = [c for c in simple_selectors(node)[:4] if len(sel.css(c)) >= 2]
            siblings = [c for c in repeating if len({m.root.getparent() for m in sel.css(c)}) == 1]
            if siblings:
                return siblings
            loose = loose or repeating
            node = node.getparent()
        if loose:
            return loose
        raise PickError("nothing repeats around the clicked element: click inside one of the rows")
    spec = declaration.fields[name]
    scope_sel: Any = sel
    scope = None
    if declaration.rows is not None:
        rows = {r.root: r for r in sel.css(declaration.rows)}
        node = el
        while node is not None and node not in rows:
            node = node.getparent()
        if node is None:
            raise PickError(f"the clicked element is not inside a row ({declaration.rows}): fix the rows first")
        scope, scope_sel = node, rows[node]
    out = []
    for base in derive(el, scope):
        found = scope_sel.css(base)
        if found and found[0].root is el:
            out.append(f"{base}{spec.pseudo()}")
    if not out:
        raise PickError("no selector finds the clicked element; type one by hand")
    return out[:5]
