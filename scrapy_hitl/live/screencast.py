"""One held page, live: its screencast out to Redis, a reviewer's input back into it.

Frames come from CDP ``Page.startScreencast`` (JPEG). Each is acknowledged at once
(``Page.screencastFrameAck``: Chromium sends the next frame only after the ack) and queued;
one task publishes the newest queued frame, so a slow Redis drops stale frames instead of
building a backlog. Input messages are read from Redis by one task and dispatched in order
with CDP ``Input.*``. Coordinates arrive in the page's CSS pixels: the console scales the
reviewer's clicks from the size it shows the frame at to the viewport size each frame carries.

Everything here runs on the reactor's asyncio loop and never blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from scrapy_hitl.live import relay

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import redis.asyncio

logger = logging.getLogger(__name__)

# CDP modifier bits, as the console sends them
MODIFIERS = {"Alt": 1, "Control": 2, "Meta": 4, "Shift": 8}
# Keys that are not text: (windowsVirtualKeyCode, text sent with keyDown or "")
SPECIAL_KEYS = {
    "Enter": (13, "\r"), "Backspace": (8, ""), "Tab": (9, ""), "Escape": (27, ""), "Delete": (46, ""),
    "ArrowLeft": (37, ""), "ArrowUp": (38, ""), "ArrowRight": (39, ""), "ArrowDown": (40, ""),
    "Home": (36, ""), "End": (35, ""), "PageUp": (33, ""), "PageDown": (34, ""), "Insert": (45, ""),
    "Shift": (16, ""), "Control": (17, ""), "Alt": (18, ""), "Meta": (91, ""), "CapsLock": (20, ""),
}  # fmt: skip
MOUSE_TYPES = {"down": "mousePressed", "up": "mouseReleased", "move": "mouseMoved"}
BUTTONS = {"left": 1, "right": 2, "middle": 4, "none": 0}

MAX_TEXT = 10_000  # characters of one paste
INPUT_BLOCK_MS = 500  # XREAD BLOCK for input: input is read at once, this only bounds stopping


# A navigation in flight makes Playwright refuse to read the page ("Unable to retrieve content
# because the page is navigating") or lose the script context ("Execution context was destroyed").
_NAVIGATING = ("is navigating", "Execution context was destroyed")


async def read_settled(page: Any, *, timeout: float = 10.0) -> tuple[str, str]:
    """The page's HTML and URL once a navigation in flight has settled.

    A reviewer presses Continue as the solved page loads: the held page is still navigating
    then, and reading it fails. Retry while that is the failure, for up to ``timeout``
    seconds; any other error is raised at once.
    """

    async def read() -> tuple[str, str]:
        return await page.content(), page.url

    return await _settled(page, read, timeout)


async def evaluate_settled(page: Any, expression: str, *, timeout: float = 10.0) -> Any:
    """``page.evaluate(expression)``, retried as :func:`read_settled` is (a solved page that
    redirects once more destroys the script context under it)."""
    return await _settled(page, lambda: page.evaluate(expression), timeout)


async def _settled(page: Any, call: Callable[[], Awaitable[Any]], timeout: float) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await call()
        except Exception as exc:
            if not any(marker in str(exc) for marker in _NAVIGATING) or loop.time() >= deadline:
                raise
        with contextlib.suppress(Exception):  # the new document, or at most a short wait
            await page.wait_for_load_state("domcontentloaded", timeout=1000)
        await asyncio.sleep(0.05)


def _num(value: Any, default: float = 0.0, low: float = -1e6, high: float = 1e6) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return min(high, max(low, number)) if number == number else default  # NaN -> default


def key_event(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The ``Input.dispatchKeyEvent`` parameters for a console key message, or None."""
    key = str(msg.get("key") or "")
    if not key or len(key) > 20:
        return None
    modifiers = int(_num(msg.get("modifiers"), 0, 0, 15))
    down = msg.get("type") != "up"
    params: dict[str, Any] = {"key": key, "code": str(msg.get("code") or "")[:30], "modifiers": modifiers}
    if key in SPECIAL_KEYS:
        vk, text = SPECIAL_KEYS[key]
    elif len(key) == 1:
        vk = ord(key.upper()) if key.isascii() and key.isalnum() else (32 if key == " " else 0)
        text = key if not modifiers & (MODIFIERS["Control"] | MODIFIERS["Meta"]) else ""
    else:
        return None
    params["windowsVirtualKeyCode"] = vk
    if not down:
        params["type"] = "keyUp"
    elif text:
        params.update(type="keyDown", text=text, unmodifiedText=text)
    else:
        params["type"] = "rawKeyDown"
    return params


