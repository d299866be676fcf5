"""The OpenAPI document against the real app: it documents exactly the app's routes, and every
request and answer of a realistic session (logins, resolves, uploads, errors) matches it.

Requests are checked against the document as published; a request the app must refuse is
checked to be refused by the document too. Answers are checked against a stricter copy in
which no object may carry a field the document does not name, so an undocumented field fails.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import io
import json
import re
import threading
from pathlib import Path

import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.validation.request.exceptions import (
    InvalidParameter,
    RequestBodyValidationError,
    SecurityValidationError,
)
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from werkzeug.wrappers import Request, Response

from hitl_console.openapi import document_bytes
from scrapy_hitl.learning import DomainCounters
from scrapy_hitl.live.tokens import LiveTokens
from scrapy_hitl.state import artifacts, consultations, domains, interventions, items, snapshots
from scrapy_hitl.state import jobs as hitl_jobs
from scrapy_hitl.state.parking import ParkEntry
from scrapy_hitl.state.runs import create_run, update_run
from tests.console.test_artifacts import png
from tests.support.console import PASSWORD
from tests.support.servers import free_port

SPEC = json.loads(document_bytes())
METHODS = {"get", "put", "post", "delete", "patch"}
NOT_IN_THE_API = {"pages", "live", "live_view", "job_log_ws", "job_pages", "fixer"}  # HTML pages and the websockets: blueprints the document skips
NOT_IN_THE_API |= {"notify_pages"}  # the Notifications page (docs/notifications.md)


def strict(spec: dict) -> dict:
    """A copy of ``spec`` in which objects refuse fields they do not name (for answers).

    Each inline object and each schema reference gets ``unevaluatedProperties: false``, except
    the members of an ``allOf`` (their composition is checked as a whole) and objects that say
    ``additionalProperties`` themselves (free-form ones such as ``evidence``). A reference is
    wrapped in an ``allOf`` first: openapi-core drops the siblings of a ``$ref`` it resolves."""
    spec = copy.deepcopy(spec)

    def walk(node, in_allof=False, component=False):
        if isinstance(node, list):
            for item in node:
                walk(item, in_allof)
            return
        if not isinstance(node, dict):
            return
        if in_allof or component or "additionalProperties" in node:
            pass
        elif node.get("$ref", "").startswith("#/components/schemas/"):
            node["allOf"] = [{"$ref": node.pop("$ref")}]
            node["unevaluatedProperties"] = False
            return
        elif "properties" in node or "allOf" in node:
            node["unevaluatedProperties"] = False
        for key, value in node.items():
            walk(value, in_allof=key == "allOf")

    for schema in spec["components"]["schemas"].values():
        walk(schema, component=True)
    walk(spec["paths"])
    walk(spec["components"]["responses"])
    return spec


@pytest.fixture(scope="module")
def openapi():
    """Requests are checked against the document as published, answers against the strict copy
    (``from_dict`` validates both)."""
    return OpenAPI.from_dict(SPEC), OpenAPI.from_dict(strict(SPEC))


class Recorder:
    """WSGI middleware that keeps every request (body included) and answer the app sees."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.calls: list[tuple[Request, Response]] = []

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        request = Request({**environ, "wsgi.input": io.BytesIO(body)})
        answer = {}

        def start(status, headers, exc_info=None):
            answer.update(status=status, headers=list(headers))
            return start_response(status, headers, exc_info)

        chunks = self.wsgi_app(environ, start)
        try:
            if any(k.lower() == "content-type" and v.startswith("text/event-stream") for k, v in answer["headers"]):
                # An event stream is open until the client leaves: keep it up to its first
                # events (call it with events to replay), then leave, as a client would.
                data = b""
                for chunk in chunks:
                    data += chunk
                    if b"data:" in chunk:
                        break
            else:
                data = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        self.calls.append((request, Response(data, status=answer["status"], headers=answer["headers"])))
        return [data]


# --- the document itself --------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1():
    validate(SPEC)
    assert SPEC["openapi"] == "3.1.0"
    assert set(SPEC["components"]["securitySchemes"]) == {"bearer", "cookie", "apiKey"}


def _rule_to_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule)


