"""Consultations: an agent (or a spider) asks a human; a reviewer answers.

States::

    pending ──► responded ──► callback_sent
       │            └───────► callback_failed ──► callback_sent (a redelivery)
       ├──► cancelled   (the agent gave up)
       └──► timed_out   (the deadline passed: ``expire_overdue``)

Every transition is a conditional UPDATE (of two concurrent answers exactly one wins, on
SQLite and PostgreSQL alike), appends a ``ConsultationEvent`` (who and when), emits
``consultation.<state>`` on the event stream, and wakes the long-polls waiting on that
consultation (``wait_for_change``) through a small per-consultation Redis stream.

What a consultation accepts as an answer:

- ``options``: a list of 1 to 50 choices, each a string or ``{"value", "label"?}`` (stored
  as ``{"value", "label"}``, the label defaulting to the value). The answer is one of the
  values, exactly.
- ``response_schema``: a JSON Schema (draft 2020-12 unless it says ``$schema``; ``format``
  is asserted). The answer must satisfy it. Only local ``$ref`` (``#...``) are allowed:
  nothing is ever fetched.
- neither: any JSON value but null (the console offers free text).

Giving both is refused: for choices that carry data, use a schema with ``enum`` or
``oneOf``/``const``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import best_match
from sqlalchemy import and_, insert, inspect, or_, select, update

from scrapy_hitl.state import webhook_events
from scrapy_hitl.state.models import CONSULTATION_STATES, Consultation, ConsultationEvent, iso, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from scrapy_hitl.state import HitlState

MAX_TITLE = 200
MAX_DESCRIPTION = 20_000
MAX_OPTIONS = 50
MAX_OPTION_VALUE = 200
MAX_OPTION_LABEL = 500
MAX_URL = 2048
MIN_TIMEOUT, MAX_TIMEOUT, DEFAULT_TIMEOUT = 1, 7 * 24 * 3600, 24 * 3600  # seconds
MIN_PRIORITY, MAX_PRIORITY = -100, 100
MAX_WAIT = 60  # seconds a long-poll may wait
ORDERS = ("newest", "priority")

# The states each state may move to (see the module docstring).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("responded", "cancelled", "timed_out"),
    "responded": ("callback_sent", "callback_failed"),
    "callback_failed": ("callback_sent", "callback_failed"),
}

# Long-poll wake-ups: each transition appends to hitl:consultation:<id>:changes, a capped
# stream that expires once no wait can still be reading it. XREAD does not consume, so every
# process waiting on the consultation wakes.
_WAKE_KEY = "hitl:consultation:{}:changes"
_WAKE_MAXLEN = 16
_WAKE_TTL = 10 * MAX_WAIT  # seconds
# The longest single XREAD BLOCK: under the Redis client's socket timeout, and a safety net
# (the database is read again) should a wake-up ever be lost.
_WAKE_BLOCK_MS = 5000


class ConsultationNotFound(LookupError):
    """Raised for an unknown consultation id, or one another agent owns (answered 404 both)."""

    def __init__(self, consultation_id: Any) -> None:
        super().__init__(f"No consultation with id {consultation_id}.")
        self.consultation_id = consultation_id


class ConsultationInvalid(ValueError):
    """Raised by ``create`` for invalid fields; ``errors`` maps each field to what is wrong
    (answered 422 ``invalid``)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class AnswerInvalid(ValueError):
    """Raised by ``respond`` for an answer that is not one of the options or violates the
    schema (answered 422 ``invalid_answer``). ``detail`` holds ``message``, ``path`` (the
    place in the answer, a list of keys and indexes), ``json_path`` and, for a schema error,
    ``validator`` and ``schema_path``; for an option error, ``options``."""

    def __init__(self, detail: dict[str, Any]) -> None:
        super().__init__(detail["message"])
        self.detail = detail


