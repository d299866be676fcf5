"""A block reaches people: messages through a real ``hitl worker`` to a real JSON receiver,
grouped in a storm; escalation with and without "I'm on it"."""

from __future__ import annotations

import json

from scrapy_hitl.state import interventions, notifications, notify_rules, ownership
from scrapy_hitl.state.parking import ParkEntry
from tests.notify.conftest import PUBLIC_URL, add_channel, json_url, wait_for


def _block(state, domain: str = "shop.example.com", type_: str = "manual_access"):
    data, created = interventions.open_or_update(state, type=type_, reason="http_403", domain=domain,
                                                 spider="shop", url=f"https://{domain}/p/1")
    assert created
    return data


def _bodies(rec) -> list[dict]:
    return [json.loads(r["body"]) for r in rec.requests]


def test_a_block_reaches_the_json_receiver_with_words_count_and_link(state, receiver, notify_worker):
    rec = receiver()
    add_channel(state, json_url(rec), "team")
    worker = notify_worker()
    state.parking.park("shop", [ParkEntry.build(domain="shop.example.com", fingerprint=f"f{i}", reason="http_403",
                                                request={"url": f"https://shop.example.com/p/{i}"}) for i in (1, 2)])
    blocked = _block(state)
    wait_for(lambda: rec.requests, what=f"the message; worker log:\n{worker.log()[-3000:]}")
    (body,) = _bodies(rec)
    assert body["title"] == "Needs access: shop.example.com"
    text = body["message"]
    assert "403 Forbidden on shop.example.com: needs a logged-in session." in text
    assert "2 requests parked, waiting for" in text
    assert f"Open: {PUBLIC_URL}/interventions/{blocked['id']}" in text
    assert "Nobody has taken it yet." in text
    assert "(manual_access · http_403" in text  # the raw codes, last
    (sent,) = wait_for(lambda: [n for n in notifications.list_(state.db) if n["state"] != "pending"],
                       what="the attempt to be recorded")
    assert sent["state"] == "delivered" and sent["attempts"] == 1 and sent["title"] == body["title"]
    (attempt,) = notifications.attempts(state.db, notification_id=sent["id"])
    assert attempt["outcome"] == "delivered" and attempt["error"] is None


def test_a_storm_of_50_blocks_on_one_domain_is_one_message_with_the_count(state, receiver, notify_worker):
    rec = receiver()
    add_channel(state, json_url(rec), "team")
    # the window outlasts the storm; the worker is already routing while it happens
    notify_worker(HITL_NOTIFY_THROTTLE="4")
    for _ in range(50):
        blocked = _block(state, "storm.example.com")
        interventions.cancel(state, blocked["id"], actor="test")
    _block(state, "calm.example.com")  # another domain is not grouped with the storm
    rows = wait_for(lambda: (lambda r: r if sum(n["grouped"] for n in r if n["domain"] == "storm.example.com") == 50
                             and all(n["state"] == "delivered" for n in r) and len(r) >= 2 else None)(
        notifications.list_(state.db)), what="the storm's messages")
    storm = sorted((n for n in rows if n["domain"] == "storm.example.com"), key=lambda n: n["id"])
    # one message per window: the first at once (with whatever had arrived by then), then
    # one at the window's end standing for the rest, with their count
    assert len(storm) <= 2
    assert sum(n["grouped"] for n in storm) == 50
    titles = [b["title"] for b in _bodies(rec) if "storm" in b["title"]]
    assert len(titles) == len(storm)
    if len(storm) == 2:
        assert titles[1] == f"Needs access: storm.example.com (+{storm[1]['grouped'] - 1} more)"
        last = [b for b in _bodies(rec) if b["title"] == titles[1]][0]["message"]
        assert f"{storm[1]['grouped']} events like this in the last 4 s, grouped into this one message." in last
    assert [b["title"] for b in _bodies(rec) if "calm" in b["title"]] == ["Needs access: calm.example.com"]


def test_a_storm_routed_at_once_is_exactly_one_message_with_the_count(state, receiver, notify_env):
    """The worker was down during the storm: when it routes, 50 blocks give one message."""
    from hitl_console.notify.config import NotifyConfig
    from hitl_console.notify.worker import Notifier
    from hitl_console.webhooks.config import WebhookConfig
    from hitl_console.webhooks.worker import run_worker

    rec = receiver()
    add_channel(state, json_url(rec), "team")
    Notifier(state, NotifyConfig.from_env()).drain()  # a worker ran once: the cursor is set
    for _ in range(50):
        interventions.cancel(state, _block(state, "storm.example.com")["id"], actor="test")
    run_worker(state.config, WebhookConfig.from_env(), burst=True)
    (body,) = _bodies(rec)
    assert body["title"] == "Needs access: storm.example.com (+49 more)"
    assert "50 events like this in the last 10 min, grouped into this one message." in body["message"]
    assert "It is cancelled now." in body["message"]