def mouse_event(msg: dict[str, Any], width: float, height: float) -> dict[str, Any] | None:
    """The ``Input.dispatchMouseEvent`` parameters for a mouse or wheel message, or None."""
    x = _num(msg.get("x"), 0, 0, max(0.0, width - 1))
    y = _num(msg.get("y"), 0, 0, max(0.0, height - 1))
    modifiers = int(_num(msg.get("modifiers"), 0, 0, 15))
    if msg.get("op") == "wheel":
        return {"type": "mouseWheel", "x": x, "y": y, "deltaX": _num(msg.get("dx")), "deltaY": _num(msg.get("dy")),
                "modifiers": modifiers}
    kind = MOUSE_TYPES.get(str(msg.get("type")))
    if kind is None:
        return None
    button = str(msg.get("button") or "none")
    if button not in BUTTONS:
        button = "none"
    params = {"type": kind, "x": x, "y": y, "modifiers": modifiers, "button": button,
              "buttons": int(_num(msg.get("buttons"), BUTTONS[button], 0, 31))}
    if kind != "mouseMoved":
        params["clickCount"] = int(_num(msg.get("clicks"), 1, 1, 3))
    return params


class LivePage:
    """Stream one Playwright page to Redis and play a reviewer's input into it.

    ``on_command(msg)`` is awaited for messages that are not input (``continue``).
    """

    def __init__(self, page: Any, client: redis.asyncio.Redis, intervention_id: int, *,
                 quality: int, on_command: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.page = page
        self.client = client
        self.intervention_id = intervention_id
        self.quality = quality
        self.on_command = on_command
        viewport = page.viewport_size or {"width": 1280, "height": 720}
        self.width, self.height = float(viewport["width"]), float(viewport["height"])
        self.frames = 0
        self.inputs = 0
        self._cdp: Any = None
        self._latest: dict[str, Any] | None = None
        self._frame_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    async def start(self) -> None:
        after = await relay.last_input_id(self.client, self.intervention_id)
        self._cdp = await self.page.context.new_cdp_session(self.page)
        self._cdp.on("Page.screencastFrame", self._on_frame)
        self._tasks = [asyncio.ensure_future(self._publish()), asyncio.ensure_future(self._input(after))]
        await self._cdp.send("Page.startScreencast", {
            "format": "jpeg", "quality": self.quality, "everyNthFrame": 1,
            "maxWidth": int(self.width), "maxHeight": int(self.height),
        })

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        publisher, reader = self._tasks or (None, None)
        if publisher is not None:
            publisher.cancel()
            with contextlib.suppress(BaseException):
                await publisher
        if reader is not None and reader is not asyncio.current_task():
            # Not cancelled: redis.asyncio may never finish cancelling a blocked XREAD. The
            # reader sees the flag when its short block ends.
            await asyncio.wait([reader], timeout=INPUT_BLOCK_MS / 1000 * 4)
        if self._cdp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._cdp.send("Page.stopScreencast"), 5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._cdp.detach(), 5)

    # --- frames out -------------------------------------------------------------------------
    def _on_frame(self, params: dict[str, Any]) -> None:
        if self._stopped:
            return
        # Ack first: Chromium holds the next frame until this one is acknowledged.
        asyncio.ensure_future(self._ack(params.get("sessionId")))
        meta = params.get("metadata") or {}
        self.width = float(meta.get("deviceWidth") or self.width)
        self.height = float(meta.get("deviceHeight") or self.height)
        self.frames += 1
        self._latest = {"data": params.get("data") or "", "width": self.width, "height": self.height,
                        "ts": float(meta.get("timestamp") or time.time()), "seq": self.frames}
        self._frame_ready.set()

    async def _ack(self, session_id: Any) -> None:
        with contextlib.suppress(Exception):
            await self._cdp.send("Page.screencastFrameAck", {"sessionId": session_id})

    async def _publish(self) -> None:
        while True:
            await self._frame_ready.wait()
            self._frame_ready.clear()
            frame, self._latest = self._latest, None
            if frame is None:
                continue
            try:
                await relay.publish_frame(self.client, self.intervention_id, **frame)
            except Exception as exc:  # Redis away a moment: the next frame tries again
                logger.warning("Could not publish a live-view frame: %s", exc)
                await asyncio.sleep(0.5)

    # --- input in -----------------------------------------------------------------------------
    async def _input(self, after: str) -> None:
        while not self._stopped:
            try:
                batch = await relay.read_input(self.client, self.intervention_id, after, INPUT_BLOCK_MS)
            except Exception as exc:
                logger.warning("Could not read live-view input: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for entry_id, msg in batch:
                after = entry_id
                if self._stopped:
                    return
                try:
                    await self.dispatch(msg)
                except Exception as exc:  # a page navigating away mid-event: drop that event
                    logger.debug("Live-view input %r failed: %s", msg.get("op"), exc)

    async def dispatch(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op in ("mouse", "wheel"):
            params = mouse_event(msg, self.width, self.height)
            if params is not None:
                await self._cdp.send("Input.dispatchMouseEvent", params)
        elif op == "key":
            params = key_event(msg)
            if params is not None:
                await self._cdp.send("Input.dispatchKeyEvent", params)
        elif op == "text":
            text = str(msg.get("text") or "")[:MAX_TEXT]
            if text:
                await self._cdp.send("Input.insertText", {"text": text})
        else:
            await self.on_command(msg)
            return
        self.inputs += 1
