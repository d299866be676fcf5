"""Block-detection middleware: classify every response and act on the verdict.

Sits at 650, between the downloader and Scrapy's Redirect (600) and Retry (550)
middlewares, so it sees a login redirect before it is followed and leaves ``retry``
verdicts (429, 503 + Retry-After, network errors) to Scrapy's own RetryMiddleware.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import NotConfigured
from scrapy.http import TextResponse
from scrapy.utils.httpobj import urlparse_cached

from scrapy_hitl.classifier import Observation
from scrapy_hitl.dispatch import response_method
from scrapy_hitl.drift import SelectorDrift, without_stale_meta
from scrapy_hitl.exceptions import RequestParked
from scrapy_hitl.middlewares.session import strip_session
from scrapy_hitl.runtime import HitlRuntime, request_domain
from scrapy_hitl.tiers import path_pattern

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from scrapy.http.headers import Headers
    from typing_extensions import Self

    from scrapy_hitl.classifier import Verdict

logger = logging.getLogger(__name__)

_EVIDENCE_HEADERS = 40
_MAX_ROTATIONS = 10  # times one request is sent again on another session after a refusal
_RENDERED_TIERS = frozenset(("browser", "stealth"))
_NO_PLAN: dict[str, Any] = {}


@dataclass(slots=True)
class Judgement:
    """One response's verdict and what was computed on the way (see HitlBlockMiddleware.judge)."""

    verdict: Verdict
    domain: str
    headers: dict[str, str]
    expect: str | None
    expect_missing: bool
    # evidence the escalation middleware took from the browser page: kind -> (type, bytes)
    artifacts: dict[str, tuple[str, bytes]] | None = None


def record_failed_download(rt: HitlRuntime, request: Request, *, status: int, reason: str) -> None:
    """A download that ended in an error, not a response to judge: a resumed request is marked
    done (failed), so it is not parked again at close to fail the same way in every later
    run, and the domain's counters see a failure."""
    park_id = request.meta.get("hitl_park_id")
    if park_id:
        rt.errored_resumed.add(park_id)
    rt.record(request_domain(request), engine=request.meta.get("hitl_tier", "static"), ok=False,
              status=status, reason=reason)


def _pattern(request: Request) -> str:
    """The request's page template: the escalation plan's, else computed (a forced tier)."""
    plan = request.meta.get("hitl_escalation")
    pattern = plan.get("pattern") if plan else None
    return pattern or path_pattern(urlparse_cached(request).path or "/")


def without_browser_meta(request: Request) -> Request:
    """The request without the browser tiers' per-download keys (an open page, callbacks):
    they cannot be parked, and the next download sets its own."""
    meta = request.meta
    if not any(key.startswith("playwright") for key in meta):
        return request
    return request.replace(meta={k: v for k, v in meta.items() if not k.startswith("playwright")})


# b"Content-Type" -> "content-type": a crawl meets a few dozen header names, on every response
_HEADER_NAMES: dict[bytes, str] = {}
_MAX_HEADER_NAMES = 1024


def header_dict(headers: Headers) -> dict[str, str]:
    """Scrapy's headers as the classifier's ``{lower-case name: str}`` (the last value of
    each; Set-Cookie keeps every value, one per line, so a vendor cookie is seen wherever
    it is in the response).

    Built once per response by walking the underlying dict: a page has a handful of
    headers, while the signatures ask about some twenty mostly absent ones, and each
    ``Headers.getlist`` would normalise and encode the name again.
    """
    out = {}
    names = _HEADER_NAMES
    for key, values in dict.items(headers):  # keys: title-cased bytes; values: lists of bytes
        if not values:
            continue
        name = names.get(key)
        if name is None:
            if len(names) >= _MAX_HEADER_NAMES:
                names.clear()
            name = names[key] = key.decode("latin-1").lower()
        if name == "set-cookie":
            out[name] = "\n".join(v.decode("latin-1") for v in values)
        else:
            out[name] = values[-1].decode("latin-1")
    return out


