"""Declared fields: a spider's extraction as data, so a reviewer can repair it without a deploy.

A spider (or an item class) declares::

    hitl_rows = "div.product"                       # optional: one item per row
    hitl_fields = {
        "name": "h2.name::text",                    # a CSS selector
        "price": {"css": ".price::text", "re": r"[\\d.]+"},
        "tags": {"css": "a.tag::text", "many": True},
        "link": {"xpath": ".//a/@href"},
    }

and its callbacks call ``hitl_extract(response)`` (or ``hitl_extract(response, Product)`` for
an item class that declares its own ``hitl_fields`` / ``hitl_rows``). The result is a dict, or
a list of dicts when rows are declared, with the **overrides** a reviewer saved for the
response's domain applied (``hitl selectors``, the console's selector fixer): the crawl picks
up a fix at once, with no code change.

Field keys of overrides: a spider-level field is its name (``price``), an item class's field
is ``<Class>.<name>`` (``Product.price``); the row selector is ``_rows`` (``Product._rows``).

Pure parsing and extraction here; the crawler's side (overrides kept fresh from events,
fingerprints of good elements) is :mod:`scrapy_hitl.selectorbook`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from parsel import Selector
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scrapy.http import Response

ROWS = "_rows"
_SPEC_KEYS = {"css", "xpath", "re", "many"}
_PSEUDO = re.compile(r"::(text|attr\([^)]*\))\s*$")


class FieldsError(ValueError):
    """A ``hitl_fields`` / ``hitl_rows`` declaration or a selector that cannot be used; the
    message names the field and the fix. Raised at declaration time and by the console when a
    reviewer's selector does not parse (HTTP 422), never while crawling."""


def check_selector(css: str | None = None, xpath: str | None = None) -> None:
    """Raise FieldsError with the parser's message when ``css`` / ``xpath`` does not parse."""
    probe = Selector(text="<html><body></body></html>")
    try:
        if css is not None:
            probe.css(css)
        if xpath is not None:
            probe.xpath(xpath)
    except Exception as exc:  # cssselect's SelectorError, lxml's XPathError: both ValueErrors or not
        which = f"CSS selector {css!r}" if css is not None and xpath is None else f"selector {css or xpath!r}"
        raise FieldsError(f"{which} does not parse: {exc}") from None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One declared field: a CSS or XPath selector, an optional regex, one value or all."""

    name: str
    css: str | None = None
    xpath: str | None = None
    re: str | None = None
    many: bool = False

    @classmethod
    def parse(cls, name: str, value: Any) -> FieldSpec:
        if isinstance(value, str):
            value = {"css": value}
        if not isinstance(value, dict):
            raise FieldsError(f"hitl_fields[{name!r}] must be a CSS selector string or a dict "
                              f"with 'css' or 'xpath', got {type(value).__name__}")
        unknown = set(value) - _SPEC_KEYS
        if unknown:
            raise FieldsError(f"hitl_fields[{name!r}] has unknown keys {sorted(unknown)}; use {sorted(_SPEC_KEYS)}")
        css, xpath = value.get("css"), value.get("xpath")
        if (css is None) == (xpath is None) or not (css or xpath):
            raise FieldsError(f"hitl_fields[{name!r}] needs exactly one of 'css' or 'xpath'")
        try:
            check_selector(css, xpath)
        except FieldsError as exc:
            raise FieldsError(f"hitl_fields[{name!r}]: {exc}") from None
        regex = value.get("re")
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise FieldsError(f"hitl_fields[{name!r}]: 're' does not compile: {exc}") from None
        return cls(name, css, xpath, regex, bool(value.get("many", False)))

    def with_selector(self, css: str | None, xpath: str | None = None) -> FieldSpec:
        """The same field (regex, many) read by another selector: an override."""
        return replace(self, css=css, xpath=None if css else xpath)

    def selector(self) -> str:
        return self.css if self.css is not None else (self.xpath or "")

    def element_css(self) -> str | None:
        """The CSS selector of the element itself (``::text`` / ``::attr()`` removed), for
        fingerprints and suggestions; None for an XPath field."""
        if self.css is None:
            return None
        return _PSEUDO.sub("", self.css).strip() or "*"

    def pseudo(self) -> str:
        """The ``::text`` / ``::attr(x)`` ending of the CSS selector, or ""."""
        m = _PSEUDO.search(self.css or "")
        return m.group(0).strip() if m else ""

    def extract(self, sel: Selector) -> Any:
        found = sel.css(self.css) if self.css is not None else sel.xpath(self.xpath or "")
        if self.re is not None:
            values = found.re(self.re)
            return values if self.many else (values[0] if values else None)
        if self.many:
            return [v.strip() for v in found.getall()]
        value = found.get()
        return value.strip() if isinstance(value, str) else value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"css": self.css} if self.css is not None else {"xpath": self.xpath}
        if self.re is not None:
            out["re"] = self.re
        if self.many:
            out["many"] = True
        return out


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a spider or an item class declares: its fields and, for list pages, its rows.
    ``prefix`` is "" for the spider, ``"<Class>."`` for an item class (override keys)."""

    fields: dict[str, FieldSpec]
    rows: str | None = None
    prefix: str = ""

    def key(self, field: str) -> str:
        return f"{self.prefix}{field}"

    def keys(self) -> list[str]:
        """Every key an override may name."""
        return ([self.key(ROWS)] if self.rows else []) + [self.key(f) for f in self.fields]

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "fields": {k: v.to_dict() for k, v in self.fields.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "") -> Declaration:
        return cls({k: FieldSpec.parse(k, v) for k, v in (data.get("fields") or {}).items()},
                   data.get("rows"), prefix)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]] | None) -> Declaration:
        """This declaration with ``overrides`` (key -> {"css", "xpath"}) in place of the
        declared selectors; keys of other declarations are ignored."""
        if not overrides:
            return self
        rows = self.rows
        row = overrides.get(self.key(ROWS))
        if row and row.get("css"):
            rows = row["css"]
        fields = dict(self.fields)
        for name, spec in self.fields.items():
            o = overrides.get(self.key(name))
            if o and (o.get("css") or o.get("xpath")):
                fields[name] = spec.with_selector(o.get("css"), o.get("xpath"))
        return Declaration(fields, rows, self.prefix)

    def expectation(self) -> str | None:
        """The CSS selector a page of this declaration must match to have data: its rows,
        else its first CSS field (used as the page's ``hitl_expect`` when none is set)."""
        if self.rows:
            return self.rows
        for spec in self.fields.values():
            if spec.css is not None:
                return spec.element_css()
        return None

    def extract(self, sel: Selector) -> dict[str, Any] | list[dict[str, Any]]:
        if self.rows is None:
            return {name: spec.extract(sel) for name, spec in self.fields.items()}
        return [{name: spec.extract(row) for name, spec in self.fields.items()} for row in sel.css(self.rows)]


