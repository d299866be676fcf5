"""The notifications outbox on a real database: grouping in the throttle window, the lease
(one attempt at a time, an expired one taken over and recorded as interrupted), escalation
steps taken once; and the router on real events (no worker: ``Router.route``)."""

from __future__ import annotations

from datetime import timedelta

from hitl_console.notify.config import NotifyConfig
from hitl_console.notify.router import Router
from scrapy_hitl.state import consultations, interventions, notifications, notify_channels, notify_rules
from scrapy_hitl.state.models import utcnow


def _channel(state, name="team"):
    return notify_channels.add(state, name=name, url="json://127.0.0.1:9/x", scheme="json",
                               redacted="json://127.0.0.1:9/x", actor="test")


def test_events_join_the_unsent_message_then_wait_for_the_window(state):
    channel = _channel(state)
    now = utcnow()
    first = notifications.add(state.db, channel_id=channel["id"], group_key="g", event_type="e", throttle=600, now=now)
    assert first is not None and first[1] == now
    assert notifications.add(state.db, channel_id=channel["id"], group_key="g", event_type="e", throttle=600,
                             now=now) is None  # joined: not sent yet
    claim = notifications.claim(state.db, first[0], lease_seconds=30, now=now)
    assert claim is not None and claim.grouped == 2
    assert notifications.claim(state.db, first[0], lease_seconds=30, now=now) is None  # one attempt at a time
    notifications.finish(state.db, claim, "delivered", now=now)
    later = now + timedelta(seconds=60)
    second = notifications.add(state.db, channel_id=channel["id"], group_key="g", event_type="e", throttle=600,
                               now=later)
    assert second is not None and second[1] == now + timedelta(seconds=600)  # the window's end
    for _ in range(48):
        notifications.add(state.db, channel_id=channel["id"], group_key="g", event_type="e", throttle=600, now=later)
    assert notifications.claim(state.db, second[0], lease_seconds=30, now=later) is None  # not due yet
    due = notifications.claim(state.db, second[0], lease_seconds=30, now=now + timedelta(seconds=601))
    assert due is not None and due.grouped == 49
    other = notifications.add(state.db, channel_id=channel["id"], group_key="other", event_type="e", throttle=600,
                              now=later)
    assert other is not None and other[1] == later  # another group is not held back


def test_an_expired_lease_is_taken_over_and_the_lost_attempt_recorded(state):
    channel = _channel(state)
    now = utcnow()
    made = notifications.add(state.db, channel_id=channel["id"], group_key="g", event_type="e", throttle=0, now=now)
    first = notifications.claim(state.db, made[0], lease_seconds=5, now=now)
    assert notifications.due(state.db, now=now + timedelta(seconds=1)) == []
    assert notifications.due(state.db, now=now + timedelta(seconds=6)) == [made[0]]
    second = notifications.claim(state.db, made[0], lease_seconds=5, now=now + timedelta(seconds=6))
    assert second is not None and second.attempt == 2
    assert not notifications.finish(state.db, first, "delivered")  # the first lost its lease
    assert notifications.finish(state.db, second, "delivered")
    outcomes = sorted((a["attempt"], a["outcome"]) for a in notifications.attempts(state.db, notification_id=made[0]))
    assert outcomes == [(1, "delivered"), (1, "interrupted"), (2, "delivered")]
    assert notifications.get(state.db, made[0])["state"] == "delivered"


def test_an_escalation_step_is_taken_once(state):
    channel = _channel(state)
    rule = notify_rules.add(state, {"event": "intervention.created", "escalate": [
        {"after": 60, "channel": channel["id"]}, {"after": 60, "channel": channel["id"]}]}, actor="test")
    esc = notifications.start_escalation(state.db, rule_id=rule["id"], subject_kind="intervention", subject_id=1,
                                         after=60)
    assert notifications.start_escalation(state.db, rule_id=rule["id"], subject_kind="intervention", subject_id=1,
                                          after=60) is None  # once per rule and item
    later = utcnow() + timedelta(seconds=61)
    (due,) = notifications.due_escalations(state.db, now=later)
    assert notifications.advance(state.db, esc, from_step=0, next_due=later + timedelta(seconds=60))
    assert not notifications.advance(state.db, esc, from_step=0, next_due=later)  # another sweep lost the race
    assert notifications.stop_escalations(state.db, "intervention", 1, reason="intervention.resolved") == 1
    (chain,) = notifications.escalations_for(state.db, "intervention", 1)
    assert (chain["step"], chain["state"], chain["reason"]) == (1, "stopped", "intervention.resolved")


