"""A plain Server-Sent Events client over http.client, for the event-stream tests and bench/sse.py."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    def json(self) -> dict[str, Any]:
        return json.loads(self.data)


class SseClient:
    """``GET`` a stream and read it message by message (comment-only blocks included, as
    messages with no data: the keep-alives)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                          headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = dict(self.response.headers)
        self.body: Any = None
        if self.status != 200:
            self.body = json.loads(self.response.read() or b"null")
            self.close()

    def message(self) -> Message:
        """The next block up to a blank line; raises EOFError when the server ends the stream."""
        msg, data = Message(), []
        while True:
            raw = self.response.readline()
            if not raw:
                raise EOFError("the server ended the stream")
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data or msg.comments or msg.retry is not None or msg.id is not None:
                    msg.data = "\n".join(data)
                    return msg
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                msg.comments.append(value)
            elif name == "data":
                data.append(value)
            elif name == "id":
                msg.id = value
            elif name == "retry":
                msg.retry = int(value)

    def events(self, n: int) -> list[Message]:
        """The next ``n`` messages that carry data (keep-alives and the preamble skipped)."""
        out: list[Message] = []
        while len(out) < n:
            msg = self.message()
            if msg.data:
                out.append(msg)
        return out

    def close(self) -> None:
        self.conn.close()