class ConsultationClosed(ValueError):
    """Raised for a transition the consultation's state does not allow, such as answering one
    that is no longer pending (answered 409 ``closed``)."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        self.state = state


# --- shapes ------------------------------------------------------------------------------------


def _aware(dt: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone=True columns.
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def consultation_to_dict(row: Consultation) -> dict[str, Any]:
    return {
        "id": row.id,
        "api_key_id": row.api_key_id,
        "asked_by": row.asked_by,
        "title": row.title,
        "description": row.description,
        "context": row.context,
        "options": row.options,
        "response_schema": row.response_schema,
        "callback_url": row.callback_url,
        "timeout_seconds": row.timeout_seconds,
        "deadline_at": iso(row.deadline_at),
        "priority": row.priority,
        "metadata": row.meta,
        "state": row.state,
        "response": row.response,
        "responded_by": row.responded_by,
        "responded_at": iso(row.responded_at),
        "owner": row.owner,
        "owned_at": iso(row.owned_at),
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _with_history(row: Consultation) -> dict[str, Any]:
    data = consultation_to_dict(row)
    data["history"] = [{"action": h.action, "actor": h.actor, "detail": h.detail, "at": iso(h.at)}
                       for h in row.history]
    return data


# --- validation (pure) ---------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_options(options: Any) -> list[dict[str, str]]:
    """The options as ``[{"value", "label"}]``; ValueError saying what is wrong."""
    if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
        raise ValueError(f"a list of 1 to {MAX_OPTIONS} choices: strings, or objects with "
                         "\"value\" and an optional \"label\"")
    out, seen = [], set()
    for i, option in enumerate(options):
        if isinstance(option, str):
            value, label = option, option
        elif isinstance(option, dict) and set(option) <= {"value", "label"}:
            value, label = option.get("value"), option.get("label", option.get("value"))
        else:
            raise ValueError(f"[{i}] must be a string or an object with \"value\" and an optional \"label\"")
        if not isinstance(value, str) or not value or len(value) > MAX_OPTION_VALUE:
            raise ValueError(f"[{i}]: the value must be a string of 1 to {MAX_OPTION_VALUE} characters")
        if not isinstance(label, str) or not label or len(label) > MAX_OPTION_LABEL:
            raise ValueError(f"[{i}]: the label must be a string of 1 to {MAX_OPTION_LABEL} characters")
        if value in seen:
            raise ValueError(f"[{i}]: {value!r} is there twice; the values must be distinct")
        seen.add(value)
        out.append({"value": value, "label": label})
    return out


def _refs(node: Any, keys: tuple[str, ...] = ("$ref", "$dynamicRef")) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and isinstance(value, str):
                yield value
            else:
                yield from _refs(value, keys)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item, keys)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def check_schema(schema: Any) -> dict[str, Any]:
    """The schema if it is a valid JSON Schema object with only local references; ValueError
    (with the validator's message and where) otherwise."""
    if not isinstance(schema, dict):
        raise ValueError("a JSON Schema object, such as {\"type\": \"string\"}")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        where = f" (at /{where})" if where else ""
        raise ValueError(f"not a valid JSON Schema: {exc.message}{where}") from None
    remote = [ref for ref in _refs(schema) if not ref.startswith("#")]
    if remote:
        raise ValueError(f"only local references (\"#/...\") are allowed; found {remote[0]!r}")
    _check_refs_resolve(schema)
    validator = _validator(schema)
    try:  # a $ref loop that never reaches a value recurses whatever the answer: refuse it now
        for probe in (None, True, 0, "", [], {}):
            best_match(validator.iter_errors(probe))
    except RecursionError:
        raise ValueError("its $refs loop without end (a schema that refers to itself must go "
                         "through a property or an item)") from None
    except referencing.exceptions.Unresolvable as exc:
        raise ValueError(f"a $ref cannot be resolved: {exc}") from None
    return schema


def _check_refs_resolve(schema: dict[str, Any]) -> None:
    """ValueError naming the first local ``$ref`` that points nowhere (an answer could never
    be checked). Skipped for a schema with embedded ``$id``s, whose refs have other bases."""
    ids = list(_ids(schema))
    if ids[1:] or (ids and schema.get("$id") is None):
        return
    base = "urn:hitl:response-schema"
    resource = referencing.Resource.from_contents(schema, default_specification=referencing.jsonschema.DRAFT202012)
    resolver = referencing.Registry().with_resource(base, resource).resolver(base_uri=base)
    for ref in _refs(schema, keys=("$ref",)):
        try:
            resolver.lookup(base + ref)
        except referencing.exceptions.Unresolvable:
            raise ValueError(f"the $ref {ref!r} points nowhere in the schema") from None


def _ids(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        if "$id" in node:
            yield node["$id"]
        for value in node.values():
            yield from _ids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ids(item)


def check_url(url: Any) -> str:
    """An http(s) URL with a host (syntax only: the delivery checks where it resolves)."""
    message = f"an http or https URL of at most {MAX_URL} characters"
    if not isinstance(url, str) or not url or len(url) > MAX_URL \
            or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(message)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(message) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(message)
    return url


def check_answer(consultation: dict[str, Any], answer: Any) -> None:
    """Raise AnswerInvalid unless ``answer`` fits the consultation's options or schema."""
    if answer is None:
        raise AnswerInvalid({"message": "an answer is required (null is not one)", "path": [],
                             "json_path": "$"})
    if consultation["options"] is not None:
        values = [o["value"] for o in consultation["options"]]
        if not isinstance(answer, str) or answer not in values:
            raise AnswerInvalid({
                "message": f"{answer!r} is not one of the options: {', '.join(map(repr, values))}",
                "path": [], "json_path": "$", "validator": "options", "options": values,
            })
    elif consultation["response_schema"] is not None:
        try:
            error = best_match(_validator(consultation["response_schema"]).iter_errors(answer))
        except referencing.exceptions.Unresolvable as exc:
            raise AnswerInvalid({"message": f"the response_schema cannot be checked: unresolvable {exc}",
                                 "path": [], "json_path": "$"}) from None
        except RecursionError:
            raise AnswerInvalid({"message": "the response_schema cannot be checked: its $refs loop without end",
                                 "path": [], "json_path": "$"}) from None
        if error is not None:
            raise AnswerInvalid({
                "message": error.message,
                "path": list(error.absolute_path),
                "json_path": error.json_path,
                "validator": str(error.validator),
                "schema_path": list(error.absolute_schema_path),
            })


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a new consultation, normalized; ConsultationInvalid naming every bad one."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}

    def check(name: str, fn: Any) -> None:
        try:
            out[name] = fn(fields[name])
        except ValueError as exc:
            errors[name] = str(exc)

    title = fields["title"]
    if not isinstance(title, str) or not title.strip() or len(title.strip()) > MAX_TITLE:
        errors["title"] = f"required: a string of 1 to {MAX_TITLE} characters"
    else:
        out["title"] = title.strip()
    if not isinstance(fields["description"], str) or len(fields["description"]) > MAX_DESCRIPTION:
        errors["description"] = f"a string of at most {MAX_DESCRIPTION} characters"
    out["description"] = fields["description"]
    out["context"] = fields["context"]
    out["options"] = out["response_schema"] = out["callback_url"] = None
    if fields["options"] is not None and fields["response_schema"] is not None:
        errors["response_schema"] = "give options or a response_schema, not both"
    if fields["options"] is not None:
        check("options", check_options)
    if fields["response_schema"] is not None:
        check("response_schema", check_schema)
    if fields["callback_url"] is not None:
        check("callback_url", check_url)
    for name, low, high in (("timeout_seconds", MIN_TIMEOUT, MAX_TIMEOUT),
                            ("priority", MIN_PRIORITY, MAX_PRIORITY)):
        if not _is_int(fields[name]) or not low <= fields[name] <= high:
            errors[name] = f"an integer from {low} to {high}"
        out[name] = fields[name]
    if not isinstance(fields["metadata"], dict):
        errors["metadata"] = "a JSON object"
    out["metadata"] = fields["metadata"]
    if errors:
        raise ConsultationInvalid(errors)
    return out


# --- writes ------------------------------------------------------------------------------------

_COLUMNS = [a for a in inspect(Consultation).column_attrs if a.key != "id"]
# SQLite takes one writer at a time, and a writer that finds the database locked sleeps in
# growing steps (1 ms ... 100 ms) before it tries again: under 20 concurrent creates that,
# not the work, was the tail. This process's creators queue on a lock instead, each woken
# the moment the previous one commits. (PostgreSQL needs none.)
_SQLITE_WRITES = threading.Lock()


def _write_lock(hitl: HitlState) -> contextlib.AbstractContextManager[Any]:
    return _SQLITE_WRITES if hitl.db.url.startswith("sqlite") else contextlib.nullcontext()


_INSERT_CONSULTATION = insert(Consultation.__table__)  # built once: SQLAlchemy caches its compiled form
_INSERT_EVENT = insert(ConsultationEvent.__table__)


def create(
    hitl: HitlState,
    *,
    title: str,
    description: str = "",
    context: Any = None,
    options: list[Any] | None = None,
    response_schema: dict[str, Any] | None = None,
    callback_url: str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT,
    priority: int = 0,
    metadata: dict[str, Any] | None = None,
    api_key_id: int | None = None,
    actor: str = "system",
) -> dict[str, Any]:
    """Ask: a new pending consultation, due ``timeout_seconds`` from now. Raises
    ConsultationInvalid naming every bad field. ``api_key_id`` is the asking agent's key
    (None for a spider or the CLI); ``actor`` is who asks, kept as ``asked_by`` and in the
    history ("agent:<key id>", "spider:<name>", ...)."""
    fields = _checked({
        "title": title, "description": description, "context": context, "options": options,
        "response_schema": response_schema, "callback_url": callback_url,
        "timeout_seconds": timeout_seconds, "priority": priority,
        "metadata": {} if metadata is None else metadata,
    })
    now = utcnow()
    row = Consultation(
        api_key_id=api_key_id, asked_by=actor, title=fields["title"], description=fields["description"],
        context=fields["context"], options=fields["options"], response_schema=fields["response_schema"],
        callback_url=fields["callback_url"], timeout_seconds=fields["timeout_seconds"],
        deadline_at=now + timedelta(seconds=fields["timeout_seconds"]), priority=fields["priority"],
        meta=fields["metadata"], state="pending", response=None, responded_by=None, responded_at=None,
        created_at=now, updated_at=now,
    )
    # Two Core INSERTs in one transaction rather than the ORM's unit of work: this is the
    # agents' hot path (bench/consultations_create.py), and the ORM's flushes cost more
    # than the statements themselves.
    values = {c.key: getattr(row, a.key) for a in _COLUMNS for c in a.columns}
    with _write_lock(hitl), hitl.db.session() as s:
        row.id = s.execute(_INSERT_CONSULTATION, values).inserted_primary_key[0]
        s.execute(_INSERT_EVENT, {"consultation_id": row.id, "action": "created", "actor": actor, "at": now,
                                  "detail": {"priority": row.priority, "timeout_seconds": row.timeout_seconds}})
    data = consultation_to_dict(row)
    _announce(hitl, data, "created", actor)
    return data


def _announce(hitl: HitlState, data: dict[str, Any], action: str, actor: str) -> None:
    """After the commit: the event for the console, the wake-up for the long-polls."""
    hitl.events.emit(f"consultation.{action}", {
        "consultation_id": data["id"], "state": data["state"], "priority": data["priority"],
        "title": data["title"], "api_key_id": data["api_key_id"], "actor": actor,
    })
    if action != "created":
        key = _WAKE_KEY.format(data["id"])
        pipe = hitl.redis.pipeline(transaction=False)
        pipe.xadd(key, {"state": data["state"]}, maxlen=_WAKE_MAXLEN, approximate=True)
        pipe.expire(key, _WAKE_TTL)
        pipe.execute()


def _transition(
    hitl: HitlState,
    consultation_id: int,
    to: str,
    *,
    actor: str,
    detail: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    owner: int | None = None,
    where: Sequence[Any] = (),
) -> dict[str, Any]:
    """Move to ``to`` if the current state allows it (a conditional UPDATE: one winner)."""
    sources = [s for s, targets in TRANSITIONS.items() if to in targets]
    now = utcnow()
    with hitl.db.session() as s:
        conditions = [Consultation.id == consultation_id, Consultation.state.in_(sources), *where]
        if owner is not None:
            conditions.append(Consultation.api_key_id == owner)
        won = s.execute(update(Consultation).where(*conditions)
                        .values(state=to, updated_at=now, **(values or {}))
                        .execution_options(synchronize_session=False)).rowcount
        row = s.get(Consultation, consultation_id, populate_existing=True)
        if row is None or (owner is not None and row.api_key_id != owner):
            raise ConsultationNotFound(consultation_id)
        if not won:
            raise ConsultationClosed(
                f"Consultation {consultation_id} is {row.state}; it cannot become {to} "
                f"(only from {' or '.join(sources)}).", row.state)
        s.add(ConsultationEvent(consultation_id=row.id, action=to, actor=actor, detail=detail or {}, at=now))
        data = consultation_to_dict(row)
        webhook = webhook_events.add(s, row, to, data)  # the callback, in this same transaction
    webhook_events.dispatch(hitl, webhook)  # after the commit; the worker's sweep covers a failure
    _announce(hitl, data, to, actor)
    return data


def respond(hitl: HitlState, consultation_id: int, answer: Any, *, actor: str) -> dict[str, Any]:
    """Answer a pending consultation. Raises AnswerInvalid (not an option, or a schema
    violation), ConsultationClosed (not pending, or past its deadline: then it is marked
    timed_out here), ConsultationNotFound."""
    current = get(hitl, consultation_id)
    if current["state"] != "pending":
        raise ConsultationClosed(f"Consultation {consultation_id} is {current['state']}; only a pending "
                                 "one can be answered.", current["state"])
    check_answer(current, answer)
    now = utcnow()
    try:
        return _transition(hitl, consultation_id, "responded", actor=actor, detail={"response": answer},
                           values={"response": answer, "responded_by": actor, "responded_at": now},
                           where=[Consultation.deadline_at > now])
    except ConsultationClosed as exc:
        if exc.state != "pending":  # someone else answered or cancelled meanwhile
            raise
    _expire_one(hitl, consultation_id, now)  # overdue: the scheduler has not got to it yet
    raise ConsultationClosed(f"Consultation {consultation_id} timed out at {current['deadline_at']}.",
                             "timed_out")


def cancel(hitl: HitlState, consultation_id: int, *, actor: str, owner: int | None = None,
           reason: str = "") -> dict[str, Any]:
    """Withdraw a pending consultation. With ``owner``, only that key's (else
    ConsultationNotFound). Raises ConsultationClosed if it is not pending."""
    return _transition(hitl, consultation_id, "cancelled", actor=actor, owner=owner,
                       detail={"reason": reason} if reason else None)


def _expire_one(hitl: HitlState, consultation_id: int, now: datetime) -> dict[str, Any] | None:
    try:
        return _transition(hitl, consultation_id, "timed_out", actor="system",
                           where=[Consultation.deadline_at <= now])
    except ConsultationClosed:  # answered or cancelled meanwhile
        return None


def expire(hitl: HitlState, consultation_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Time one consultation out if it is pending and past its deadline (for a waiter that
    saw the deadline pass before the scheduler did); returns it as it is now, with its
    history. ConsultationNotFound for an unknown id."""
    _expire_one(hitl, consultation_id, now or utcnow())
    return get(hitl, consultation_id)


def expire_overdue(hitl: HitlState, now: datetime | None = None, *, limit: int = 500) -> list[dict[str, Any]]:
    """Mark pending consultations past their deadline timed_out, oldest deadline first, at
    most ``limit`` per call; returns them (each transition queues its webhook, if any).
    Safe to run in several processes at once: each consultation times out once."""
    now = now or utcnow()
    q = (select(Consultation.id)
         .where(Consultation.state == "pending", Consultation.deadline_at <= now)
         .order_by(Consultation.deadline_at, Consultation.id).limit(limit))
    with hitl.db.session() as s:
        ids = list(s.scalars(q))
    return [data for data in (_expire_one(hitl, i, now) for i in ids) if data is not None]


def mark_callback(hitl: HitlState, consultation_id: int, *, delivered: bool, actor: str = "system",
                  detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """For the webhook worker: the ``consultation.responded`` callback was delivered
    (callback_sent) or given up on (callback_failed). A failed one may be redelivered."""
    return _transition(hitl, consultation_id, "callback_sent" if delivered else "callback_failed",
                       actor=actor, detail=detail)


# --- reads -------------------------------------------------------------------------------------


def get(hitl: HitlState, consultation_id: int, *, owner: int | None = None) -> dict[str, Any]:
    """One consultation with its ``history``. With ``owner`` (an API key id), another key's
    is ConsultationNotFound, exactly like a missing one."""
    with hitl.db.session() as s:
        row = s.get(Consultation, consultation_id)
        if row is None or (owner is not None and row.api_key_id != owner):
            raise ConsultationNotFound(consultation_id)
        return _with_history(row)


def list_(
    hitl: HitlState,
    *,
    state: str | None = None,
    min_priority: int | None = None,
    api_key_id: int | None = None,
    order: str = "newest",
    limit: int = 50,
    cursor: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Consultations without their history, keyset-paginated. ``order="newest"``: by id,
    newest first, ``cursor`` is ``[id]`` of the last row seen. ``order="priority"``: the
    queue, highest priority first and oldest first within one, ``cursor`` is
    ``[priority, id]``."""
    if state is not None and state not in CONSULTATION_STATES:
        raise ValueError(f"state must be one of {', '.join(CONSULTATION_STATES)}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}")
    q = select(Consultation).limit(limit)
    if state is not None:
        q = q.where(Consultation.state == state)
    if min_priority is not None:
        q = q.where(Consultation.priority >= min_priority)
    if api_key_id is not None:
        q = q.where(Consultation.api_key_id == api_key_id)
    if order == "newest":
        q = q.order_by(Consultation.id.desc())
        if cursor is not None:
            q = q.where(Consultation.id < cursor[0])
    else:
        q = q.order_by(Consultation.priority.desc(), Consultation.id)
        if cursor is not None:
            priority, last = cursor
            q = q.where(or_(Consultation.priority < priority,
                            and_(Consultation.priority == priority, Consultation.id > last)))
    with hitl.db.session() as s:
        return [consultation_to_dict(r) for r in s.scalars(q)]


def current(hitl: HitlState, consultation_id: int, *, owner: int | None = None) -> dict[str, Any]:
    """As ``get``, but a pending consultation past its deadline is timed out first, so whoever
    asked sees ``timed_out`` at the deadline even when no scheduler has run yet."""
    data = get(hitl, consultation_id, owner=owner)
    if data["state"] == "pending" and _seconds_left(data) <= 0:
        _expire_one(hitl, consultation_id, utcnow())
        data = get(hitl, consultation_id, owner=owner)
    return data


def _seconds_left(data: dict[str, Any]) -> float:
    """Seconds until the consultation's deadline (negative once past)."""
    return (datetime.fromisoformat(data["deadline_at"]) - utcnow()).total_seconds()


def wait_for_change(hitl: HitlState, consultation_id: int, *, timeout: float,
                    owner: int | None = None) -> dict[str, Any]:
    """The consultation (as ``current``) as soon as it is no longer pending, or as it is once
    ``timeout`` seconds have passed. One that is not pending is returned at once; one whose
    deadline comes during the wait is returned timed_out at its deadline.

    Blocks on a Redis read (XREAD BLOCK) that a transition made by any process wakes, so the
    answer comes back within milliseconds; the database is read once per wake-up, and every
    5 s as a safety net. No database connection is held while blocked (each read opens and
    returns its own); the calling thread and one Redis connection are.
    """
    key = _WAKE_KEY.format(consultation_id)
    newest = hitl.redis.xrevrange(key, count=1)  # before reading the state: no lost wake-up
    last = _decode(newest[0][0]) if newest else "0-0"
    data = current(hitl, consultation_id, owner=owner)
    deadline = time.monotonic() + timeout
    while data["state"] == "pending":
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        # wake at the consultation's own deadline too (plus a little: it must have passed)
        block = min(remaining, max(0.0, _seconds_left(data)) + 0.05, _WAKE_BLOCK_MS / 1000)
        found = hitl.redis.xread({key: last}, count=_WAKE_MAXLEN, block=max(1, int(block * 1000)))
        for _key, entries in found or ():
            last = _decode(entries[-1][0])
        data = current(hitl, consultation_id, owner=owner)
    return data


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
