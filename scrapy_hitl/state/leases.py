"""Leases on outbox rows (webhook events, notifications): who may attempt a delivery now.

Both outboxes share the columns ``state``, ``next_attempt_at``, ``attempts``,
``lease_token``, ``lease_until`` and ``updated_at``, and the same rule: a row is taken if it
is pending, due, and not leased or its lease expired. A conditional UPDATE decides, so of
several workers exactly one gets it, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update


def take(session: Any, model: Any, row_id: int, *, lease_seconds: float, now: datetime) -> tuple[Any, str, bool]:
    """``(row, lease token, interrupted)`` with the row now leased for ``lease_seconds`` and
    its attempts counted, or ``(None, "", False)``. ``interrupted``: the lease was taken over
    from an attempt that expired (the caller records that attempt).

    UPDATE first, read after: on SQLite a read that turns into a write can fail with
    SQLITE_BUSY_SNAPSHOT under a concurrent writer; a write-first transaction waits."""
    token = secrets.token_hex(16)
    due = (model.id == row_id, model.state == "pending", model.next_attempt_at <= now)
    values = {"attempts": model.attempts + 1, "lease_token": token,
              "lease_until": now + timedelta(seconds=lease_seconds), "updated_at": now}

    def attempt(*leased: Any) -> int:
        return session.execute(update(model).where(*due, *leased).values(**values)
                               .execution_options(synchronize_session=False)).rowcount

    interrupted = False
    if not attempt(model.lease_token.is_(None)):
        if not attempt(model.lease_token.is_not(None), model.lease_until <= now):
            return None, "", False
        interrupted = True
    row = session.get(model, row_id, populate_existing=True)
    return row, token, interrupted