def test_the_router_matches_rules_on_real_events(state):
    team = _channel(state, "team")
    for rule in notify_rules.list_(state):
        notify_rules.remove(state, rule["id"])
    notify_rules.add(state, {"event": "intervention.created", "filters": {"types": ["captcha_solve"],
                                                                          "domains": ["*.shop.test"]}}, actor="t")
    notify_rules.add(state, {"event": "run.failed", "channels": ["team"]}, actor="t")
    notify_rules.add(state, {"event": "consultation.created", "filters": {"min_priority": 50}}, actor="t")
    router = Router(state, NotifyConfig(throttle=0))
    start = state.events.last_id()
    interventions.open_or_update(state, type="captcha_solve", reason="x", domain="eu.shop.test")
    interventions.open_or_update(state, type="manual_access", reason="x", domain="eu.shop.test")  # other type
    interventions.open_or_update(state, type="captcha_solve", reason="x", domain="elsewhere.test")  # other domain
    consultations.create(state, title="low", options=["a", "b"], priority=0, actor="cli")
    urgent = consultations.create(state, title="high", options=["a", "b"], priority=90, actor="cli")
    state.events.emit("run.failed", {"finish_reason": "shutdown"}, run_id="r1", spider="shop")
    for event in state.events.read(start):
        router.route(event)
    sent = {(n["event_type"], n["subject_kind"], n["domain"] or n["subject_id"])
            for n in notifications.list_(state.db)}
    assert sent == {("intervention.created", "intervention", "eu.shop.test"),
                    ("consultation.created", "consultation", str(urgent["id"])),
                    ("run.failed", "run", "r1")}
    assert {n["channel_id"] for n in notifications.list_(state.db)} == {team["id"]}


def test_the_review_queue_rule_fires_from_its_threshold(state, run_id):
    from scrapy_hitl.state import items

    _channel(state)
    for rule in notify_rules.list_(state):
        notify_rules.remove(state, rule["id"])
    notify_rules.add(state, {"event": "review_queue", "filters": {"threshold": 3}}, actor="t")
    router = Router(state, NotifyConfig(throttle=600))
    base = {"run_id": run_id, "spider": "shop", "item_type": "Product", "url": "http://shop.test/p", "score": 0.3,
            "status": "pending_review"}
    for n in range(1, 5):  # as the quality pipeline's writer does: store a batch, then say so
        items.record(state.db, [{**base, "data": {"sku": str(n)}}], review_timeout=3600)
        start = state.events.last_id()
        state.events.emit("item.review_required", {"pending_review": 1, "optional_review": 0}, run_id=run_id,
                          spider="shop")
        for event in state.events.read(start):
            router.route(event)
    (message,) = notifications.list_(state.db)  # from the third on; the fourth joined it
    assert message["subject_kind"] == "items" and message["grouped"] == 2


def test_a_failed_job_is_announced_with_a_link_to_its_page(state):
    from hitl_console.notify.delivery import build

    _channel(state)
    notify_rules.add(state, {"event": "job.failed"}, actor="t")
    config = NotifyConfig(public_url="https://hitl.example.com")
    start = state.events.last_id()
    state.events.emit("job.failed", {"job_id": 12, "project": "demo", "status": "failed", "reason": "wall_time",
                                     "message": "", "attempts": 1}, run_id="r1", spider="shop")
    for event in state.events.read(start):
        Router(state, config).route(event)
    (sent,) = notifications.list_(state.db)
    assert (sent["event_type"], sent["subject_kind"], sent["subject_id"]) == ("job.failed", "job", "12")
    claim = notifications.claim(state.db, sent["id"], lease_seconds=30)
    message, files = build(state, config, claim)
    assert message.title == "Job failed: shop" and files == []
    assert message.link == "https://hitl.example.com/jobs/12"
    assert "Crawl job #12 of shop (project demo) failed: wall time." in message.text


