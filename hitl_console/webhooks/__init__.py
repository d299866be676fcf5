"""Webhook delivery: the ``hitl worker`` that sends consultations' callbacks.

- ``config``: the ``HITL_WEBHOOK_*`` settings, read once.
- ``ssrf``: where a callback may go (``check_callback_url`` for the API, ``resolve`` at send time).
- ``transport``: one pinned HTTP POST, never following redirects.
- ``retry``: the retry policy (pure): backoff with full jitter, Retry-After, 410.
- ``delivery``: the RQ job, ``deliver(event_id)``, and the Standard Webhooks signature.
- ``worker``: ``hitl worker``: RQ's worker and scheduler, plus the sweep that makes delivery durable.

The events themselves are an outbox in the database (``scrapy_hitl.state.webhook_events``),
written in the transaction of the consultation transition they report. See docs/webhooks.md.
"""
