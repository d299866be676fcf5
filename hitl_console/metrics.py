"""``GET /metrics``: Prometheus text format, computed from the database and Redis at scrape time.

Nothing is counted in the console's memory: a custom collector reads the shared state on
each scrape, so every console process behind a load balancer answers the same numbers and
a restart loses nothing. Each query is an aggregate (``GROUP BY``) over indexed columns or a
handful of Redis calls; the parked-requests gauge keeps the top ``TOP_DOMAINS`` domains and
sums the rest into ``domain="_other"``. A part whose store is down is left out of that
scrape and reported by ``hitl_scrape_failed{part}``. The list of metrics is docs/metrics.md.

Access: ``HITL_METRICS_TOKEN``, sent by Prometheus as ``Authorization: Bearer <token>``.
Unset, ``/metrics`` answers 404: the numbers name the domains being crawled.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Blueprint, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from hitl_console.errors import ApiError
from scrapy_hitl.state import models, pauses
from scrapy_hitl.state.interventions import TYPES as INTERVENTION_TYPES
from scrapy_hitl.state.runs import alive_ids

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from flask.blueprints import BlueprintSetupState
    from prometheus_client.metrics_core import Metric

    from scrapy_hitl.state import HitlState

logger = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

TOP_DOMAINS = 20  # parked-requests series per scrape; the rest are summed into "_other"
MAX_LIVE_RUNS = 1000  # runs marked running/waiting checked for a heartbeat per scrape
# Human latencies: half a minute to three days, in seconds.
BUCKETS = (30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200)
REVIEW_STATUSES = ("pending_review", "optional_review")


@bp.record_once
def _setup(setup: BlueprintSetupState) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HitlCollector(setup.app.extensions["hitl"]))
    setup.app.extensions["hitl_metrics"] = registry


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


@bp.get("/metrics")
def metrics() -> Any:
    token = current_app.config["HITL"].metrics_token
    if not token:
        raise ApiError(404, "metrics_off", "set HITL_METRICS_TOKEN to serve /metrics (docs/metrics.md)")
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    # Digests of equal length, so the comparison's time says nothing about the token.
    if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(sent.strip()), _digest(token)):
        raise ApiError(401, "unauthorized", "send HITL_METRICS_TOKEN as 'Authorization: Bearer <token>'")
    body = generate_latest(current_app.extensions["hitl_metrics"])
    return current_app.response_class(body, content_type=CONTENT_TYPE_LATEST,
                                      headers={"Cache-Control": "no-store"})


def _seconds(dialect: str, start: Any, end: Any) -> Any:
    """SQL for ``end - start`` in seconds, on PostgreSQL and SQLite."""
    if dialect == "postgresql":
        return sa.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def histogram_rows(session: Any, dialect: str, label: Any, start: Any, end: Any,
                   where: Sequence[Any]) -> list[tuple[Any, list[tuple[str, float]], float]]:
    """``(label value, cumulative buckets, sum)`` per group: one aggregate query, no rows sent."""
    seconds = _seconds(dialect, start, end)
    columns = [label, sa.func.count(), sa.func.coalesce(sa.func.sum(seconds), 0.0)]
    columns += [sa.func.sum(sa.case((seconds <= bound, 1), else_=0)) for bound in BUCKETS]
    out = []
    for value, count, total, *cumulative in session.execute(sa.select(*columns).where(*where).group_by(label)):
        buckets = [(str(float(b)), float(n or 0)) for b, n in zip(BUCKETS, cumulative)]
        out.append((value, [*buckets, ("+Inf", float(count))], float(total)))
    return out


def _priority_level(column: Any) -> Any:
    return sa.case((column > 0, "high"), (column < 0, "low"), else_="normal")


class HitlCollector:
    """Every metric, from the shared state, on each scrape (docs/metrics.md)."""

    def __init__(self, state: HitlState, *, top_domains: int = TOP_DOMAINS) -> None:
        self.state = state
        self.top_domains = top_domains

    def collect(self) -> Iterable[Metric]:
        failed = GaugeMetricFamily("hitl_scrape_failed", "1 when a part of this scrape could not be read "
                                   "(its store is down); its metrics are missing", labels=["part"])
        parts: list[tuple[str, Callable[[], list[Metric]]]] = [
            ("interventions", self._interventions), ("parked", self._parked),
            ("consultations", self._consultations), ("webhooks", self._webhooks),
            ("reviews", self._reviews), ("crawlers", self._crawlers), ("workers", self._workers),
            ("jobs", self._jobs), ("ownership", self._ownership), ("notifications", self._notifications),
        ]
        for name, part in parts:
            try:
                families = part()
            except Exception as exc:  # a scrape reports, never fails: the rest still counts
                logger.warning("Metrics: could not read %s: %s", name, exc)
                failed.add_metric([name], 1)
                continue
            failed.add_metric([name], 0)
            yield from families
        yield failed

    @property
    def _dialect(self) -> str:
        return self.state.db.engine.dialect.name

    def _interventions(self) -> list[Metric]:
        I = models.Intervention  # noqa: N806
        open_ = GaugeMetricFamily("hitl_interventions_open", "Open interventions, by type", labels=["type"])
        resolution = HistogramMetricFamily(
            "hitl_intervention_resolution_seconds",
            "Time from the block (intervention opened) to its resolution, by type", labels=["type"])
        with self.state.db.session() as s:
            counts = dict(s.execute(sa.select(I.type, sa.func.count()).where(I.status == "open").group_by(I.type)).all())
            rows = histogram_rows(s, self._dialect, I.type, I.created_at, I.resolved_at,
                                  [I.status == "resolved", I.resolved_at.is_not(None)])
        for type_ in sorted(set(INTERVENTION_TYPES) | set(counts)):
            open_.add_metric([type_], counts.get(type_, 0))
        for type_, buckets, total in rows:
            resolution.add_metric([type_], buckets, total)
        paused = GaugeMetricFamily("hitl_domains_paused", "Domains paused (by an open intervention or by hand)",
                                   value=len(pauses.paused_domains(self.state.redis)))
        return [open_, resolution, paused]

    def _parked(self) -> list[Metric]:
        per_domain: dict[str, int] = {}
        for (_spider, domain), n in self.state.parking.counts().items():
            per_domain[domain] = per_domain.get(domain, 0) + n
        ranked = sorted(per_domain.items(), key=lambda dn: (-dn[1], dn[0]))
        family = GaugeMetricFamily(
            "hitl_parked_requests",
            f"Requests parked in Redis, by domain: the {self.top_domains} largest, the rest as _other",
            labels=["domain"])
        for domain, n in ranked[:self.top_domains]:
            family.add_metric([domain], n)
        rest = ranked[self.top_domains:]
        if rest:
            family.add_metric(["_other"], sum(n for _d, n in rest))
        return [family]

    def _consultations(self) -> list[Metric]:
        C = models.Consultation  # noqa: N806
        pending = GaugeMetricFamily("hitl_consultations_pending",
                                    "Consultations waiting for an answer, by priority (high > 0 > low)",
                                    labels=["priority"])
        answer = HistogramMetricFamily("hitl_consultation_answer_seconds",
                                       "Time from a consultation's creation to a human's answer, by priority",
                                       labels=["priority"])
        level = _priority_level(C.priority)
        with self.state.db.session() as s:
            counts = dict(s.execute(sa.select(level, sa.func.count()).where(C.state == "pending").group_by(level)).all())
            rows = histogram_rows(s, self._dialect, level, C.created_at, C.responded_at,
                                  [C.responded_at.is_not(None)])
        for name in ("high", "normal", "low"):
            pending.add_metric([name], counts.get(name, 0))
        for name, buckets, total in rows:
            answer.add_metric([name], buckets, total)
        return [pending, answer]

    def _webhooks(self) -> list[Metric]:
        D, E = models.WebhookDelivery, models.WebhookEvent  # noqa: N806
        outcome = sa.case((D.status_code.is_(None), "no_answer"),
                          ((D.status_code >= 200) & (D.status_code < 300), "delivered"), else_="http_error")
        attempts = CounterMetricFamily("hitl_webhook_attempts",
                                       "Webhook delivery attempts, by outcome (delivered: a 2xx answer)",
                                       labels=["outcome"])
        events = GaugeMetricFamily("hitl_webhooks", "Webhooks in the outbox, by state", labels=["state"])
        with self.state.db.session() as s:
            by_outcome = dict(s.execute(sa.select(outcome, sa.func.count()).group_by(outcome)).all())
            by_state = dict(s.execute(sa.select(E.state, sa.func.count()).group_by(E.state)).all())
        for name in ("delivered", "http_error", "no_answer"):
            attempts.add_metric([name], by_outcome.get(name, 0))
        for name in sorted(set(models.WEBHOOK_EVENT_STATES) | set(by_state)):
            events.add_metric([name], by_state.get(name, 0))
        return [attempts, events]

    def _reviews(self) -> list[Metric]:
        It = models.ScrapedItem  # noqa: N806
        family = GaugeMetricFamily("hitl_review_queue_items",
                                   "Scraped items waiting for a review: pending_review (held) and "
                                   "optional_review (delivered, may be reviewed)", labels=["status"])
        with self.state.db.session() as s:
            counts = dict(s.execute(sa.select(It.status, sa.func.count())
                                    .where(It.status.in_(REVIEW_STATUSES)).group_by(It.status)).all())
        for status in REVIEW_STATUSES:
            family.add_metric([status], counts.get(status, 0))
        return [family]

    def _crawlers(self) -> list[Metric]:
        R = models.Run  # noqa: N806
        with self.state.db.session() as s:
            ids = list(s.scalars(sa.select(R.id).where(R.status.in_(("running", "waiting_for_human")))
                                 .order_by(R.created_at.desc()).limit(MAX_LIVE_RUNS)))
        live = len(alive_ids(self.state.redis, ids)) if ids else 0
        return [GaugeMetricFamily("hitl_crawlers_live", "Crawls with a live heartbeat", value=live)]

    def _workers(self) -> list[Metric]:
        from rq import Queue, Worker

        workers = GaugeMetricFamily("hitl_workers", "RQ workers (hitl worker) alive, by state", labels=["state"])
        states: dict[str, int] = {}
        for worker in Worker.all(connection=self.state.redis):
            state = str(worker.get_state() or "unknown")
            states[state] = states.get(state, 0) + 1
        for state in sorted(set(states) | {"busy", "idle"}):
            workers.add_metric([state], states.get(state, 0))
        queued = GaugeMetricFamily("hitl_queue_jobs", "Jobs waiting in each RQ queue", labels=["queue"])
        for queue in Queue.all(connection=self.state.redis):
            queued.add_metric([queue.name], queue.count)
        return [workers, queued]

    def _jobs(self) -> list[Metric]:
        from scrapy_hitl.state import jobs  # crawls as jobs (hitl jobs)

        family = GaugeMetricFamily("hitl_jobs", "Crawl jobs, by state", labels=["state"])
        for state, n in jobs.counts(self.state.db).items():
            family.add_metric([state], n)
        return [family]

    def _ownership(self) -> list[Metric]:
        I = models.Intervention  # noqa: N806
        owned_at = I.owned_at  # "I'm on it" (ownership.py)
        family = HistogramMetricFamily(
            "hitl_intervention_owner_seconds",
            "Time from the block (intervention opened) to a person saying \"I'm on it\", by type", labels=["type"])
        with self.state.db.session() as s:
            rows = histogram_rows(s, self._dialect, I.type, I.created_at, owned_at, [owned_at.is_not(None)])
        for type_, buckets, total in rows:
            family.add_metric([type_], buckets, total)
        return [family]

    def _notifications(self) -> list[Metric]:
        attempt, message = models.NotificationAttempt, models.Notification  # hitl notify's channels
        attempts = CounterMetricFamily("hitl_notification_attempts",
                                       "Notification delivery attempts, by outcome", labels=["outcome"])
        messages = GaugeMetricFamily("hitl_notifications", "Notifications in the outbox, by state", labels=["state"])
        with self.state.db.session() as s:
            by_outcome = dict(s.execute(sa.select(attempt.outcome, sa.func.count()).group_by(attempt.outcome)).all())
            by_state = dict(s.execute(sa.select(message.state, sa.func.count()).group_by(message.state)).all())
        for name in sorted({"delivered", "error"} | set(by_outcome)):
            attempts.add_metric([name], by_outcome.get(name, 0))
        for name in sorted(set(models.NOTIFICATION_STATES) | set(by_state)):
            messages.add_metric([name], by_state.get(name, 0))
        return [attempts, messages]
