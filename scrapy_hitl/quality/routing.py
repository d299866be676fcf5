"""Where an item goes, from its confidence. Pure.

| confidence / critical field | route | feed export | stored as |
|---|---|---|---|
| >= deliver score (0.9) | delivered | yes, at once | ``delivered`` |
| >= review score (0.5) | optional review | yes, at once | ``optional_review`` |
| < review score, a critical field missing, or completeness < min completeness (0.5) | mandatory review | no, until approved | ``pending_review`` |

Completeness holds an item on its own: an item that lacks more than half of its required
fields is held whatever its score (without the rule, an item with none of them scores 0.6 by
the other parts and would be delivered).
"""

from __future__ import annotations

DELIVERED = "delivered"
OPTIONAL_REVIEW = "optional_review"
PENDING_REVIEW = "pending_review"
ROUTES = (DELIVERED, OPTIONAL_REVIEW, PENDING_REVIEW)
# The stats key of each route: hitl/quality/<key>.
STAT_KEYS = {DELIVERED: "delivered", OPTIONAL_REVIEW: "optional_review", PENDING_REVIEW: "mandatory_review"}


def route(confidence: float, *, critical_missing: bool, deliver_score: float, review_score: float,
          incomplete: bool = False) -> str:
    """``incomplete``: the item's completeness is under ``HITL_MIN_COMPLETENESS``."""
    if critical_missing or incomplete or confidence < review_score:
        return PENDING_REVIEW
    if confidence >= deliver_score:
        return DELIVERED
    return OPTIONAL_REVIEW
