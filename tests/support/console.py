"""The console as a real server for tests: ``hitl console`` (gunicorn, gthread) on a free
port, logins over HTTP, websocket clients, and the forged tokens the auth tests share."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from typing import Any

import jwt
import pytest
from simple_websocket import Client

from hitl_console.auth import users as _users
from hitl_console.auth.tokens import signing_key
from hitl_console.server import ConsoleProcess, free_port

PASSWORD = "correct horse battery"

_HASHES: dict[str, str] = {}  # password -> its fixture hash
# scrypt with a 32x smaller work factor than werkzeug's default (N=2^15): each login of a
# fixture user checks its password in ~3 ms instead of ~0.1 s of CPU. The suite logs in
# over a thousand times; no test here is about the work factor.
FIXTURE_HASH_METHOD = "scrypt:1024:8:1"


def create_fixture_user(db: Any, email: str, password: str = PASSWORD, role: str = "reviewer") -> dict[str, Any]:
    """``create_user`` for a fixture's users: the same, except that the password is hashed
    with scrypt at FIXTURE_HASH_METHOD's cost, once per worker session. Logins still check
    the password against a real scrypt hash, by the product's own code (which reads the cost
    from the hash); tests of creating users, and of the stored hash, use the API."""
    real = _users.generate_password_hash

    def reuse(pw: str, *args: Any, **kwargs: Any) -> str:
        if pw not in _HASHES:
            _HASHES[pw] = real(pw, method=FIXTURE_HASH_METHOD)
        return _HASHES[pw]

    _users.generate_password_hash = reuse
    try:
        return _users.create_user(db, email, password, role)
    finally:
        _users.generate_password_hash = real


def forge_token(key: bytes, *, claims: dict[str, Any] | None = None, alg: str = "HS256") -> str:
    """A token for user 1 signed with ``key``; ``claims`` override the defaults."""
    now = int(time.time())
    body = {"sub": "1", "role": "admin", "iat": now, "exp": now + 600, "jti": "x", "csrf": "c"}
    body.update(claims or {})
    return jwt.encode(body, key, algorithm=alg)


# Tokens every endpoint must answer 401: each builder takes the console's real signing key.
BAD_TOKENS = [
    pytest.param(lambda key: jwt.encode({"sub": "1", "role": "admin", "iat": 0, "exp": 2**31, "jti": "x"},
                                        None, algorithm="none"), id="alg-none"),
    pytest.param(lambda key: forge_token(b"k" * 32), id="wrong-key"),
    pytest.param(lambda key: forge_token(key, claims={"exp": int(time.time()) - 10}), id="expired"),
    pytest.param(lambda key: forge_token(key, alg="HS512"), id="other-algorithm"),
    pytest.param(lambda key: "not.a.jwt", id="garbage"),
]


class LiveClient(Client):
    """simple_websocket's client with two fixes to its handshake (1.1.0):

    - it sends ``Host: host:port`` as browsers do (the client leaves the port out, which
      would fail every same-origin check on a non-default port);
    - it keeps the frames that arrived in the same read as the 101 answer (a replay sent
      at once): the client leaves them in wsproto's buffer until more data comes, which
      can be the server's next ping, 25 s later.
    """

    def handshake(self) -> None:
        self.host = f"{self.host}:{self.port}"
        try:
            super().handshake()
        except Exception:
            self.sock.close()  # refused: do not leave the server a kept-alive connection
            raise
        self.connected = self._handle_events()

    def events(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The next ``n`` events; ``timeout`` (per event) only guards against a hang."""
        out = []
        for _ in range(n):
            raw = self.receive(timeout=timeout)
            assert raw is not None, f"no event within {timeout} s after {len(out)} of {n}"
            out.append(json.loads(raw))
        return out


class RunningConsole:
    """``hitl console`` started on the environment of one test.

    Open streams re-check their login every second, not every 5 (HITL_STREAM_RECHECK): a
    test of a logout, or of a job's log stream ending, waits that long. A test's own value
    wins."""

    def __init__(self, env: dict[str, str], log_path: str, *, threads: int | None = None) -> None:
        env = {"HITL_STREAM_RECHECK": "1", **env}
        self.env = env
        self.key = signing_key(env["HITL_SECRET_KEY"])
        self.process = ConsoleProcess(port=free_port(0), env=env, log_path=log_path, threads=threads)
        self.clients: list[LiveClient] = []

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
        """One HTTP request: (status, response headers, parsed JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")

    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        status, _headers, body = self.request("POST", "/api/v1/auth/login", {"email": email, "password": password})
        assert status == 200, body
        return body

    def ws(self, path: str = "/ws/events", *, token: str | None = None, cookie: str | None = None,
           origin: str | None = None) -> LiveClient:
        """Open a websocket with a Bearer ``token`` or the ``hitl_token`` ``cookie``; raises
        simple_websocket.ConnectionError(status) when the handshake is refused."""
        headers = []
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
        if cookie is not None:
            headers.append(("Cookie", f"hitl_token={cookie}"))
        if origin is not None:
            headers.append(("Origin", origin))
        client = LiveClient.connect(self.ws_url + path, headers=headers)
        self.clients.append(client)
        return client

    def start(self) -> RunningConsole:
        self.process.start(timeout=60)  # imports alone take seconds on a busy 2-core machine
        return self

    def stop(self) -> None:
        for client in self.clients:
            if client.connected:
                client.close()
        self.process.stop()

    def kill(self) -> None:
        """End the console at once: SIGKILL to gunicorn's process group (arbiter and worker).

        For fixture teardowns, where the test is over and nothing depends on the way the
        console ends; ``stop()`` (gunicorn's own quick shutdown) takes 1-2 s.
        """
        for client in self.clients:
            if client.connected:
                client.close()
        proc = self.process.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # started with start_new_session=True
            proc.wait(timeout=10)
