"""Ownership: "I'm on it" on an intervention or a consultation.

Taking an item records who owns it (and when) on the item, in its history, and as an
``intervention.owned`` / ``consultation.owned`` event; an owned item is not escalated
(``notify_rules``). Someone else may take it over (the history keeps both); ``release``
gives it back. Only an open intervention or a pending consultation can be taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy_hitl.state.models import Consultation, ConsultationEvent, Intervention, InterventionEvent, iso, utcnow

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState

KINDS = ("intervention", "consultation")


class NotOwnable(ValueError):
    """Raised for an item that is closed (resolved, answered, cancelled...): the API answers 409."""


def _set(hitl: HitlState, kind: str, item_id: int, owner: str | None, actor: str) -> dict[str, Any]:
    from scrapy_hitl.state.consultations import ConsultationNotFound
    from scrapy_hitl.state.interventions import InterventionNotFound

    now = utcnow()
    with hitl.db.session() as s:
        if kind == "intervention":
            row: Any = s.get(Intervention, item_id)
            if row is None:
                raise InterventionNotFound(item_id)
            is_open = row.status == "open"
        elif kind == "consultation":
            row = s.get(Consultation, item_id)
            if row is None:
                raise ConsultationNotFound(item_id)
            is_open = row.state == "pending"
        else:
            raise ValueError(f"kind must be one of {KINDS}")
        if not is_open:
            state = row.status if kind == "intervention" else row.state
            raise NotOwnable(f"{kind} {item_id} is {state}: only an open one can be taken or released")
        previous = row.owner
        row.owner, row.owned_at = owner, (now if owner else None)
        action = "owned" if owner else "released"
        detail = {"owner": owner, "previous": previous}
        if kind == "intervention":
            s.add(InterventionEvent(intervention_id=item_id, action=action, actor=actor, detail=detail, at=now))
            ids = {"intervention_id": item_id, "domain": row.domain, "spider": row.spider or None,
                   "run_id": row.run_id}
        else:
            s.add(ConsultationEvent(consultation_id=item_id, action=action, actor=actor, detail=detail, at=now))
            ids = {}
        data = {"kind": kind, "id": item_id, "owner": owner, "owned_at": iso(row.owned_at), "previous": previous}
    hitl.events.emit(f"{kind}.owned", {f"{kind}_id": item_id, "owner": owner, "previous": previous}, **ids)
    return data


def take(hitl: HitlState, kind: str, item_id: int, *, owner: str, actor: str | None = None) -> dict[str, Any]:
    """``owner`` says "I'm on it" for the item."""
    return _set(hitl, kind, item_id, owner, actor or owner)


def release(hitl: HitlState, kind: str, item_id: int, *, actor: str) -> dict[str, Any]:
    """Nobody owns the item any more (escalation resumes from where it was)."""
    return _set(hitl, kind, item_id, None, actor)


def status(hitl: HitlState, kind: str, item_id: int) -> tuple[bool, str | None]:
    """``(open, owner)`` of an item; ``(False, None)`` if it is gone."""
    with hitl.db.session() as s:
        if kind == "intervention":
            row: Any = s.get(Intervention, item_id)
            return (row is not None and row.status == "open", row.owner if row is not None else None)
        row = s.get(Consultation, item_id)
        return (row is not None and row.state == "pending", row.owner if row is not None else None)