def _escalating_rule(state, first: str, second: str, after: float = 1.0) -> dict:
    for rule in notify_rules.list_(state):  # the defaults would tell every channel at once
        notify_rules.remove(state, rule["id"])
    return notify_rules.add(state, {"event": "intervention.created", "name": "team, then on-call",
                                    "channels": [first], "escalate": [{"after": after, "channel": second}]},
                            actor="test")


def test_escalation_reaches_the_next_channel_unless_someone_is_on_it_or_it_is_closed(state, receiver, notify_worker):
    """Three blocks under one escalating rule: nobody takes the first, so on-call is told;
    someone says "I'm on it" for the second, and the third is cancelled: on-call hears
    of neither."""
    team, oncall = receiver(), receiver()
    add_channel(state, json_url(team), "team")
    add_channel(state, json_url(oncall), "oncall")
    _escalating_rule(state, "team", "oncall", after=2.0)
    worker = notify_worker()
    ignored = _block(state, "ignored.example.com")
    taken = _block(state, "taken.example.com")
    ownership.take(state, "intervention", taken["id"], owner="ann@example.com")
    closed = _block(state, "closed.example.com")
    interventions.cancel(state, closed["id"], actor="test")

    def chains():
        found = {i["domain"]: notifications.escalations_for(state.db, "intervention", i["id"])
                 for i in (ignored, taken, closed)}
        return found if all(c and c[0]["state"] != "pending" for c in found.values()) else None

    found = wait_for(chains, what=f"every chain to end; worker log:\n{worker.log()[-3000:]}")
    assert [(c[0]["state"], c[0]["reason"]) for c in found.values()] == [
        ("done", "the chain's last step was notified"), ("stopped", "owned by ann@example.com"),
        ("stopped", "intervention.cancelled")]
    wait_for(lambda: oncall.requests, what="the escalation's message")
    (escalated,) = _bodies(oncall)
    assert escalated["title"] == "Escalated: Needs access: ignored.example.com"
    assert "you are next in line (escalation step 1)" in escalated["message"]
    wait_for(lambda: len(team.requests) == 3, what="the team's three messages")
    assert sorted(b["title"] for b in _bodies(team)) == [
        "Needs access: closed.example.com", "Needs access: ignored.example.com", "Needs access: taken.example.com"]


def test_a_receiver_down_twice_gets_the_third_attempt_and_every_attempt_is_audited(state, receiver, notify_worker):
    rec = receiver(["reset", "reset"])  # the first two connections are reset: the receiver is "down"
    add_channel(state, json_url(rec), "hook")
    worker = notify_worker()
    _block(state)
    (sent,) = wait_for(lambda: [n for n in notifications.list_(state.db) if n["state"] == "delivered"],
                       what=f"the delivery; worker log:\n{worker.log()[-3000:]}")
    assert sent["attempts"] == 3
    attempts = sorted(notifications.attempts(state.db, notification_id=sent["id"]), key=lambda a: a["attempt"])
    assert [a["outcome"] for a in attempts] == ["error", "error", "delivered"]
    assert all("Connection" in a["error"] or "reset" in a["error"] for a in attempts[:2]), attempts
    assert len(rec.requests) == 1


def test_a_high_priority_consultation_is_announced_and_a_low_one_is_not(state, receiver, notify_worker):
    from scrapy_hitl.state import consultations

    rec = receiver()
    add_channel(state, json_url(rec), "hook")  # the default rules: consultations of priority 50 or more
    notify_worker()
    consultations.create(state, title="Is 12.99 EUR right?", options=["yes", "no"], priority=10, actor="cli")
    urgent = consultations.create(state, title="Is this the same shop?", options=["yes", "no"], priority=80,
                                  actor="spider:shop")
    wait_for(lambda: rec.requests, what="the message")
    (body,) = _bodies(rec)
    assert body["title"] == "Question: Is this the same shop?"
    assert f"Open: {PUBLIC_URL}/consultations/{urgent['id']}" in body["message"]
    assert [n["subject_id"] for n in notifications.list_(state.db)] == [str(urgent["id"])]
