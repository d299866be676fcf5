"""The crawler's side of declared fields: overrides in memory, fingerprints of good elements.

One ``SelectorBook`` per crawler (``runtime.selectors``), made when the spider opens:

- **Overrides** are loaded once at start (one query) and kept current from the
  ``selector.overridden`` event, applied the moment it arrives (the event carries the
  selector), so pages resumed after a fix are read with it.
- **Fingerprints** (scrapy_hitl.fingerprints) of the elements fields matched are taken on
  sampled pages only: the first ``SAMPLE_FIRST`` pages, then one in ``SAMPLE_EVERY``, until
  each (domain, pattern) has ``SAMPLES`` of each field; with one good page of each
  template. They are written by the runtime's I/O thread, never on the reactor.
- Pages that missed their data are kept (the block middleware's drift path, rare) for the
  fixer and its suggestions.

A spider that declares no fields pays nothing per page: the block middleware checks one
boolean (``expects``) and nothing else here runs. A spider with ``hitl_fingerprints = False``
keeps no fingerprints (suggestions then have nothing to compare with).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.utils.httpobj import urlparse_cached

from scrapy_hitl.fields import ROWS, Declaration, FieldsError, declaration_of, response_domain
from scrapy_hitl.fingerprints import fingerprint
from scrapy_hitl.state import selectors as store
from scrapy_hitl.tiers import path_pattern

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.http import Response

    from scrapy_hitl.runtime import HitlRuntime
    from scrapy_hitl.state.events import Event

logger = logging.getLogger(__name__)

SAMPLE_FIRST = 5  # pages sampled from the start of a crawl
SAMPLE_EVERY = 50  # then one page in this many
SAMPLES = 3  # fingerprints per (domain, pattern, field) per run
_UNSET = object()


def sample_fingerprints(decl: Declaration, sel: Any) -> dict[str, list[dict[str, Any]]]:
    """Field key -> [fingerprint] of the elements ``decl`` matches on a page (in its first
    row when rows are declared); fields that match nothing, or read XPath, are left out."""
    samples: dict[str, list[dict[str, Any]]] = {}
    scope = sel
    if decl.rows is not None:
        rows = sel.css(decl.rows)
        if not rows:
            return samples
        samples[decl.key(ROWS)] = [fingerprint(rows[0].root)]
        scope = rows[0]
    for name, spec in decl.fields.items():
        css = spec.element_css()
        if css is None:
            continue
        try:
            found = scope.css(css)
        except Exception:  # a pseudo-element parsel reads but cssselect's element path does not
            continue
        if found and not isinstance(found[0].root, str):
            samples[decl.key(name)] = [fingerprint(found[0].root)]
    return samples


class SelectorBook:
    """Declarations, the overrides in force and sampling state of one crawler (reactor thread)."""

    def __init__(self, runtime: HitlRuntime | None, spider_name: str,
                 overrides: dict[str, dict[str, dict[str, Any]]] | None = None,
                 spider_declaration: Declaration | None = None) -> None:
        self.rt = runtime
        self.spider_name = spider_name
        self.overrides = overrides or {}  # domain -> key -> {"css", "xpath", "version"}
        self.spider_declaration = spider_declaration
        # the block middleware's question, per page: does the spider's page expectation come from here?
        self.expects = spider_declaration is not None and spider_declaration.expectation() is not None
        self._declared: dict[Any, Declaration] = {}  # item type (None: the spider) -> declaration
        if spider_declaration is not None:
            self._declared[None] = spider_declaration
        self._effective: dict[tuple[str, Any], Declaration] = {}
        self._expects: dict[str, str | None] = {}  # netloc -> expectation
        self._pages = 0
        self._used: list[str] = []
        # fingerprints need the runtime's I/O thread; a spider may refuse them (hitl_fingerprints = False)
        self.sampling = runtime is not None
        self._taken: dict[tuple[str, str], int] = {}  # (domain, pattern) -> sampled pages
        self._good: set[tuple[str, str]] = set()

    @classmethod
    def open(cls, runtime: HitlRuntime, spider: Spider) -> SelectorBook:
        """At spider open (blocking, once): the overrides in force, the spider's declaration
        published for the console. A bad declaration is logged here and raised, with its
        message, by every ``hitl_extract`` call (the rest of the add-on keeps working)."""
        try:
            declaration = declaration_of(spider)
        except FieldsError as exc:
            logger.error("Spider %s: %s", spider.name, exc, extra={"spider": spider})
            declaration = None
        overrides = store.in_force(runtime.state.db, spider.name)
        book = cls(runtime, spider.name, overrides, declaration)
        book.sampling = getattr(spider, "hitl_fingerprints", True) is not False
        if declaration is not None:
            store.publish_declaration(runtime.state.db, spider.name, {"": declaration.to_dict()})
        if overrides:
            book._in_force(f"{d} {k} v{o['version']}" for d, keys in overrides.items() for k, o in keys.items())
            logger.info("Selector overrides in force: %s", ", ".join(book._used), extra={"spider": spider})
        runtime.subscribe(book.on_event)
        return book

    # --- overrides --------------------------------------------------------------------------
    def _in_force(self, labels: Any) -> None:
        """Every override version this run has applied, as the run page shows them (stat
        ``hitl/selectors/in_force``: "<domain> <field> v<version>, ...", a string like every
        stat a run row shows)."""
        self._used.extend(label for label in labels if label not in self._used)
        if self.rt is not None:
            self.rt.crawler.stats.set_value("hitl/selectors/in_force", ", ".join(self._used))

    def on_event(self, ev: Event) -> None:
        if ev.type != store.EVENT or ev.spider != self.spider_name or not ev.domain:
            return
        p = ev.payload
        keys = self.overrides.setdefault(ev.domain, {})
        if p.get("css") or p.get("xpath"):
            keys[p["field"]] = {"css": p.get("css"), "xpath": p.get("xpath"), "version": p.get("version")}
            self._in_force([f"{ev.domain} {p['field']} v{p.get('version')}"])
        else:
            keys.pop(p["field"], None)
        self._effective = {k: v for k, v in self._effective.items() if k[0] != ev.domain}
        self._expects.clear()
        if self.rt is not None:
            self.rt.crawler.stats.inc_value("hitl/selectors/applied")
            logger.info("Selector override for %s on %s: %s (v%s)", p["field"], ev.domain,
                        p.get("css") or p.get("xpath") or "back to the spider's", p.get("version"),
                        extra={"spider": self.rt.spider})

    def declaration(self, domain: str, item_type: Any = None, spider: Any = None) -> Declaration:
        key = (domain, item_type)
        found = self._effective.get(key)
        if found is None:
            base = self._declared.get(item_type)
            if base is None:
                base = declaration_of(spider, item_type)
                if base is None:
                    raise FieldsError(f"spider {self.spider_name!r} declares no hitl_fields: "
                                      "add hitl_fields = {'name': 'css::text', ...} to the spider")
                self._declared[item_type] = base
                if self.rt is not None:  # the console learns this item type's fields
                    self.rt.io(store.publish_declaration, self.rt.state.db, self.spider_name,
                               {base.prefix: base.to_dict()})
            found = self._effective[key] = base.with_overrides(self.overrides.get(domain))
        return found

    def expect_for(self, request: Request) -> str | None:
        """The page expectation of a spider with declared fields (its rows, overrides applied),
        per response: cached by host (cleared when an override arrives)."""
        parts = urlparse_cached(request)
        found = self._expects.get(parts.netloc, _UNSET)
        if found is _UNSET:
            found = self._expects[parts.netloc] = self.declaration((parts.hostname or "").lower()).expectation()
        return found  # type: ignore[return-value]

    # --- extraction -------------------------------------------------------------------------
    def extract(self, response: Response, item_type: Any, spider: Any) -> Any:
        domain = response_domain(response)
        decl = self.declaration(domain, item_type, spider)
        sel = response.selector  # type: ignore[attr-defined]
        result = decl.extract(sel)
        self._pages += 1
        if self.sampling and (self._pages <= SAMPLE_FIRST or self._pages % SAMPLE_EVERY == 0):
            self._sample(response, domain, decl, sel, result)
        return result

    def _sample(self, response: Response, domain: str, decl: Declaration, sel: Any, result: Any) -> None:
        """Fingerprint the elements this page's fields matched; keep the page if all did."""
        assert self.rt is not None
        pattern = path_pattern(urlparse_cached(response).path or "/")
        key = (domain, pattern)
        if self._taken.get(key, 0) >= SAMPLES:
            return
        samples = sample_fingerprints(decl, sel)
        if not samples:
            return
        self._taken[key] = self._taken.get(key, 0) + 1
        rt = self.rt
        rt.io(store.save_fingerprints, rt.state.db, self.spider_name, domain, pattern, samples).addErrback(
            self._failed, "fingerprints")
        rt.crawler.stats.inc_value("hitl/selectors/fingerprinted")
        complete = len(samples) == len(decl.fields) + (1 if decl.rows else 0) and (
            bool(result) if decl.rows else all(v not in (None, "", []) for v in result.values()))
        if complete and key not in self._good:
            self._good.add(key)
            rt.io(store.save_page, rt.state.db, self.spider_name, domain, pattern, "good", response.url,
                  response.body).addErrback(self._failed, "good page")

    def keep_missed(self, url: str, domain: str, pattern: str, body: bytes) -> None:
        """A page that missed its data (rare): kept for the fixer, off the reactor."""
        if self.rt is None or not self._declared:
            return
        self.rt.io(store.save_page, self.rt.state.db, self.spider_name, domain, pattern, "missed", url,
                   body).addErrback(self._failed, "missed page")

    def _failed(self, failure: Any, what: str) -> None:
        assert self.rt is not None
        self.rt.crawler.stats.inc_value("hitl/selectors/write_failed")
        logger.warning("Could not store a %s for the selector fixer: %s", what, failure.getErrorMessage(),
                       extra={"spider": self.rt.spider})
