"""Notifications: ``hitl worker`` tells people where they are (Slack, email, Teams, ...).

- ``config``: the ``HITL_NOTIFY_*`` and ``HITL_PUBLIC_URL`` settings, read once.
- ``channels``: Apprise, the one place it is used: check a channel URL, send one message.
- ``match``: which rules an event satisfies (pure).
- ``messages``: what a message says (pure): words, parked count, waited time, deep link.
- ``router``: events -> messages (grouped per throttle window), escalation chains, the sweep.
- ``delivery``: the RQ job, ``deliver(notification_id)``, with retries and backoff.
- ``worker``: the notifier thread of ``hitl worker`` that feeds the router from the event stream.

The records (channels, rules, the outbox, attempts, escalations, ownership) live in the state
layer (``scrapy_hitl.state.notify_*``, ``notifications``, ``ownership``). See docs/notifications.md.
"""