class HitlBlockMiddleware:
    """Classify; on a pause verdict park the request, open the intervention, pause the domain."""

    def __init__(self, crawler: Crawler, runtime: HitlRuntime) -> None:
        self.crawler = crawler
        self.rt = runtime
        self.stats = crawler.stats
        self.max_body = runtime.settings.classifier_max_body
        # pages that missed hitl_expect on the top tier (one guard per crawler: the escalation
        # middleware builds a second instance of this class for judge())
        self.drift = SelectorDrift.of(runtime)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("HITL_BLOCKS_ENABLED", True):
            raise NotConfigured("HITL_BLOCKS_ENABLED is False")
        return cls(crawler, HitlRuntime.of(crawler))

    def _expect(self, request: Request, meta: dict[str, Any] | None = None) -> str | None:
        expect = (request.meta if meta is None else meta).get("hitl_expect")
        if expect is None and self.rt.spider is not None:
            expect = getattr(self.rt.spider, "hitl_expect", None)
            book = self.rt.selectors
            if expect is None and book is not None and book.expects:  # declared fields: their rows
                expect = book.expect_for(request)
        return expect or None

    def judge(self, request: Request, response: Response) -> Judgement:
        """Classify ``response`` once; the escalation middleware asks first, for the same
        response, and both must act on one verdict."""
        cache = self.rt.judgements
        found = cache.get(response)
        if found is not None:
            return found
        rt = self.rt
        meta = request.meta
        status = response.status
        domain = request_domain(request)
        headers = header_dict(response.headers)
        is_text = isinstance(response, TextResponse)
        content_type = headers.get("content-type", "").lower() if is_text else ""
        expect = self._expect(request, meta) if is_text and 200 <= status < 300 else None
        expect_missing = bool(expect) and not response.css(expect)  # type: ignore[attr-defined]
        obs = Observation(
            url=response.url,
            status=status,
            headers=headers,
            body=response.text[: self.max_body] if is_text else "",  # type: ignore[attr-defined]
            utf8_body=(response.body[: 4 * self.max_body]  # (at least max_body characters)
                       if "utf-8" in content_type or "utf8" in content_type else None),
            has_session="hitl_session" in meta,
            access_class=rt.access_class(domain),
            expect_missing=expect_missing,
            expect_met=bool(expect) and not expect_missing,  # then a generic in-page refusal is not one
            # The spider's own expectation is met: the page is content, nothing to climb for
            # (and the JavaScript-shell heuristics need not run).
            can_escalate=bool(meta.get("hitl_can_escalate")) and not (expect and not expect_missing),
            rendered=meta.get("hitl_tier") in _RENDERED_TIERS,
            shell_check=(meta.get("hitl_escalation") or _NO_PLAN).get("shell_check", True),
        )
        judgement = cache[response] = Judgement(rt.classifier.classify(obs), domain, headers, expect, expect_missing)
        return judgement

    @response_method
    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        meta = request.meta
        if meta.get("dont_hitl"):
            return response
        rt = self.rt
        judgement = self.judge(request, response)
        rt.judgements.pop(response, None)
        verdict, domain = judgement.verdict, judgement.domain
        action = verdict.action
        if judgement.expect:  # for the quality pipeline's extraction score (response.meta)
            meta["hitl_expect_matched"] = not judgement.expect_missing
        tier = meta.get("hitl_tier", "static")
        rt.record(domain, engine=tier, ok=action == "ok", status=response.status,
                  reason=verdict.reason, kind=verdict.type or "")
        if action == "ok":  # the common case: nothing to count, keep or park
            if judgement.expect and not judgement.expect_missing and self.drift.pending:
                self.drift.matched(domain, _pattern(request))
            if "hitl_session" in meta:
                rt.session_pools.good(meta["hitl_session"], meta.get("hitl_session_name", ""))
            if "hitl_park_id" in meta:  # a resumed request (rt.ack looks no further)
                rt.ack(request)
            return response
        if action in ("pause", "escalate", "retry"):  # a 404 is not a block
            self.stats.inc_value(f"hitl/blocks/{verdict.reason}")
        if action in ("pause", "fail"):  # the first of its kind keeps the page (snapshots.py)
            rt.snapshots.verdict(request, response, judgement)

        if action == "pause":
            if not rt.ladder.human:
                # HITL_TIERS leaves out "human": behave as Scrapy would without the add-on.
                self.stats.inc_value("hitl/blocks/not_paused")
                return response
            if verdict.type == "selector_fix":
                return self._drift(request, response, domain, verdict)
            if "hitl_session" in request.meta:
                retry = self._rotate(request, domain, verdict)
                if retry is not None:
                    return retry
            self._pause(request, response, domain, verdict, judgement)
        if judgement.expect and not judgement.expect_missing and self.drift.pending:
            self.drift.matched(domain, _pattern(request))
        rt.ack(request)
        return response

    def _pause(
        self, request: Request, response: Response, domain: str, verdict: Verdict, judgement: Judgement,
    ) -> None:
        rt = self.rt
        assert verdict.type is not None
        headers = judgement.headers
        evidence = {**self._evidence(response), "tier": request.meta.get("hitl_tier", "static")}
        if "hitl_session" in request.meta:
            retired = rt.session_pools.retired(request.meta["hitl_session"])
            if retired:  # which sessions the pool lost, and why, for the reviewer
                evidence["retired_sessions"] = retired
        artifacts = judgement.artifacts
        if artifacts is None and not rt.is_domain_paused(domain):  # a static-tier page: its body
            artifacts = {"body": (headers.get("content-type", "application/octet-stream"),
                                  response.body[: rt.settings.evidence_max_bytes])}
        rt.open_intervention(
            domain=domain, type=verdict.type, reason=verdict.reason, vendor=verdict.vendor,
            url=request.url, response_status=response.status,
            response_headers={k: headers[k] for k in list(headers)[:_EVIDENCE_HEADERS]},
            evidence=evidence, artifacts=artifacts or None,
        )
        rt.hold(without_browser_meta(request), domain, verdict.reason)

    def _rotate(self, request: Request, domain: str, verdict: Verdict) -> Request | None:
        """A block with a session: a refusal (401/403, login redirect) retires that session
        only; any other block raises its error score. The request is sent again on another
        session of the pool while one is left (None: pause as usual)."""
        rt, meta = self.rt, request.meta
        session_domain, name = meta["hitl_session"], meta.get("hitl_session_name", "")
        if verdict.type != "login_refresh":
            rt.session_pools.bad(session_domain, name, verdict.reason)
            return None
        if not rt.invalidate_session(session_domain, verdict.reason, name):
            return None
        rotations = meta.get("hitl_session_rotations", 0)
        if rotations >= _MAX_ROTATIONS:
            return None
        self.stats.inc_value("hitl/sessions/rotated")
        self.stats.inc_value(f"hitl/sessions/{session_domain}/rotated")
        logger.info("Session %(name)s of %(domain)s was refused (%(reason)s); sending %(request)s again "
                    "on another session", {"name": name, "domain": session_domain, "reason": verdict.reason,
                                           "request": request}, extra={"spider": rt.spider})
        retry = without_browser_meta(request).replace(dont_filter=True)
        strip_session(retry)
        retry.meta["hitl_session_rotations"] = rotations + 1
        return retry

    def _evidence(self, response: Response) -> dict[str, Any]:
        body = response.text[:20000] if isinstance(response, TextResponse) else ""
        return {"status": response.status, "url": response.url, "body_excerpt": body}

    def _drift(self, request: Request, response: Response, domain: str, verdict: Verdict) -> Response:
        """The expected selector is missing on the top tier: the drift guard keeps the page's
        request and lets the page through, until ``HITL_SELECTOR_DRIFT_PAGES`` pages of its
        template have missed in a row; then they are parked and a human is asked (see
        :mod:`scrapy_hitl.drift`, which also settles the undecided ones when the crawl idles)."""
        rt = self.rt
        evidence = {**self._evidence(response), "expect": self._expect(request),
                    "tier": request.meta.get("hitl_tier", "static")}
        pattern = _pattern(request)
        if rt.selectors is not None:  # the fixer's copy of the page (declared fields only)
            rt.selectors.keep_missed(request.url, domain, pattern, response.body)
        if not self.drift.missed(request, domain, pattern, evidence):
            return response  # (a resumed request is acknowledged once its copy is kept)
        rt.hold(without_stale_meta(request), domain, verdict.reason)

    def process_exception(
        self, request: Request, exception: Exception, spider: Spider | None = None
    ) -> None:
        # Network errors are Scrapy's RetryMiddleware's business, never a human's. Remember
        # the resumed ones so a final failure is not mistaken for "still to do" at close.
        if isinstance(exception, RequestParked):
            return None
        record_failed_download(self.rt, request, status=0, reason="network_error")
        return None