def declaration_of(owner: Any, item_type: Any = None) -> Declaration | None:
    """The declaration of ``item_type`` (a class with ``hitl_fields``) if given, else the
    spider's; None when nothing is declared. Raises FieldsError for a bad declaration."""
    source = item_type if item_type is not None else owner
    fields = getattr(source, "hitl_fields", None)
    rows = getattr(source, "hitl_rows", None)
    if not fields:
        if item_type is not None:
            raise FieldsError(f"{getattr(item_type, '__name__', item_type)!r} declares no hitl_fields: "
                              "add hitl_fields = {'name': 'css::text', ...} to the class")
        return None
    if not isinstance(fields, dict):
        raise FieldsError("hitl_fields must be a dict of field name -> selector")
    if rows is not None:
        if not isinstance(rows, str) or not rows:
            raise FieldsError("hitl_rows must be a CSS selector string")
        check_selector(rows)
    prefix = f"{getattr(item_type, '__name__', str(item_type))}." if item_type is not None else ""
    return Declaration({name: FieldSpec.parse(name, v) for name, v in fields.items()}, rows, prefix)


def response_domain(response: Response) -> str:
    return (urlparse_cached(response).hostname or "").lower()


def hitl_extract(response: Response, item_type: Any = None, *, spider: Any = None) -> Any:
    """Extract the declared fields from ``response``: a dict, or a list of dicts (one per
    row) when rows are declared. Applies the overrides saved for the response's domain.

    ``spider`` defaults to the spider whose method is the request's callback. Declared
    fields go through the crawl's selector book when the scrapy-hitl add-on is on (overrides,
    fingerprints of good elements); without it they are read as declared.
    """
    if spider is None:
        request = getattr(response, "request", None)
        spider = getattr(getattr(request, "callback", None), "__self__", None)
        if spider is None:
            raise FieldsError("hitl_extract() could not tell which spider is calling: pass spider=self")
    book = getattr(getattr(getattr(spider, "crawler", None), "_hitl_runtime", None), "selectors", None)
    if book is not None:
        return book.extract(response, item_type, spider)
    declaration = _plain(spider, item_type)
    return declaration.extract(response.selector)  # type: ignore[attr-defined]


_PLAIN: dict[tuple[int, int], Declaration] = {}


def _plain(spider: Any, item_type: Any) -> Declaration:
    key = (id(type(spider)), id(item_type))
    found = _PLAIN.get(key)
    if found is None:
        found = declaration_of(spider, item_type)
        if found is None:
            raise FieldsError(f"spider {getattr(spider, 'name', spider)!r} declares no hitl_fields: "
                              "add hitl_fields = {'name': 'css::text', ...} to the spider")
        _PLAIN[key] = found
    return found
