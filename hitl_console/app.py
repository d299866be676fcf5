"""The console's app factory: ``create_app(config=None)``.

One blueprint per concern, registered here; the state layer (database, Redis, vault,
parking) is opened once per process and shared by every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask

from hitl_console import bounds, errors, security
from hitl_console.auth.tokens import signing_key
from hitl_console.config import ConsoleConfig
from scrapy_hitl.config import StateConfig
from scrapy_hitl.state import HitlState

if TYPE_CHECKING:
    from collections.abc import Mapping


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the console. ``config`` overrides ConsoleConfig fields (tests, scripts)."""
    app = Flask(__name__)
    # Keep JSON objects in the order they were written: an agent's response_schema lists its
    # properties in the order the console's answer form should show them.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    console = ConsoleConfig.from_env(**dict(config or {}))
    app.config["HITL"] = console
    if console.proxy_hops:
        # Behind reverse proxies: the client IP (login limits) from their X-Forwarded-For.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=console.proxy_hops)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = console.max_upload_bytes
    state = HitlState.open(StateConfig.from_env())
    app.extensions["hitl"] = state
    app.extensions["hitl_jwt_key"] = signing_key(state.config.secret_key)

    errors.init_app(app)
    bounds.init_app(app)  # before the blueprints: their id rules bind its converter
    security.init_app(app)

    from hitl_console import health, live, openapi, pages
    from hitl_console.api import apikeys, consultations, domains, interventions, items, runs, sessions
    from hitl_console.auth import views as auth_views

    for module in (health, auth_views, interventions, runs, items, sessions, domains, apikeys, consultations,
                   openapi, live, pages):
        app.register_blueprint(module.bp)
    from hitl_console.api import deliveries  # a consultation's webhooks (docs/webhooks.md)

    app.register_blueprint(deliveries.bp)
    from hitl_console import liveview  # a crawler's held captcha page, live (docs/live.md)

    app.register_blueprint(liveview.bp)
    app.register_blueprint(liveview.ws_bp)
    from hitl_console import notify_pages  # notifications: channels, rules, messages (docs/notifications.md)
    from hitl_console.api import notify

    app.register_blueprint(notify.bp)
    app.register_blueprint(notify_pages.bp)
    from hitl_console import metrics, sse  # the event stream for any client, Prometheus

    app.register_blueprint(sse.bp)
    app.register_blueprint(metrics.bp)
    from hitl_console.api import inbox  # what waits for a person, most urgent first

    app.register_blueprint(inbox.bp)
    from hitl_console.api import schedules  # cron schedules of jobs (docs/jobs.md)

    app.register_blueprint(schedules.bp)
    from hitl_console.api import jobs, projects, robots  # crawls as jobs (docs/jobs.md)

    for module in (projects, jobs, robots):
        app.register_blueprint(module.bp)
    app.register_blueprint(jobs.ws_bp)
    from hitl_console import pages_jobs  # the Jobs pages

    app.register_blueprint(pages_jobs.bp)
    from hitl_console import fixer  # the selector fixer (docs/selectors.md)
    from hitl_console.api import selectors

    app.register_blueprint(selectors.bp)
    app.register_blueprint(fixer.bp)
    return app