def test_an_event_reaches_a_channel_once_however_many_rules_send_it_there(state):
    team = _channel(state, "team")  # with the default rules: every intervention, to every channel
    notify_rules.add(state, {"event": "intervention.created", "channels": ["team"],
                             "escalate": [{"after": 60, "channel": "team"}]}, actor="t")
    start = state.events.last_id()
    opened, _ = interventions.open_or_update(state, type="captcha_solve", reason="x", domain="shop.test")
    for event in state.events.read(start):
        Router(state, NotifyConfig()).route(event)
    (sent,) = notifications.list_(state.db)
    assert sent["channel_id"] == team["id"]
    (chain,) = notifications.escalations_for(state.db, "intervention", opened["id"])  # the second rule's
    assert chain["state"] == "pending"


def test_the_sweep_queues_a_message_whose_enqueue_was_lost(state):
    from rq import Queue

    channel = _channel(state)
    queue = Queue(notifications.QUEUE, connection=state.redis)
    lost = notifications.add(state.db, channel_id=channel["id"], group_key="g", event_type="e", throttle=0,
                             now=utcnow() - timedelta(seconds=10))  # written, never queued (Redis was down)
    fresh = notifications.add(state.db, channel_id=channel["id"], group_key="h", event_type="e", throttle=0)
    assert queue.count == 0
    assert Router(state, NotifyConfig()).sweep() == {"escalated": 0, "queued": 1}
    (job,) = queue.jobs
    assert job.func_name == notifications.JOB and job.args == (lost[0],)
    assert fresh[0] != lost[0]  # a message just written is left to its own job


def test_throttle_zero_groups_nothing(state):
    """HITL_NOTIFY_THROTTLE=0 turns grouping off (docs/notifications.md): every event is its
    own message, even one that arrives before the last was sent."""
    channel = _channel(state)
    now = utcnow()
    made = [notifications.add(state.db, channel_id=channel["id"], group_key="g", event_type="e", throttle=0, now=now)
            for _ in range(3)]
    assert all(m is not None and m[1] == now for m in made) and len({m[0] for m in made}) == 3
    assert [n["grouped"] for n in notifications.list_(state.db)] == [1, 1, 1]


def test_an_escalation_not_sent_yet_is_cancelled_once_the_item_is_taken(state):
    """Its first attempt failed; someone says "I'm on it" before the retry: the retry does
    not tell the next person in line (docs/notifications.md: taking the item stops the chain)."""
    from hitl_console.notify.delivery import deliver_notification
    from scrapy_hitl.state import ownership

    channel = _channel(state)  # json://127.0.0.1:9: nothing listens, the attempt fails
    opened, _ = interventions.open_or_update(state, type="captcha_solve", reason="x", domain="shop.test")
    made = notifications.add(state.db, channel_id=channel["id"], group_key="escalation1:step1", throttle=0,
                             event_type="intervention.created", subject_kind="intervention",
                             subject_id=str(opened["id"]), escalation_step=1)
    config = NotifyConfig(retry_schedule=(0.0,), public_url="https://hitl.example.com")
    assert deliver_notification(state, config, made[0], rng=lambda: 0.0) == "retry"
    ownership.take(state, "intervention", opened["id"], owner="ann@example.com")
    assert deliver_notification(state, config, made[0], rng=lambda: 0.0) == "cancelled"
    sent = notifications.get(state.db, made[0])
    assert sent["state"] == "cancelled" and "ann@example.com" in sent["last_error"]
    outcomes = [a["outcome"] for a in notifications.attempts(state.db, notification_id=made[0])]
    assert outcomes == ["cancelled", "error"]  # newest first
    assert notify_channels.get(state, channel["id"])["failures"] == 1  # the channel was not tried again