def routed(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.partition(".")[0]
        if rule.endpoint == "static" or blueprint in NOT_IN_THE_API:
            assert not rule.rule.startswith("/api/"), f"{rule.rule} is API but in {blueprint}"
            continue
        out |= {(_rule_to_path(rule.rule), m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def documented() -> set[tuple[str, str]]:
    return {(path, method) for path, item in SPEC["paths"].items() for method in item if method in METHODS}


def test_every_route_is_documented_and_nothing_else(app):
    routes = routed(app)
    assert routes - documented() == set(), "routes missing from hitl_console/openapi.json"
    assert documented() - routes == set(), "documented operations the app does not have"
    assert ("/ws/events", "get") not in routes and SPEC["x-websocket"]["path"] == "/ws/events"


def test_the_documented_logins_and_roles_are_enforced(app, users):
    """No security: open to anyone. Otherwise 401 without a token, and an operation marked
    ``x-hitl-role: admin``, or open to agents (``apiKey``) only, is 403 for a reviewer. (Register may be
    open: HITL_OPEN_REGISTRATION.)"""
    client = app.test_client(use_cookies=False)
    login = client.post("/api/v1/auth/login", json={"email": "reviewer@example.com", "password": PASSWORD})
    reviewer = {"Authorization": f"Bearer {login.json['access_token']}"}
    # logout last: it revokes the token the other calls use
    for path, method in sorted(documented(), key=lambda pm: (pm[0] == "/api/v1/auth/logout", pm)):
        op = SPEC["paths"][path][method]
        security = op.get("security", SPEC["security"])
        url = re.sub(r"\{\w+\}", "1", path)  # any id will do: the login is checked first
        anonymous = client.open(url, method=method.upper(), json={}).status_code
        as_reviewer = client.open(url, method=method.upper(), json={}, headers=reviewer).status_code
        if security == []:
            assert anonymous != 401, (method, path)
        elif {} not in security:
            assert anonymous == 401, (method, path)
        # optional security is register's: admins only unless HITL_OPEN_REGISTRATION (off here)
        admin_only = op.get("x-hitl-role") == "admin" or {} in security
        agents_only = bool(security) and all("apiKey" in s for s in security)
        assert (as_reviewer == 403) == (admin_only or agents_only), (method, path, as_reviewer)


def test_the_documented_event_types_are_the_streams():
    from scrapy_hitl.state.events import EVENT_TYPES

    assert SPEC["components"]["schemas"]["Event"]["properties"]["type"]["enum"] == list(EVENT_TYPES)


def test_the_document_is_served_without_login(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.json == SPEC


# --- a whole session, every call validated -----------------------------------------------------------

SHOP, BLOG, NEWS, FORUM, OTHER = ("shop.example.com", "blog.example.com", "news.example.com",
                                  "forum.example.com", "other.example.com")


def cookies_txt(domain: str) -> str:
    return ("# Netscape HTTP Cookie File\n"
            f".{domain}\tTRUE\t/\tFALSE\t0\tsid\tS1\n"
            f"{domain}\tFALSE\t/\tTRUE\t4102444800\tcf_clearance\tS2\n")


class Api:
    """Calls the app, asserts the status, and notes which request the document must refuse."""

    def __init__(self, app, recorder):
        self.app = app
        self.recorder = recorder
        self.bearer = app.test_client(use_cookies=False)
        self.browser = app.test_client()  # keeps the login cookies
        self.refused: dict[int, type[Exception]] = {}

    def __call__(self, method, path, status, *, as_=None, browser=False, refused=None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if as_:
            headers["Authorization"] = f"Bearer {as_}"
        n = len(self.recorder.calls)
        client = self.browser if browser else self.bearer
        response = client.open(path, method=method, headers=headers, **kwargs)
        assert response.status_code == status, (method, path, response.get_data(as_text=True)[:500])
        assert len(self.recorder.calls) == n + 1
        if refused:
            self.refused[n] = refused
        return response

    def login(self, email):
        return self("POST", "/api/v1/auth/login", 200,
                    json={"email": email, "password": PASSWORD}).json["access_token"]


def _describe(exc: BaseException) -> str:
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        parts += [f"  - {e.message[:300]} at {list(e.absolute_path)}"
                  for e in getattr(exc, "schema_errors", ())]
        exc = exc.__cause__
    return "\n    ".join(parts)


def event_errors(response) -> list[str]:
    """Each message of a recorded event stream against the document's ``Event``, strictly."""
    event = OAS31Validator({"$ref": "#/components/schemas/Event", "unevaluatedProperties": False,
                            "components": strict(SPEC)["components"]})
    lines = [line for line in response.get_data(as_text=True).splitlines() if line.startswith("data:")]
    return [f"{e.message[:300]} at {list(e.absolute_path)}"
            for line in lines for e in event.iter_errors(json.loads(line[5:]))] if lines else ["no message"]


def mismatches(openapi, recorder, refused):
    """Every recorded call checked against the document; a list of what does not match."""
    published, strict_ = openapi
    problems = []
    for i, (request, response) in enumerate(recorder.calls):
        name = f"{request.method} {request.full_path.rstrip('?')} -> {response.status_code}"
        req = WerkzeugOpenAPIRequest(request)
        errors = list(published.iter_request_errors(req))
        if i in refused:
            if not any(isinstance(e, refused[i]) for e in errors):
                problems.append(f"{name}: the document should refuse this request ({refused[i].__name__}), "
                                f"but found {[_describe(e) for e in errors] or 'nothing wrong'}")
        else:
            problems += [f"{name}: request: {_describe(e)}" for e in errors]
        problems += [f"{name}: response: {_describe(e)}"
                     for e in strict_.iter_response_errors(req, WerkzeugOpenAPIResponse(response))]
        if response.status_code == 200 and response.mimetype == "text/event-stream":
            problems += [f"{name}: event: {e}" for e in event_errors(response)]
    return problems


def covered(recorder) -> set[tuple[str, str]]:
    """The documented operations that answered 2xx at least once."""
    templates = [(re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", p) + "$"), p) for p in SPEC["paths"]]
    out = set()
    for request, response in recorder.calls:
        if response.status_code < 300:
            out |= {(p, request.method.lower()) for rx, p in templates if rx.match(request.path)}
    return out


@pytest.fixture
def api(app, users):
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder
    return Api(app, recorder)


@pytest.fixture
def world(app):
    """A run with a timeline, interventions on five domains, parked requests, stats, a session."""
    hitl = app.extensions["hitl"]
    create_run(hitl.db, "run-1", "shop", {"category": "books"}, "/srv/shop")
    create_run(hitl.db, "run-2", "blog", {}, "/srv/blog")
    for i in range(3):
        hitl.events.emit("run.progress", {"items": i}, run_id="run-1", spider="shop")

    def open_(type_, domain, **kwargs):
        data, _ = interventions.open_or_update(hitl, type=type_, domain=domain, reason="http_403",
                                               spider=kwargs.pop("spider", "shop"), **kwargs)
        return data["id"]

    ids = {
        "shop": open_("manual_access", SHOP, run_id="run-1", url=f"https://{SHOP}/p/1", response_status=403,
                      response_headers={"server": "cloudflare"}, vendor="cloudflare",
                      evidence={"status": 403, "url": f"https://{SHOP}/p/1", "body_excerpt": "<h1>No</h1>"}),
        "shop_captcha": open_("captcha_solve", SHOP),
        "blog": open_("manual_access", BLOG, spider="blog", run_id="run-2"),
        "news": open_("login_refresh", NEWS),
        "other": open_("selector_fix", OTHER),
        "forum": open_("manual_access", FORUM),
        "forum_captcha": open_("captcha_solve", FORUM),
    }
    artifacts.attach(hitl.db, ids["shop"], {"screenshot": ("image/png", png()),
                                            "html": ("text/html; charset=utf-8", b"<h1>No</h1>")})
    artifacts.attach(hitl.db, ids["blog"], {"body": ("application/json", b'{"blocked": true}')})
    snapshots.store(hitl.db, run_id="run-1", spider="shop", domain=SHOP, source="pause", code="http_403",
                    message="manual_access", url=f"https://{SHOP}/p/1", tier="browser", status=403,
                    html=("text/html; charset=utf-8", b"<h1>No</h1>"), screenshot=png())
    snapshots.store(hitl.db, run_id="run-1", spider="shop", domain=SHOP, source="download_error",
                    code="TimeoutError", message="took longer than 180.0 seconds", url=f"https://{SHOP}/p/2")
    hitl.parking.park("shop", [
        ParkEntry.build(domain=SHOP, fingerprint=f"fp-{i}", request={"url": f"https://{SHOP}/p/{i}"},
                        reason="http_403") for i in range(3)])
    for domain, blocked in ((SHOP, 4), (BLOG, 0)):
        counters = DomainCounters()
        for i in range(10):
            counters.record(engine="http", ok=i >= blocked, status=403 if i < blocked else 200)
        domains.apply_counters(hitl.db, {domain: counters}, min_attempts=1000, block_rate=0.8)
    return ids


def _held_page(client, intervention_id: int, crawler_ready: threading.Event) -> None:
    """The crawler's side of a live page, through the relay it uses: announce the page, then
    answer two Continues, the first with the challenge still there."""
    from scrapy_hitl.live import relay

    async def hold():
        aclient = relay.async_client(client)
        try:
            await relay.announce(aclient, intervention_id, {"domain": "live.example.com", "url": "https://x/",
                                                            "width": 1280, "height": 720}, 60)
            crawler_ready.set()
            answers = [{"ok": False, "error": "challenge_present", "reason": "cloudflare_challenge",
                        "url": "https://x/", "message": "The challenge is still there."},
                       {"ok": True, "url": "https://x/", "cookie_names": ["cf_clearance"], "requests_to_resume": 0}]
            after = "0-0"
            while answers:
                for entry_id, msg in await relay.read_input(aclient, intervention_id, after, 30_000):
                    after = entry_id
                    if msg.get("op") == "continue":
                        await relay.reply(aclient, intervention_id, msg["rid"], answers.pop(0))
        finally:
            await aclient.aclose()

    asyncio.run(hold())


# ``status=`` (any status) on the items endpoints is documented with allowEmptyValue, which
# OpenAPI 3.1 still defines but openapi-core flags as deprecated.
@pytest.mark.filterwarnings("ignore:Use of allowEmptyValue property is deprecated:DeprecationWarning")
def test_a_whole_session_matches_the_document(app, api, world, openapi, users, monkeypatch):
    hitl = app.extensions["hitl"]
    api("GET", "/api/v1/openapi.json", 200)
    api("GET", "/health", 200)
    api("GET", "/health/live", 200)
    admin, reviewer = api.login("admin@example.com"), api.login("reviewer@example.com")
    api("GET", "/api/v1/auth/me", 200, as_=reviewer)

    # interventions: a list in pages, filters, one in detail
    first = api("GET", "/api/v1/interventions?limit=3", 200, as_=reviewer).json
    assert first["next_cursor"]
    api("GET", f"/api/v1/interventions?limit=3&cursor={first['next_cursor']}", 200, as_=reviewer)
    api("GET", f"/api/v1/interventions?status=open&type=manual_access&domain={SHOP}&run_id=run-1", 200,
        as_=reviewer)
    detail = api("GET", f"/api/v1/interventions/{world['shop']}", 200, as_=reviewer).json
    assert detail["parked_count"] == 3 and len(detail["parked_requests"]) == 3
    assert set(detail["evidence"]["artifacts"]) == {"screenshot", "html"}
    for kind in ("screenshot", "html"):  # the evidence files: a PNG, HTML
        api("GET", f"/api/v1/interventions/{world['shop']}/artifacts/{kind}", 200, as_=reviewer)
    api("GET", f"/api/v1/interventions/{world['blog']}/artifacts/body", 200, as_=reviewer)  # any type

    # resolve: JSON with cookies (a run, a session), JSON done, a multipart upload
    done = api("POST", f"/api/v1/interventions/{world['shop']}/resolve", 200, as_=reviewer, json={
        "resolution": {"action": "cookies"}, "note": "logged in",
        "captured_session": {"cookies": [{"name": "sid", "value": "S", "domain": f".{SHOP}"}],
                             "user_agent": "UA/1"}}).json
    assert done["run"]["id"] == "run-1" and done["session"]["cookie_names"] == ["sid"]
    api("POST", f"/api/v1/interventions/{world['news']}/resolve", 200, as_=reviewer,
        json={"resolution": {"action": "done"}, "note": "nothing needed"})
    api("POST", f"/api/v1/interventions/{world['blog']}/resolve", 200, as_=reviewer,
        data={"cookies": (io.BytesIO(cookies_txt(BLOG).encode()), "cookies.txt"), "note": "from a file"})
    api("GET", f"/api/v1/interventions/{world['shop']}", 200, as_=reviewer)  # closed now
    api("POST", f"/api/v1/interventions/{world['other']}/cancel", 200, as_=reviewer, json={"note": "gone"})
    bulk = api("POST", "/api/v1/interventions/bulk-resolve", 200, as_=reviewer,
               json={"domain": SHOP, "resolution": {"action": "done"}}).json
    assert bulk["resolved"] == [world["shop_captcha"]] and bulk["requests_resumed"] == 3
    api("POST", "/api/v1/interventions/bulk-resolve", 200, as_=reviewer,
        data={"domain": FORUM, "cookies_text": cookies_txt(FORUM), "note": "one login"})

    # runs, their timeline in pages, spider pauses
    update_run(hitl.db, "run-2", status="completed", finish_reason="finished")
    runs = api("GET", "/api/v1/runs?limit=1", 200, as_=reviewer).json
    api("GET", f"/api/v1/runs?limit=1&cursor={runs['next_cursor']}", 200, as_=reviewer)
    api("GET", "/api/v1/runs?status=running&spider=shop", 200, as_=reviewer)
    api("GET", "/api/v1/runs/run-1", 200, as_=reviewer)
    api("GET", "/api/v1/runs/run-2", 200, as_=reviewer)
    events = api("GET", "/api/v1/runs/run-1/events?limit=2", 200, as_=reviewer).json
    assert len(events["items"]) == 2 and events["next_cursor"]
    api("GET", f"/api/v1/runs/run-1/events?limit=2&cursor={events['next_cursor']}", 200, as_=reviewer)
    kept = api("GET", "/api/v1/runs/run-1/snapshots?limit=1", 200, as_=reviewer).json
    assert set(kept["items"][0]["files"]) == {"html", "screenshot"} and kept["next_cursor"]
    api("GET", f"/api/v1/runs/run-1/snapshots?limit=1&cursor={kept['next_cursor']}", 200, as_=reviewer)
    for kind in ("html", "screenshot"):
        api("GET", f"/api/v1/runs/run-1/snapshots/{kept['items'][0]['id']}/{kind}", 200, as_=reviewer)
    api("POST", "/api/v1/spiders/shop/pause", 200, as_=reviewer)
    api("POST", "/api/v1/spiders/shop/pause", 200, as_=reviewer)
    api("POST", "/api/v1/spiders/shop/unpause", 200, as_=reviewer)

    # sessions: pages, one, create (201), replace by upload (200), delete (204)
    sessions = api("GET", "/api/v1/sessions?limit=1", 200, as_=reviewer).json
    api("GET", f"/api/v1/sessions?limit=1&cursor={sessions['next_cursor']}", 200, as_=reviewer)
    api("GET", f"/api/v1/sessions/{BLOG}", 200, as_=reviewer)
    api("PUT", f"/api/v1/sessions/{NEWS}", 201, as_=reviewer, json={"cookies": cookies_txt(NEWS)})
    api("PUT", f"/api/v1/sessions/{NEWS}", 200, as_=reviewer,
        data={"cookies": (io.BytesIO(cookies_txt(NEWS).encode()), "cookies.txt"), "user_agent": "UA/2"})
    api("DELETE", f"/api/v1/sessions/{NEWS}", 204, as_=reviewer)
    # session pools: add a named one (201, then 409), read and delete it, a probe, a login page
    named = {"cookies": cookies_txt(NEWS), "name": "alice"}
    api("POST", f"/api/v1/sessions/{NEWS}", 201, as_=reviewer, json=named)
    api("POST", f"/api/v1/sessions/{NEWS}", 409, as_=reviewer, json=named)
    api("GET", f"/api/v1/sessions/{NEWS}/alice", 200, as_=reviewer)
    api("PUT", f"/api/v1/sessions/{NEWS}/probe", 200, as_=reviewer,
        json={"url": f"https://{NEWS}/account", "selector": "a.logout"})
    api("PUT", f"/api/v1/sessions/{NEWS}/probe", 422, as_=reviewer, json={"url": f"https://{NEWS}/", "selector": "a["})
    api("POST", f"/api/v1/sessions/{NEWS}/login", 503, as_=reviewer, json={"url": f"https://{NEWS}/login"})
    from hitl_console import login_pages

    hitl.redis.set(login_pages.ALIVE_KEY, "a-worker", ex=60)  # what a `hitl worker` serving login pages sets
    api("POST", f"/api/v1/sessions/{NEWS}/login", 202, as_=reviewer, json={"url": f"https://{NEWS}/login"})
    api("DELETE", f"/api/v1/sessions/{NEWS}/alice", 204, as_=reviewer)

    # domains: pages, one, its history, an admin edit
    page = api("GET", "/api/v1/domains?limit=1", 200, as_=reviewer).json
    api("GET", f"/api/v1/domains?limit=1&cursor={page['next_cursor']}", 200, as_=reviewer)
    api("GET", f"/api/v1/domains/{SHOP}", 200, as_=reviewer)
    api("GET", f"/api/v1/domains/{SHOP}/history?limit=10", 200, as_=reviewer)
    api("PATCH", f"/api/v1/domains/{SHOP}", 200, as_=admin, json={"access_class": "human"})

    # users
    listed = api("GET", "/api/v1/users?limit=1", 200, as_=admin).json
    api("GET", f"/api/v1/users?limit=1&cursor={listed['next_cursor']}", 200, as_=admin)
    new = api("POST", "/api/v1/users", 201, as_=admin,
              json={"email": "new@example.com", "password": "long enough pw"}).json
    api("PATCH", f"/api/v1/users/{new['id']}", 200, as_=admin, json={"role": "admin", "active": False})
    api("POST", "/api/v1/auth/register", 201, as_=admin,
        json={"email": "third@example.com", "password": "long enough pw", "role": "reviewer"})

    # API keys (admins), consultations (agents ask, reviewers answer)
    created = api("POST", "/api/v1/api-keys", 201, as_=admin, json={"name": "pricing bot"}).json
    key, key_id = created["key"], created["id"]
    retired = api("POST", "/api/v1/api-keys", 201, as_=admin, json={"name": "old bot"}).json
    keys = api("GET", "/api/v1/api-keys?limit=1", 200, as_=admin).json
    api("GET", f"/api/v1/api-keys?limit=1&cursor={keys['next_cursor']}", 200, as_=admin)
    api("GET", f"/api/v1/api-keys/{key_id}", 200, as_=admin)
    api("PATCH", f"/api/v1/api-keys/{retired['id']}", 200, as_=admin, json={"name": "retired", "revoked": True})
    api("POST", f"/api/v1/api-keys/{key_id}/rotate-webhook-secret", 200, as_=admin, json={"grace_seconds": 60})
    api("POST", f"/api/v1/api-keys/{key_id}/rotate-webhook-secret", 200, as_=admin)  # no body: one day
    asked = api("POST", "/api/v1/consultations", 201, as_=key, json={
        "title": "Is 12.99 EUR right?", "description": "From the product page.",
        "context": {"url": "https://shop.example/p/1", "html": "<b>12.99</b>"},
        "options": ["yes", {"value": "no", "label": "No, the price is wrong"}],
        "callback_url": "https://agent.example/hooks/hitl", "timeout_seconds": 3600, "priority": 50,
        "metadata": {"trace": "t-1"}}).json
    priced = api("POST", "/api/v1/consultations", 201, as_=key, json={
        "title": "What is the price?", "response_schema": {
            "type": "object", "properties": {"price": {"type": "number", "minimum": 0}}, "required": ["price"]}}).json
    free = api("POST", "/api/v1/consultations", 201, as_=key, json={"title": "Anything else?", "context": None,
                                                                     "priority": None}).json
    spare = api("POST", "/api/v1/consultations", 201, as_=key, json={"title": "Spare"}).json
    by_spider = consultations.create(hitl, title="Selector broke?", actor="spider:shop")
    mine = api("GET", "/api/v1/consultations?limit=2", 200, as_=key).json
    api("GET", f"/api/v1/consultations?limit=2&cursor={mine['next_cursor']}", 200, as_=key)
    queue = api("GET", "/api/v1/consultations?state=pending&order=priority&min_priority=0&limit=1", 200,
                as_=reviewer).json
    api("GET", f"/api/v1/consultations?state=pending&order=priority&limit=1&cursor={queue['next_cursor']}", 200,
        as_=reviewer)
    api("GET", f"/api/v1/consultations?api_key_id={key_id}", 200, as_=reviewer)
    api("GET", f"/api/v1/consultations/{by_spider['id']}", 200, as_=reviewer)
    api("GET", f"/api/v1/consultations/{asked['id']}", 200, as_=key)
    api("GET", f"/api/v1/consultations/{asked['id']}?wait=1", 200, as_=key)  # still pending after 1 s
    api("POST", f"/api/v1/consultations/{asked['id']}/respond", 200, as_=reviewer, json={"answer": "no"})
    api("GET", f"/api/v1/consultations/{asked['id']}?wait=30", 200, as_=key)  # answered: at once
    api("GET", f"/api/v1/consultations/{asked['id']}/deliveries", 200, as_=key)  # its webhook (no worker here)
    api("POST", f"/api/v1/consultations/{asked['id']}/redeliver", 202, as_=reviewer)
    api("POST", f"/api/v1/consultations/{free['id']}/cancel", 200, as_=key, json={"reason": "solved it"})
    api("POST", f"/api/v1/consultations/{spare['id']}/cancel", 200, as_=key)  # no body

    # items: the review queue in pages, one item, an edit, approve, reject, restore, versions, history, exports
    failing = [{"check": "missing", "field": "price", "message": "required field missing or empty"},
               {"check": "rule", "field": None, "rule": "cheap", "message": "cheap is false"}]
    items.record(hitl.db, [
        {"run_id": "run-1", "spider": "shop", "item_type": "Product", "url": f"https://{SHOP}/p/{sku}",
         "status": status, "score": score, "breakdown": {"completeness": score}, "evidence_key": "page",
         "failing": failing if score < 1 else [], "data": {"sku": sku, "specs": {"kg": 1}}}
        for sku, status, score in (("H1", "pending_review", 0.2), ("H2", "pending_review", 0.4),
                                   ("O1", "optional_review", 0.7), ("D1", "delivered", 1.0))],
        {"page": {"content_type": "text/html", "url": f"https://{SHOP}/p/H1", "data": b"<h1>H1</h1>"}})
    held = api("GET", "/api/v1/items?run_id=run-1&status=pending_review&order=score&limit=1", 200, as_=reviewer).json
    api("GET", f"/api/v1/items?status=pending_review&order=score&limit=1&cursor={held['next_cursor']}", 200,
        as_=reviewer)
    listed_items = api("GET", "/api/v1/items?status=&spider=shop&order=id", 200, as_=reviewer).json["items"]
    h1, h2, o1, d1 = (i["id"] for i in listed_items)
    api("GET", "/api/v1/items/queue?run_id=run-1", 200, as_=reviewer)
    assert api("GET", f"/api/v1/items/{h1}/next", 200, as_=reviewer).json["item"]["id"] == h2
    assert api("GET", f"/api/v1/items/{d1}/next?status=&order=id", 200, as_=reviewer).json == {"item": None}
    api("GET", f"/api/v1/items/{h1}", 200, as_=reviewer)
    api("PATCH", f"/api/v1/items/{h1}", 200, as_=reviewer,
        json={"data": {"price": 9.5}, "expected_version": 1, "note": "from the page"})
    api("PATCH", f"/api/v1/items/{h2}", 200, as_=reviewer, json={"data": {"sku": "H2"}, "replace": True})
    api("POST", f"/api/v1/items/{h1}/approve", 200, as_=reviewer,
        json={"data": {"name": "One"}, "expected_version": 2, "note": "ok"})
    api("POST", f"/api/v1/items/{h2}/reject", 200, as_=reviewer)  # no body
    api("POST", f"/api/v1/items/{h1}/restore", 200, as_=reviewer, json={"version": 1, "note": "undo"})
    api("GET", f"/api/v1/items/{h1}/versions", 200, as_=reviewer)
    api("GET", f"/api/v1/items/{h1}/history", 200, as_=reviewer)
    api("GET", "/api/v1/runs/run-1/quality", 200, as_=reviewer)
    for fmt in ("json", "jsonl", "csv", "xlsx"):
        api("GET", f"/api/v1/runs/run-1/items.{fmt}", 200, as_=reviewer)

    # the browser: cookie auth, CSRF on writes, logout
    csrf = api("POST", "/api/v1/auth/login", 200, browser=True,
               json={"email": "reviewer@example.com", "password": PASSWORD}).json["csrf_token"]
    api("GET", "/api/v1/auth/me", 200, browser=True)
    api("POST", "/api/v1/spiders/blog/pause", 403, browser=True)  # no X-CSRF-Token
    api("POST", "/api/v1/spiders/blog/pause", 200, browser=True, headers={"X-CSRF-Token": csrf})
    api("POST", f"/api/v1/consultations/{priced['id']}/respond", 403, browser=True, json={"answer": {"price": 1}})
    api("POST", f"/api/v1/consultations/{priced['id']}/respond", 200, browser=True, headers={"X-CSRF-Token": csrf},
        json={"answer": {"price": 12.99}})
    api("POST", f"/api/v1/items/{o1}/approve", 403, browser=True)
    api("POST", f"/api/v1/items/{o1}/approve", 200, browser=True, headers={"X-CSRF-Token": csrf})
    api("POST", "/api/v1/auth/logout", 200, browser=True, headers={"X-CSRF-Token": csrf})

    # errors
    pending, _ = interventions.open_or_update(hitl, type="manual_access", domain=NEWS, reason="http_403")
    pending = pending["id"]
    api("GET", "/api/v1/interventions", 401, refused=SecurityValidationError)  # no token
    api("GET", "/api/v1/auth/me", 401, headers={"Authorization": "Bearer not.a.jwt"})
    api("GET", "/api/v1/interventions?cursor=bm9wZQ", 400, as_=reviewer)
    api("GET", "/api/v1/interventions?limit=0", 400, as_=reviewer, refused=InvalidParameter)
    api("POST", f"/api/v1/interventions/{pending}/resolve", 400, as_=reviewer, data="sid=1",
        content_type="text/plain", refused=RequestBodyValidationError)
    api("PATCH", f"/api/v1/domains/{SHOP}", 403, as_=reviewer, json={"access_class": "public"})
    api("GET", f"/api/v1/interventions/{pending + 100}", 404, as_=reviewer)
    api("GET", f"/api/v1/interventions/{pending}/artifacts/html", 404, as_=reviewer)
    api("GET", f"/api/v1/interventions/{pending}/artifacts/cookies", 404, as_=reviewer, refused=InvalidParameter)
    api("GET", "/api/v1/runs/nope/events", 404, as_=reviewer)
    api("GET", "/api/v1/sessions/nowhere.example", 404, as_=reviewer)
    api("DELETE", f"/api/v1/sessions/{NEWS}", 404, as_=reviewer)
    api("PATCH", "/api/v1/users/999", 404, as_=admin, json={"active": True})
    api("POST", f"/api/v1/interventions/{world['news']}/resolve", 409, as_=reviewer,
        json={"resolution": {"action": "done"}})
    api("POST", f"/api/v1/interventions/{world['other']}/cancel", 409, as_=reviewer)
    api("POST", "/api/v1/users", 409, as_=admin,
        json={"email": "new@example.com", "password": "long enough pw"})
    bad = api("POST", f"/api/v1/interventions/{pending}/resolve", 422, as_=reviewer,
              data={"cookies": (io.BytesIO(cookies_txt(NEWS).encode() + b"bad\tline\n"), "mine.txt")}).json
    assert (bad["error"], bad["detail"]["source"], bad["detail"]["line"]) == (
        "invalid_cookies", "mine.txt", 4)
    api("POST", f"/api/v1/interventions/{pending}/resolve", 422, as_=reviewer,
        json={"captured_session": {"cookies": [{"name": "x", "value": "y", "domain": "elsewhere.test"}]}})
    api("PATCH", f"/api/v1/users/{new['id']}", 422, as_=admin, json={"password": "short"})
    api("PATCH", f"/api/v1/users/{new['id']}", 422, as_=admin, json={"password": 12345678},
        refused=RequestBodyValidationError)
    api("PATCH", f"/api/v1/domains/{SHOP}", 422, as_=admin, json={"access_class": "vip"},
        refused=RequestBodyValidationError)
    app.config["MAX_CONTENT_LENGTH"] = 2048
    try:
        api("POST", f"/api/v1/interventions/{pending}/resolve", 413, as_=reviewer,
            data={"cookies": (io.BytesIO(cookies_txt(NEWS).encode() * 100), "cookies.txt")})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = app.config["HITL"].max_upload_bytes
    # errors of the items
    api("GET", "/api/v1/items?order=score&cursor=WzVd", 400, as_=reviewer)  # [5]: an order=id cursor
    api("GET", "/api/v1/items?order=price", 400, as_=reviewer, refused=InvalidParameter)
    api("GET", f"/api/v1/items/{d1 + 100}", 404, as_=reviewer)
    api("GET", f"/api/v1/items/{d1 + 100}/history", 404, as_=reviewer)
    api("GET", "/api/v1/runs/nope/quality", 404, as_=reviewer)
    api("GET", "/api/v1/runs/run-1/items.xml", 404, as_=reviewer, refused=InvalidParameter)
    api("PATCH", f"/api/v1/items/{h1}", 409, as_=reviewer, json={"data": {"price": 1}, "expected_version": 1})
    api("POST", f"/api/v1/items/{h2}/reject", 409, as_=reviewer, json={"note": "again"})
    api("POST", f"/api/v1/items/{h1}/restore", 409, as_=reviewer, json={"version": 99})
    api("PATCH", f"/api/v1/items/{h1}", 422, as_=reviewer, json={"data": {}}, refused=RequestBodyValidationError)
    api("POST", f"/api/v1/items/{h1}/approve", 422, as_=reviewer, json={"colour": "red"},
        refused=RequestBodyValidationError)
    # errors of the API keys and the consultations
    api("GET", "/api/v1/consultations", 401, as_="hitl_live_" + "A" * 43)  # unknown key
    api("GET", "/api/v1/consultations", 401, as_=retired["key"])  # revoked: the same answer
    api("GET", "/api/v1/interventions", 403, as_=key)  # a key is for the consultations only
    api("POST", "/api/v1/consultations", 403, as_=reviewer, json={"title": "q"})  # agents only
    api("POST", "/api/v1/consultations", 422, as_=key, json={"title": "q", "options": ["a", "a"]})
    api("POST", "/api/v1/consultations", 422, as_=key, json={"title": "q", "priority": 1000},
        refused=RequestBodyValidationError)
    api("GET", f"/api/v1/consultations/{asked['id']}?wait=61", 400, as_=key, refused=InvalidParameter)
    api("GET", "/api/v1/consultations?order=oldest", 400, as_=key, refused=InvalidParameter)
    api("GET", f"/api/v1/consultations/{by_spider['id']}", 404, as_=key)  # not this agent's
    api("POST", f"/api/v1/consultations/{asked['id']}/respond", 409, as_=reviewer, json={"answer": "yes"})
    again = api("POST", "/api/v1/consultations", 201, as_=key, json={"title": "Price?", "response_schema": {
        "type": "object", "properties": {"price": {"type": "number", "minimum": 0}}}}).json
    refused_answer = api("POST", f"/api/v1/consultations/{again['id']}/respond", 422, as_=reviewer,
                         json={"answer": {"price": -3}}).json
    assert (refused_answer["error"], refused_answer["detail"]["json_path"]) == ("invalid_answer", "$.price")
    api("POST", f"/api/v1/consultations/{again['id']}/respond", 403, as_=key, json={"answer": {"price": 1}})
    api("POST", f"/api/v1/consultations/{asked['id']}/cancel", 409, as_=key)
    api("POST", f"/api/v1/consultations/{again['id']}/redeliver", 409, as_=reviewer)  # no webhook to send
    waits = app.extensions["hitl_long_polls"]
    waits.open = waits.limit()  # every long-poll slot taken
    try:
        api("GET", f"/api/v1/consultations/{again['id']}?wait=5", 429, as_=key)
    finally:
        waits.open = 0
    api("PATCH", f"/api/v1/api-keys/{key_id}", 403, as_=reviewer, json={"name": "x"})
    api("PATCH", f"/api/v1/api-keys/{key_id}", 422, as_=admin, json={"name": ""}, refused=RequestBodyValidationError)
    api("PATCH", f"/api/v1/api-keys/{key_id}", 422, as_=admin, json={"revoked": "yes"},
        refused=RequestBodyValidationError)
    api("GET", "/api/v1/api-keys/999", 404, as_=admin)
    api("POST", f"/api/v1/api-keys/{retired['id']}/rotate-webhook-secret", 409, as_=admin)  # revoked
    for _ in range(5):  # HITL_LOGIN_ATTEMPTS failures, then the limit
        api("POST", "/api/v1/auth/login", 401, json={"email": "admin@example.com", "password": "wrong pw!"})
    api("POST", "/api/v1/auth/login", 429, json={"email": "admin@example.com", "password": "wrong pw!"})

    # the live view (docs/live.md): a crawler holds a captcha page; a reviewer takes a token,
    # opens the view (redeeming it), renews it, presses Continue too early, then again
    live_id = interventions.open_or_update(hitl, type="captcha_solve", reason="cloudflare_challenge",
                                           domain="live.example.com", spider="shop")[0]["id"]
    crawler_ready = threading.Event()
    crawler = threading.Thread(target=_held_page, args=(hitl.redis, live_id, crawler_ready), daemon=True)
    crawler.start()
    crawler_ready.wait(30)
    api("GET", f"/api/v1/interventions/{live_id}/live", 200, as_=reviewer)
    token = api("POST", f"/api/v1/interventions/{live_id}/live/token", 201, as_=reviewer).json["token"]
    LiveTokens(hitl.redis).redeem(token, live_id, users["reviewer"]["id"])  # what opening /ws/live/{id} does
    api("POST", f"/api/v1/interventions/{live_id}/live/token/renew", 200, as_=reviewer, json={"token": token})
    api("POST", f"/api/v1/interventions/{live_id}/live/continue", 409, as_=reviewer, json={"token": token})
    api("POST", f"/api/v1/interventions/{live_id}/live/continue", 200, as_=reviewer, json={"token": token})
    crawler.join(30)

    # the inbox: everything waiting, in words, most urgent first
    inbox = api("GET", "/api/v1/inbox?limit=5", 200, as_=reviewer).json
    assert inbox["items"] and inbox["counts"]["interventions"] >= 1
    api("GET", "/api/v1/inbox?limit=0", 400, as_=reviewer, refused=InvalidParameter)

    # projects and jobs (docs/jobs.md): an admin registers the demo project, a job is queued,
    # listed, read, its log paged, cancelled, and cancelled again (409); robots.txt checked
    demo = str(Path(__file__).resolve().parents[2] / "projects" / "demo")
    api("POST", "/api/v1/projects", 201, as_=admin, json={"path": demo})
    api("POST", "/api/v1/projects", 403, as_=reviewer, json={"path": demo, "name": "x"})
    api("POST", "/api/v1/projects", 422, as_=admin, json={"path": "/"})
    api("GET", "/api/v1/projects", 200, as_=reviewer)
    api("GET", "/api/v1/projects/demo", 200, as_=reviewer)
    api("POST", "/api/v1/projects/demo/refresh", 200, as_=reviewer)
    job = api("POST", "/api/v1/jobs", 201, as_=reviewer,
              json={"project": "demo", "spider": "sandbox", "args": {"base": "http://127.0.0.1:1"}}).json
    api("POST", "/api/v1/jobs", 422, as_=reviewer, json={"project": "demo", "spider": "sandbox", "args": {"n": 1}},
        refused=RequestBodyValidationError)
    api("GET", "/api/v1/jobs?status=queued&project=demo&limit=1", 200, as_=reviewer)
    api("GET", f"/api/v1/jobs/{job['id']}", 200, as_=reviewer)
    hitl_jobs.append_log(hitl.redis, job["id"], ["a line"])
    api("GET", f"/api/v1/jobs/{job['id']}/log?limit=10", 200, as_=reviewer)
    api("POST", f"/api/v1/jobs/{job['id']}/cancel", 200, as_=reviewer)
    api("POST", f"/api/v1/jobs/{job['id']}/cancel", 409, as_=reviewer)
    # robots.txt from a closed local port (no DNS, no network): unreachable, so allowed, as Scrapy does
    app.config["HITL"] = dataclasses.replace(app.config["HITL"], robots_allow_private=True)
    api("GET", f"/api/v1/robots?url=http://127.0.0.1:{free_port()}/page", 200, as_=reviewer)
    # schedules (docs/jobs.md): made (201) or refused (422: a bad cron), listed, shown, removed
    sched = api("POST", "/api/v1/schedules", 201, as_=reviewer,
                json={"project": "demo", "spider": "sandbox", "cron": "0 3 * * *", "args": {"a": "1"}}).json
    api("POST", "/api/v1/schedules", 422, as_=reviewer, json={"project": "demo", "spider": "sandbox", "cron": "nightly"})
    api("GET", "/api/v1/schedules", 200, as_=reviewer)
    api("GET", f"/api/v1/schedules/{sched['id']}", 200, as_=reviewer)
    api("DELETE", f"/api/v1/schedules/{sched['id']}", 200, as_=reviewer)
    api("DELETE", f"/api/v1/schedules/{sched['id']}", 404, as_=reviewer)
    api("DELETE", "/api/v1/projects/demo", 204, as_=admin)

    # selectors (docs/selectors.md): a selector_fix of a spider with declared fields, its
    # suggestions, fixer, preview and pick; an override saved (201) or refused (422), listed,
    # its history, the export, a revert
    from tests.console.test_selectors_api import D as SELECTORS_DOMAIN, NEW as SELECTORS_PAGE, make_fix
    from scrapy_hitl.suggest import elements

    fix = make_fix(hitl)
    api("GET", f"/api/v1/interventions/{fix}/selector-suggestions", 200, as_=reviewer)
    page_id = api("GET", f"/api/v1/interventions/{fix}/selector-fixer", 200, as_=reviewer).json["pages"][0]["id"]
    api("POST", f"/api/v1/interventions/{fix}/selector-preview", 200, as_=reviewer,
        json={"field": "author", "css": "span.q-author::text", "rows": "article.q-card", "page_id": page_id})
    author = next(i for i, e in enumerate(elements(SELECTORS_PAGE)[1]) if e.get("class") == "q-author")
    api("POST", f"/api/v1/interventions/{fix}/selector-pick", 200, as_=reviewer,
        json={"field": "_rows", "page_id": page_id, "index": author})
    override = {"spider": "quotes", "domain": SELECTORS_DOMAIN, "field": "_rows"}
    api("POST", "/api/v1/selectors", 201, as_=reviewer, json={**override, "css": "article.q-card", "intervention_id": fix})
    api("POST", "/api/v1/selectors", 422, as_=reviewer, json={**override, "field": "price", "css": "b"})
    api("GET", "/api/v1/selectors?spider=quotes", 200, as_=reviewer)
    api("GET", f"/api/v1/selectors/history?spider=quotes&domain={SELECTORS_DOMAIN}&field=_rows", 200, as_=reviewer)
    api("GET", "/api/v1/selectors/export?spider=quotes", 200, as_=reviewer)
    api("POST", "/api/v1/selectors/revert", 200, as_=reviewer, json=override)

    # notifications (docs/notifications.md): an admin adds a channel (201, or 422: a scheme
    # Apprise does not know), tests it (a closed local port: answered 200, outcome failed),
    # manages a rule; anyone reads the messages sent and their attempts
    hook = api("POST", "/api/v1/notify/channels", 201, as_=admin,
               json={"url": f"json://127.0.0.1:{free_port()}/hook", "name": "hook"}).json
    api("POST", "/api/v1/notify/channels", 422, as_=admin, json={"url": "foo://bar"})
    monkeypatch.setenv("HITL_NOTIFY_MAX_ATTEMPTS", "many")  # read on the first call that needs it, kept once good
    api("POST", f"/api/v1/notify/channels/{hook['id']}/test", 503, as_=admin)
    monkeypatch.delenv("HITL_NOTIFY_MAX_ATTEMPTS")
    api("GET", "/api/v1/notify/channels", 200, as_=admin)
    api("POST", f"/api/v1/notify/channels/{hook['id']}/test", 200, as_=admin)
    rule = api("POST", "/api/v1/notify/rules", 201, as_=admin, json={
        "event": "intervention.created", "name": "captchas", "channels": ["hook"],
        "filters": {"types": ["captcha_solve"]}, "escalate": [{"after": 900, "channel": "hook"}]}).json
    api("POST", "/api/v1/notify/rules", 422, as_=admin, json={"event": "intervention.exploded"})
    api("PATCH", f"/api/v1/notify/rules/{rule['id']}", 200, as_=admin, json={"enabled": False})
    api("GET", "/api/v1/notify/rules", 200, as_=admin)
    api("DELETE", f"/api/v1/notify/rules/{rule['id']}", 200, as_=admin)
    sent = api("GET", "/api/v1/notifications?limit=1", 200, as_=reviewer).json["items"][0]
    api("GET", f"/api/v1/notifications/{sent['id']}/attempts", 200, as_=reviewer)
    api("DELETE", f"/api/v1/notify/channels/{hook['id']}", 200, as_=admin)
    # "I'm on it": an open intervention and a pending consultation taken, read owned, given
    # back; an answered one cannot be taken (409)
    api("POST", f"/api/v1/interventions/{pending}/owner", 200, as_=reviewer)
    api("GET", f"/api/v1/interventions/{pending}", 200, as_=reviewer)
    api("DELETE", f"/api/v1/interventions/{pending}/owner", 200, as_=reviewer)
    api("POST", f"/api/v1/consultations/{again['id']}/owner", 200, as_=reviewer)
    api("GET", f"/api/v1/consultations/{again['id']}", 200, as_=reviewer)
    api("DELETE", f"/api/v1/consultations/{again['id']}/owner", 200, as_=reviewer)
    api("POST", f"/api/v1/consultations/{asked['id']}/owner", 409, as_=reviewer)

    # the event stream (docs/events.md), read up to its first events (the recorder leaves a
    # stream there): a script's ?after=, the old path with Last-Event-ID, a malformed after
    api("GET", "/api/v1/events?after=0", 200, as_=reviewer)
    api("GET", "/events/runs/events", 200, as_=reviewer, headers={"Last-Event-ID": hitl.events.range(count=1)[0].id})
    api("GET", "/api/v1/events?after=nope", 400, as_=reviewer)
    # the metrics: off (404) until HITL_METRICS_TOKEN is set, then read with that token
    api("GET", "/metrics", 404)
    app.config["HITL"] = dataclasses.replace(app.config["HITL"], metrics_token="m" * 32)
    api("GET", "/metrics", 200, headers={"Authorization": "Bearer " + "m" * 32})

    problems = mismatches(openapi, api.recorder, api.refused)
    assert problems == [], "answers that do not match hitl_console/openapi.json:\n" + "\n".join(problems)
    assert documented() - covered(api.recorder) == set(), "operations this session never exercised"
