"""A small client for the consultations API, for agents and scripts (standard library only).

::

    from hitl_console.client import Consultations

    hitl = Consultations("http://127.0.0.1:8000", api_key="hitl_live_...")
    answer = hitl.ask("Is 12.99 EUR right for this item?", options=["yes", "no"],
                      context={"url": "https://shop.example/p/1"}, timeout_seconds=3600)
    print(answer["response"])  # "yes"

``ask`` creates the consultation, then long-polls (``GET /api/v1/consultations/{id}?wait=60``)
until a reviewer answers it (returned), it times out (``ConsultationTimedOut``) or it is
cancelled (``ConsultationCancelled``). Every call that the API refuses raises ``HitlApiError``
with the HTTP status and the JSON error body (``{"error": ..., "detail": ...}``).

Long-polls are safe to repeat: a wait that the server answers 429 (``too_many_waits``), a
5xx, or a connection that drops is retried after a short pause (``Retry-After`` when the
server gives one) until the consultation is settled.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ConsultationCancelled",
    "ConsultationError",
    "ConsultationTimedOut",
    "Consultations",
    "HitlApiError",
]

MAX_WAIT = 60  # seconds the server holds one long-poll, at most
SETTLED = ("responded", "callback_sent", "callback_failed")  # answered: the response is there
_RETRY_STATUSES = (429, 502, 503, 504)
_MAX_PAUSE = 10.0  # seconds between retried long-polls, at most


class ConsultationError(Exception):
    """Base class of this module's errors."""


