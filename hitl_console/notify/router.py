"""From events to messages: the worker's router reads the event stream, matches the rules,
writes the messages (``notifications.add``, grouped per HITL_NOTIFY_THROTTLE) and queues
their delivery; it starts, and on a close stops, escalation chains; and its sweep notifies
the chains' due steps and queues again messages whose enqueue or worker was lost.

It runs in ``hitl worker`` only: a crawl writes its events and is done.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from hitl_console.notify import match
from scrapy_hitl.state import notifications, notify_channels, notify_rules, ownership
from scrapy_hitl.state.models import Consultation, Intervention, ScrapedItem, utcnow

if TYPE_CHECKING:
    from hitl_console.notify.config import NotifyConfig
    from scrapy_hitl.state import HitlState
    from scrapy_hitl.state.events import Event

logger = logging.getLogger(__name__)


class Router:
    def __init__(self, state: HitlState, config: NotifyConfig) -> None:
        self.state, self.config = state, config

    # --- events -----------------------------------------------------------------------------

    def route(self, event: Event) -> int:
        """Handle one stream event; returns how many messages it created or joined."""
        closing = match.CLOSING.get(event.type)
        if closing:
            item_id = event.intervention_id if closing == "intervention" else event.payload.get("consultation_id")
            if item_id is not None:
                notifications.stop_escalations(self.state.db, closing, int(item_id), reason=event.type)
            return 0
        if not match.interesting(event.type):
            return 0
        rules = notify_rules.list_(self.state, enabled_only=True)
        if not rules:
            return 0
        kind, item_id, facts, group = self._describe(event)
        fired = [r for r in rules if match.matches(r, event.type, facts)]
        if not fired:
            return 0
        all_channels = notify_channels.ids(self.state)
        count = 0
        told: set[int] = set()  # an event reaches a channel once, however many rules send it there
        for rule in fired:
            # a rule naming channels removed since sends to those that are left
            targets = [c for c in rule["channels"] if c in all_channels] if rule["channels"] else all_channels
            for channel_id in targets:
                if channel_id in told:
                    continue
                told.add(channel_id)
                made = notifications.add(
                    self.state.db, channel_id=channel_id, rule_id=rule["id"], event_type=rule["event"],
                    group_key=f"rule{rule['id']}:{group}:ch{channel_id}", throttle=self.config.throttle,
                    subject_kind=kind, subject_id=str(item_id or ""), domain=facts.get("domain") or "",
                    data={"event": event.to_dict(), "facts": facts})
                count += 1
                if made is not None:
                    notifications.dispatch(self.state.redis, made[0], made[1])
            if rule["escalate"] and kind in ownership.KINDS and item_id is not None:
                notifications.start_escalation(self.state.db, rule_id=rule["id"], subject_kind=kind,
                                               subject_id=int(item_id), after=rule["escalate"][0]["after"])
        return count

    def _describe(self, event: Event) -> tuple[str, Any, dict[str, Any], str]:
        """``(item kind, item id, facts for the rules, group)`` of an event."""
        p = event.payload or {}
        if event.type == "intervention.created":
            facts: dict[str, Any] = {"type": p.get("type"), "domain": event.domain or "", "priority": 0}
            with self.state.db.session() as s:
                row = s.get(Intervention, event.intervention_id)
                if row is not None:
                    facts.update(type=row.type, domain=row.domain, priority=row.priority)
            return "intervention", event.intervention_id, facts, f"domain:{facts['domain']}"
        if event.type == "consultation.created":
            cid = p.get("consultation_id")
            facts = {"priority": p.get("priority") or 0}
            with self.state.db.session() as s:
                row2 = s.get(Consultation, cid) if cid is not None else None
                asker = row2.asked_by if row2 is not None else str(p.get("api_key_id") or p.get("actor") or "")
            return "consultation", cid, facts, f"asker:{asker}"
        if event.type == "item.review_required":
            with self.state.db.session() as s:
                pending = s.scalar(select(func.count()).select_from(ScrapedItem)
                                   .where(ScrapedItem.status == "pending_review")) or 0
            return "items", "", {"pending": pending}, "review_queue"
        if event.type == "run.failed":
            return "run", event.run_id, {"spider": event.spider}, f"spider:{event.spider or ''}"
        # job.failed (the jobs' own events) and anything newer
        return "job", p.get("job_id") or event.run_id, {"spider": event.spider or p.get("spider")}, \
            f"spider:{event.spider or p.get('spider') or ''}"

    # --- the sweep ----------------------------------------------------------------------------

    def sweep(self) -> dict[str, int]:
        """Due escalation steps, then messages that are due and not queued (lost enqueues,
        dead workers, retries whose scheduler died)."""
        escalated = self.escalate()
        queued = 0
        for notification_id in notifications.due(self.state.db, grace=max(2.0, self.config.timeout / 3)):
            notifications.dispatch(self.state.redis, notification_id)
            queued += 1
        return {"escalated": escalated, "queued": queued}

    def escalate(self) -> int:
        sent = 0
        now = utcnow()
        for esc in notifications.due_escalations(self.state.db, now=now):
            kind, item_id, step = esc["subject_kind"], esc["subject_id"], esc["step"]
            try:
                rule = notify_rules.get(self.state, esc["rule_id"])
            except notify_rules.RuleNotFound:
                rule = None
            is_open, owner = ownership.status(self.state, kind, item_id)
            chain = rule["escalate"] if rule else []
            if rule is None or not rule["enabled"] or step >= len(chain):
                notifications.advance(self.state.db, esc["id"], from_step=step, next_due=None, state="stopped",
                                      reason="the rule changed")
                continue
            if not is_open:
                notifications.advance(self.state.db, esc["id"], from_step=step, next_due=None, state="stopped",
                                      reason=f"the {kind} was closed")
                continue
            if owner:
                notifications.advance(self.state.db, esc["id"], from_step=step, next_due=None, state="stopped",
                                      reason=f"owned by {owner}")
                continue
            nxt = step + 1
            next_due = now + timedelta(seconds=chain[nxt]["after"]) if nxt < len(chain) else None
            if not notifications.advance(self.state.db, esc["id"], from_step=step, next_due=next_due,
                                         state="pending" if next_due else "done",
                                         reason="" if next_due else "the chain's last step was notified"):
                continue  # another sweep took this step
            if chain[step]["channel"] not in notify_channels.ids(self.state):
                continue  # the step's channel was removed: the chain goes on to the next
            made = notifications.add(
                self.state.db, channel_id=chain[step]["channel"], rule_id=rule["id"], event_type=rule["event"],
                group_key=f"escalation{esc['id']}:step{nxt}", throttle=0, subject_kind=kind,
                subject_id=str(item_id), escalation_step=nxt, data={"escalation": esc}, now=now)
            if made is not None:
                notifications.dispatch(self.state.redis, made[0], made[1])
                sent += 1
            logger.info("Escalation: %(kind)s %(id)s is not taken; step %(step)s notified",
                        {"kind": kind, "id": item_id, "step": nxt})
        return sent
