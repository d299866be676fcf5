"""The reviewer's inbox: everything that waits for a person, most urgent first.

Three kinds of rows, merged and sorted by priority (high first), then age (oldest first):

- ``intervention``: an open intervention (a paused domain, a layout change, an odd run);
- ``review``: items held for a mandatory review, one row per run;
- ``consultation``: a question an agent or a spider asked, still without an answer.

Each row says in words what happened and what the reviewer can do (:mod:`hitl_console.words`);
the raw codes travel beside the words. Each kind is read with one query of the few columns a
row needs (no evidence, no headers), already sorted and limited, so 1,000 open items cost a
few milliseconds, not a page of JSON blobs.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from hitl_console import words
from scrapy_hitl.state.interventions import NON_PAUSING_TYPES
from scrapy_hitl.state.models import Consultation, Intervention, ScrapedItem, iso

if TYPE_CHECKING:
    from scrapy_hitl.state import HitlState

def _who(owner: str | None) -> str | None:
    """Who said "I'm on it" (ownership.py), as a person reads it: the console user's email."""
    return owner.removeprefix("console:").removeprefix("user:") if owner else None


def _key(row: dict[str, Any]) -> tuple[int, str]:
    return (-int(row["priority"] or 0), row["created_at"] or "")


def interventions(state: HitlState, limit: int) -> tuple[list[dict[str, Any]], int]:
    cols = [Intervention.id, Intervention.type, Intervention.reason, Intervention.vendor, Intervention.domain,
            Intervention.spider, Intervention.run_id, Intervention.priority, Intervention.created_at,
            Intervention.parked_count, Intervention.owner]
    q = (select(*cols).where(Intervention.status == "open")
         .order_by(Intervention.priority.desc(), Intervention.created_at, Intervention.id).limit(limit))
    total_q = select(func.count()).select_from(Intervention).where(Intervention.status == "open")
    with state.db.session() as s:
        rows = s.execute(q).all()
        total = int(s.execute(total_q).scalar_one())
    parked: dict[str, int] = {}
    if any(r.type not in NON_PAUSING_TYPES for r in rows):
        for (_spider, domain), n in state.parking.counts().items():
            parked[domain] = parked.get(domain, 0) + n
    out = []
    for r in rows:
        row = {"kind": "intervention", "id": r.id, "priority": r.priority, "created_at": iso(r.created_at),
               "type": r.type, "reason": r.reason, "vendor": r.vendor, "domain": r.domain, "spider": r.spider,
               "run_id": r.run_id,
               "parked_count": 0 if r.type in NON_PAUSING_TYPES else parked.get(r.domain, r.parked_count),
               "href": f"/interventions/{r.id}", "owner": _who(r.owner)}
        row["title"] = words.intervention_sentence(row)
        row["label"] = words.type_label(r.type)
        row["codes"] = [c for c in (r.type, r.reason, r.vendor) if c]
        out.append(row)
    return out, total


def reviews(state: HitlState, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Held items (``pending_review``), one row per run: how many, the lowest score, the oldest."""
    q = (select(ScrapedItem.run_id, ScrapedItem.spider, func.count(), func.min(ScrapedItem.score),
                func.min(ScrapedItem.created_at))
         .where(ScrapedItem.status == "pending_review")
         .group_by(ScrapedItem.run_id, ScrapedItem.spider))
    with state.db.session() as s:
        groups = s.execute(q).all()
    out = []
    for run_id, spider, n, low, oldest in groups:
        query = f"?run_id={run_id}" if run_id else ""
        out.append({"kind": "review", "id": run_id or "", "priority": 0, "created_at": iso(oldest),
                    "run_id": run_id, "spider": spider, "count": int(n), "min_score": low,
                    "href": f"/items{query}",
                    "title": f"{words.plural(int(n), 'item')} from {spider or 'a spider'} held for review — "
                             f"lowest score {low:.2f} — approve, edit or reject them",
                    "label": "Items to review", "codes": ["pending_review"]})
    out.sort(key=_key)
    return out[:limit], sum(r["count"] for r in out)


def consultations(state: HitlState, limit: int) -> tuple[list[dict[str, Any]], int]:
    q = (select(Consultation.id, Consultation.title, Consultation.asked_by, Consultation.priority,
                Consultation.created_at, Consultation.deadline_at, Consultation.owner)
         .where(Consultation.state == "pending")
         .order_by(Consultation.priority.desc(), Consultation.created_at, Consultation.id).limit(limit))
    total_q = select(func.count()).select_from(Consultation).where(Consultation.state == "pending")
    with state.db.session() as s:
        rows = s.execute(q).all()
        total = int(s.execute(total_q).scalar_one())
    return [{"kind": "consultation", "id": r.id, "priority": r.priority, "created_at": iso(r.created_at),
             "deadline_at": iso(r.deadline_at), "asked_by": r.asked_by, "href": f"/consultations/{r.id}",
             "owner": _who(r.owner),
             "title": f"{r.title} — asked by {r.asked_by or 'an agent'} — waiting for your answer",
             "label": "Question", "codes": ["consultation"]} for r in rows], total


def inbox(state: HitlState, *, limit: int = 100) -> dict[str, Any]:
    """``{"items": [...], "counts": {...}, "more": bool}``: the first ``limit`` rows in order."""
    parts = {"interventions": interventions(state, limit), "reviews": reviews(state, limit),
             "consultations": consultations(state, limit)}
    merged = list(heapq.merge(*(rows for rows, _n in parts.values()), key=_key))
    counts = {name: n for name, (_rows, n) in parts.items()}
    shown = merged[:limit]
    total_rows = counts["interventions"] + counts["consultations"] + len(parts["reviews"][0])
    return {"items": shown, "counts": counts, "more": total_rows > len(shown)}