class HitlApiError(ConsultationError):
    """Raised when the API answers an error: ``status`` (the HTTP status), ``error`` (the
    stable code, such as ``invalid`` or ``not_found``), ``detail`` and ``body`` (the whole
    JSON error body). Nothing is retried for you, except the long-polls of ``wait``/``ask``."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.error = body.get("error") if isinstance(body, dict) else None
        self.detail = body.get("detail") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status} {self.error or 'error'}: {json.dumps(self.detail)}")


class _Ended(ConsultationError):
    def __init__(self, consultation: dict[str, Any], message: str) -> None:
        super().__init__(message)
        self.consultation = consultation


class ConsultationTimedOut(_Ended):
    """Raised by ``ask``/``wait`` when nobody answered before the consultation's deadline
    (``timeout_seconds`` after it was created). ``.consultation`` is its final state."""


class ConsultationCancelled(_Ended):
    """Raised by ``ask``/``wait`` when the consultation was cancelled. ``.consultation`` is
    its final state (the reason is in its ``history``)."""


class Consultations:
    """The consultations API with one agent's API key.

    Args:
        base_url: the console, such as ``http://127.0.0.1:8000``.
        api_key: the agent's key (``hitl_live_...``, from ``hitl apikey create``).
        timeout: seconds to wait for an answer to one HTTP request (a long-poll gets its
            ``wait`` on top).
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:  # never the key
        return f"Consultations({self.base_url!r})"

    # --- the API, one call each ------------------------------------------------------------

    def create(
        self,
        title: str,
        *,
        description: str | None = None,
        context: Any = None,
        options: list[Any] | None = None,
        response_schema: dict[str, Any] | None = None,
        callback_url: str | None = None,
        timeout_seconds: int | None = None,
        priority: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Ask (``POST /api/v1/consultations``): the new consultation, ``pending``. Fields left
        None take the server's defaults (a 24-hour timeout, priority 0)."""
        body = {"title": title, "description": description, "context": context, "options": options,
                "response_schema": response_schema, "callback_url": callback_url,
                "timeout_seconds": timeout_seconds, "priority": priority, "metadata": metadata}
        return self._request("POST", "/api/v1/consultations", {k: v for k, v in body.items() if v is not None})

    def get(self, consultation_id: int, wait: int | None = None) -> dict[str, Any]:
        """One consultation with its ``history``. With ``wait`` (1 to 60 s), the server holds the
        request until the consultation is no longer pending, or ``wait`` seconds have passed."""
        path = f"/api/v1/consultations/{int(consultation_id)}"
        if wait:
            return self._request("GET", f"{path}?wait={int(wait)}", timeout=self.timeout + wait)
        return self._request("GET", path)

    def cancel(self, consultation_id: int, reason: str | None = None) -> dict[str, Any]:
        """Withdraw a pending consultation; HitlApiError 409 (``closed``) if it is not pending."""
        return self._request("POST", f"/api/v1/consultations/{int(consultation_id)}/cancel",
                             {"reason": reason} if reason else None)

    def list(
        self,
        *,
        state: str | None = None,
        min_priority: int | None = None,
        order: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of this agent's consultations: ``{"items": [...], "next_cursor": ...}``.
        ``order`` is ``newest`` (the default) or ``priority``; pass ``next_cursor`` back as
        ``cursor`` for the next page (or use ``iter``)."""
        query = {"state": state, "min_priority": min_priority, "order": order, "limit": limit, "cursor": cursor}
        params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        return self._request("GET", "/api/v1/consultations" + (f"?{params}" if params else ""))

    def iter(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every consultation ``list`` would give, page after page."""
        cursor = None
        while True:
            page = self.list(**filters, cursor=cursor)
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    # --- waiting ----------------------------------------------------------------------------

    def wait(self, consultation_id: int, timeout: float | None = None) -> dict[str, Any]:
        """Block until the consultation is answered and return it; raise ConsultationTimedOut
        or ConsultationCancelled if it ends otherwise. ``timeout`` (seconds) bounds the wait
        here: past it, TimeoutError, and the consultation stays pending. By default this waits
        as long as the consultation can be answered."""
        give_up = None if timeout is None else time.monotonic() + timeout
        pause = 0.5
        while True:
            wait = MAX_WAIT
            if give_up is not None:
                left = give_up - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"consultation {consultation_id} still pending after {timeout} s")
                wait = max(1, min(MAX_WAIT, int(left)))
            try:
                data = self.get(consultation_id, wait=wait)
                pause = 0.5
            except HitlApiError as exc:
                if exc.status not in _RETRY_STATUSES:
                    raise
                pause = _retry_after(exc) or min(_MAX_PAUSE, pause * 2)
                time.sleep(pause)
                continue
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pause = min(_MAX_PAUSE, pause * 2)  # the console restarting: try again
                time.sleep(pause)
                continue
            if data["state"] in SETTLED:
                return data
            if data["state"] == "timed_out":
                raise ConsultationTimedOut(data, f"consultation {consultation_id} timed out at "
                                                 f"{data['deadline_at']} without an answer")
            if data["state"] == "cancelled":
                raise ConsultationCancelled(data, f"consultation {consultation_id} was cancelled")

    def ask(self, title: str, *, timeout_seconds: int | None = None, **fields: Any) -> dict[str, Any]:
        """Create a consultation (``fields`` as ``create``), then block until it is answered and
        return it (the answer is its ``response``). Raises ConsultationTimedOut when nobody
        answered within ``timeout_seconds``, ConsultationCancelled if it was cancelled, and
        HitlApiError for a refused request. Interrupted (Ctrl-C), it cancels the consultation
        first, so no reviewer answers a question nobody waits for."""
        data = self.create(title, timeout_seconds=timeout_seconds, **fields)
        try:
            return self.wait(data["id"])
        except KeyboardInterrupt:
            try:
                self.cancel(data["id"], reason="the agent stopped waiting")
            except (ConsultationError, OSError):
                pass
            raise

    # --- HTTP ---------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, *, timeout: float | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json",
                   "User-Agent": "hitl-console-client/1"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read()
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    parsed = {"error": None, "detail": raw.decode("utf-8", "replace")[:1000]}
                raise HitlApiError(exc.code, parsed, dict(exc.headers)) from None
        return json.loads(raw) if raw else None


def _retry_after(exc: HitlApiError) -> float | None:
    value = {k.lower(): v for k, v in exc.headers.items()}.get("retry-after")
    try:
        return min(_MAX_PAUSE * 6, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None
