"""Auth hardening (issue 14): the login limiter counts before the password check, a lockout
slows the attacker without locking out the owner, a password change or a disable revokes
existing tokens, and tokens have a maximum age whatever their ``exp``."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
from werkzeug.serving import make_server

from hitl_console.auth import views
from hitl_console.auth.ratelimit import LoginLimiter, client_network
from hitl_console.config import ConsoleConfig
from tests.support.console import PASSWORD, forge_token

WRONG = "not the password"
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def served(app, users):
    """The app (login limit 5 per 60 s) on a real threaded HTTP server in this process, so
    concurrent requests race for real and the password checks can be counted."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()


def post_login(server, email: str, password: str, *, source: str = "127.0.0.1") -> tuple[int, dict]:
    """POST the login from ``source`` (any 127/8 address is this machine's loopback)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=60,
                                      source_address=(source, 0))
    try:
        conn.request("POST", LOGIN, body=json.dumps({"email": email, "password": password}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def password_checks(monkeypatch):
    """Counts the login view's password checks (the real check runs each time)."""
    real, lock, calls = views.check_password, threading.Lock(), []

    def counted(*args, **kwargs):
        with lock:
            calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "check_password", counted)
    return calls


def test_sixty_concurrent_wrong_logins_run_five_password_checks_and_the_owner_still_gets_in(
        served, password_checks):
    barrier = threading.Barrier(60)
    statuses: list[int] = []

    def attack() -> None:
        barrier.wait()
        statuses.append(post_login(served, "admin@example.com", WRONG)[0])

    threads = [threading.Thread(target=attack) for _ in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(password_checks) == 5
    assert sorted(statuses) == [401] * 5 + [429] * 55

    # The attacker's address is locked out, even with the right password ...
    status, body = post_login(served, "admin@example.com", PASSWORD)
    assert status == 429 and body["error"] == "too_many_attempts"
    # ... and the owner, from another address, logs in during the attack.
    status, body = post_login(served, "admin@example.com", PASSWORD, source="127.0.0.2")
    assert status == 200 and body["user"]["email"] == "admin@example.com"
    assert len(password_checks) == 6


def test_successful_logins_do_not_count_towards_the_limit(client, users):
    for _ in range(7):  # more than the 5 failures allowed per address
        response = client.post(LOGIN, json={"email": "reviewer@example.com", "password": PASSWORD})
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("proxy_hops", "attacker", "owner", "owner_status"),
    [
        pytest.param(1, "10.0.0.1", "10.0.0.2", 200, id="trusted-proxy-other-client-gets-in"),
        pytest.param(0, "10.0.0.1", "10.0.0.2", 429, id="no-proxy-header-ignored"),
    ],
)
def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(hitl_env, users, proxy_hops, attacker,
                                                                     owner, owner_status):
    from hitl_console.app import create_app

    app = create_app({"login_attempts": 5, "login_window": 60, "proxy_hops": proxy_hops})
    client = app.test_client()
    try:
        for _ in range(5):
            r = client.post(LOGIN, json={"email": "admin@example.com", "password": WRONG},
                            headers={"X-Forwarded-For": attacker})
            assert r.status_code == 401
        locked = client.post(LOGIN, json={"email": "admin@example.com", "password": PASSWORD},
                             headers={"X-Forwarded-For": attacker})
        assert locked.status_code == 429
        r = client.post(LOGIN, json={"email": "admin@example.com", "password": PASSWORD},
                        headers={"X-Forwarded-For": owner})
        assert r.status_code == owner_status
    finally:
        app.extensions["hitl"].close()


# (address, wait expected) in order, against one account, with attempts=2 and window=60:
# the first 2 failures are free; from then on an address that failed waits 1, 2, 4 ... s
# before its next try on the account, while one that did not fail is not delayed.
DISTRIBUTED = [
    ("10.0.0.1", 0),  # failure 1
    ("10.0.0.2", 0),  # failure 2
    ("10.0.0.3", 0),  # failure 3: 10.0.0.3 now waits 1 s
    ("10.0.0.4", 0),  # failure 4: 10.0.0.4 waits 2 s
    ("10.0.0.5", 0),  # failure 5: 4 s
    ("10.0.0.6", 0),  # failure 6: 8 s
    ("10.0.0.6", "wait"),  # a second try from it, at once: refused, and not counted
    ("10.0.0.1", 0),  # failure 7 (its first failure was free): 16 s
    ("10.0.0.1", "wait"),
    ("10.0.0.7", 0),  # an address that never failed on the account: checked at once
]


def test_an_account_under_a_distributed_attack_delays_each_failing_address(hitl):
    limiter = LoginLimiter(hitl.redis, attempts=2, window=60)
    for n, (address, expected) in enumerate(DISTRIBUTED):
        wait = limiter.acquire("Victim@example.com ", address)
        if expected == "wait":
            assert wait >= 1, (n, address)
        else:
            assert wait == 0, (n, address)
    # 10.0.0.6's delay was set at its 6th failure: 2 ** (6 - 2 - 1) = 8 s at most
    assert 1 <= limiter.acquire("victim@example.com", "10.0.0.6") <= 8
    # the owner's success from 10.0.0.7 lifts its own delay and gives its reservations back
    limiter.succeeded("victim@example.com", "10.0.0.7")
    assert limiter.acquire("victim@example.com", "10.0.0.7") == 0


def test_one_address_is_limited_across_accounts(hitl):
    limiter = LoginLimiter(hitl.redis, attempts=3, window=60)
    assert [limiter.acquire(f"u{n}@example.com", "10.9.9.9") for n in range(3)] == [0, 0, 0]
    wait = limiter.acquire("u9@example.com", "10.9.9.9")
    assert 1 <= wait <= 60
    assert limiter.acquire("u9@example.com", "10.9.9.8") == 0


@pytest.mark.parametrize(
    ("address", "client"),
    [
        pytest.param("192.0.2.7", "192.0.2.7", id="ipv4"),
        pytest.param("::ffff:192.0.2.7", "192.0.2.7", id="ipv4-mapped-is-the-ipv4-address"),
        pytest.param("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64", id="ipv6-its-64"),
        pytest.param("2001:DB8:1:2::1", "2001:db8:1:2::/64", id="ipv6-same-64-any-spelling"),
        pytest.param("2001:db8:1:3::1", "2001:db8:1:3::/64", id="ipv6-next-64"),
        pytest.param("fe80::1%eth0", "fe80::/64", id="zone-dropped"),
        pytest.param("unknown", "unknown", id="not-an-address"),
    ],
)
def test_the_limiter_counts_an_ipv6_client_by_its_64(address, client):
    assert client_network(address) == client


@pytest.fixture
def serve(hitl_env, hitl_schema):
    """Serves an app with the given console settings on a real threaded server."""
    from hitl_console.app import create_app

    started = []

    def start(*, dual_stack: bool = False, **config):
        app = create_app(config)
        if dual_stack:  # one IPv6 socket that IPv4 clients reach too, as ::ffff:a.b.c.d
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(("::", 0))
            sock.listen(128)
            server = make_server("::", sock.getsockname()[1], app, threaded=True, fd=sock.fileno())
            sock.close()  # the server holds its own duplicate of the descriptor
        else:
            server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started.append((app, server, thread))
        return server

    yield start
    for app, server, thread in started:
        server.shutdown()
        thread.join()
        server.server_close()
        app.extensions["hitl"].close()


def attempt(server, email: str, password: str, *, source: str = "127.0.0.1", forwarded: str | None = None,
            cookie: str | None = None) -> tuple[int, dict, http.client.HTTPMessage]:
    """A login from ``source``, optionally through a proxy (X-Forwarded-For) and with a Cookie."""
    headers = {"Content-Type": "application/json"}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    if cookie:
        headers["Cookie"] = cookie
    host = "::1" if ":" in source else "127.0.0.1"
    port = server.socket.getsockname()[1]
    conn = http.client.HTTPConnection(host, port, timeout=60, source_address=(source, 0))
    try:
        conn.request("POST", LOGIN, body=json.dumps({"email": email, "password": password}), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read()), response.headers
    finally:
        conn.close()


def test_the_addresses_of_one_ipv6_64_share_one_limit_and_a_mapped_ipv4_is_its_ipv4(serve, users):
    # Only ::1 and one global address are bound here, so the many IPv6 clients come through
    # a trusted proxy's X-Forwarded-For.
    server = serve(login_attempts=5, login_window=60, proxy_hops=1)
    for n in range(1, 6):  # five addresses of one /64: one failure each
        assert attempt(server, "admin@example.com", WRONG, forwarded=f"2001:db8:1:2::{n:x}")[0] == 401
    status, body, headers = attempt(server, "admin@example.com", PASSWORD,
                                    forwarded="2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert status == 429 and body["error"] == "too_many_attempts" and 1 <= int(headers["Retry-After"]) <= 60
    assert attempt(server, "admin@example.com", WRONG, forwarded="2001:db8:1:3::1")[0] == 401  # the next /64

    for _ in range(5):  # a dual-stack socket's IPv4 client is its IPv4 address
        assert attempt(server, "reviewer@example.com", WRONG, forwarded="::ffff:192.0.2.7")[0] == 401
    assert attempt(server, "reviewer@example.com", PASSWORD, forwarded="192.0.2.7")[0] == 429
    assert attempt(server, "reviewer@example.com", PASSWORD, forwarded="192.0.2.8")[0] == 200


def test_a_dual_stack_socket_counts_its_ipv4_clients_by_their_ipv4_address(serve, users):
    # Real sockets: 127.0.0.1 and 127.0.0.2 arrive as ::ffff:127.0.0.1 and ::ffff:127.0.0.2,
    # which as IPv6 addresses would share a /64. (No IPv6 client: a CI container may have no ::1.)
    server = serve(dual_stack=True, login_attempts=5, login_window=60)
    assert [attempt(server, "admin@example.com", WRONG)[0] for _ in range(5)] == [401] * 5
    assert attempt(server, "admin@example.com", PASSWORD)[0] == 429
    assert attempt(server, "admin@example.com", PASSWORD, source="127.0.0.2")[0] == 200


def _device_cookie(headers: http.client.HTTPMessage) -> str:
    """The ``name=value`` of the device cookie a login response sets."""
    for header in headers.get_all("Set-Cookie") or []:
        pair, _, attributes = header.partition(";")
        if pair.startswith("hitl_device_"):
            assert "Path=/api/v1/auth/login" in attributes and "HttpOnly" in attributes
            return pair
    raise AssertionError("no device cookie set")


def test_a_distributed_attack_spends_the_account_budget_and_the_owner_still_logs_in(serve, users,
                                                                                  password_checks):
    server = serve(login_attempts=5, login_window=60, login_account_attempts=4)
    owner = "admin@example.com"
    # The owner's earlier login: its address and its browser become known to the account.
    status, _, headers = attempt(server, owner, PASSWORD, source="127.0.0.2")
    assert status == 200
    cookie = _device_cookie(headers)

    # 16 machines at once, one guess each: 4 are checked, then the account's budget for
    # unknown clients is spent and every further address waits, whatever its password.
    barrier, answers = threading.Barrier(16), []

    def guess(n: int) -> None:
        barrier.wait()
        answers.append(attempt(server, owner, WRONG, source=f"127.0.1.{n}"))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(1, 17)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(status for status, _, _ in answers) == [401] * 4 + [429] * 12
    for status, body, headers in answers:
        if status == 429:
            assert body["error"] == "too_many_attempts" and 1 <= int(headers["Retry-After"]) <= 60
    assert attempt(server, owner, PASSWORD, source="127.0.1.17")[0] == 429
    name, _, value = cookie.partition("=")
    # Another device id under the same signature (its first character changed, never to itself).
    forged = f"{name}={('x' if value[0] != 'x' else 'y') + value[1:]}"
    assert attempt(server, owner, PASSWORD, source="127.0.1.18", cookie=forged)[0] == 429
    assert len(password_checks) == 1 + 4

    # The owner gets in from a new address with their browser's cookie, and from their
    # known address without it; another account is not affected.
    assert attempt(server, owner, PASSWORD, source="127.0.0.3", cookie=cookie)[0] == 200
    assert attempt(server, owner, PASSWORD, source="127.0.0.2")[0] == 200
    assert attempt(server, "reviewer@example.com", PASSWORD, source="127.0.1.19")[0] == 200


def test_a_known_64_is_exempt_and_a_device_cookie_that_keeps_failing_is_not(hitl):
    limiter = LoginLimiter(hitl.redis, attempts=2, window=60, account_attempts=2)
    email = "victim@example.com"
    assert limiter.acquire(email, "2001:db8:5:6::1") == 0
    limiter.succeeded(email, "2001:db8:5:6::1")  # the owner's network is known from now on
    assert [limiter.acquire(email, f"10.1.0.{n}") for n in (1, 2)] == [0, 0]  # the budget is spent
    assert limiter.acquire(email, "10.1.0.3") >= 1
    assert limiter.acquire(email, "2001:db8:5:6:7::9") == 0  # another address of the known /64
    # a device cookie is exempt until it has failed `attempts` times itself
    assert [limiter.acquire(email, f"10.2.0.{n}", device="stolen") for n in (1, 2)] == [0, 0]
    assert limiter.acquire(email, "10.2.0.3", device="stolen") >= 1
    assert limiter.acquire(email, "10.2.0.4", device="another") == 0


def test_a_password_change_revokes_the_tokens_issued_before_it(client, auth, users):
    old = auth.bearer("reviewer@example.com")
    admin = auth.bearer("admin@example.com")
    assert client.get("/api/v1/auth/me", headers=old).status_code == 200
    r = client.patch(f"/api/v1/users/{users['reviewer']['id']}", headers=admin,
                     json={"password": "a brand new password"})
    assert r.status_code == 200
    response = client.get("/api/v1/auth/me", headers=old)
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert "token revoked" in response.json["detail"]
    # the new password gives a token that works; the admin's own token is untouched
    new = auth.login("reviewer@example.com", "a brand new password")
    assert new.status_code == 200
    fresh = {"Authorization": f"Bearer {new.json['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=fresh).status_code == 200
    assert client.get("/api/v1/auth/me", headers=admin).status_code == 200


def test_re_enabling_an_account_does_not_revive_its_old_tokens(client, auth, users):
    old = auth.bearer("reviewer@example.com")
    admin = auth.bearer("admin@example.com")
    url = f"/api/v1/users/{users['reviewer']['id']}"
    assert client.patch(url, headers=admin, json={"active": False}).status_code == 200
    assert client.patch(url, headers=admin, json={"active": True}).status_code == 200
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401
    assert client.get("/api/v1/auth/me", headers=auth.bearer("reviewer@example.com")).status_code == 200


def test_a_role_change_keeps_the_tokens(client, auth, users):
    old = auth.bearer("reviewer@example.com")
    admin = auth.bearer("admin@example.com")
    r = client.patch(f"/api/v1/users/{users['reviewer']['id']}", headers=admin, json={"role": "admin"})
    assert r.status_code == 200
    me = client.get("/api/v1/auth/me", headers=old)
    assert me.status_code == 200 and me.json["role"] == "admin"


def _token(app, user, **claims) -> str:
    now = int(time.time())
    base = {"sub": str(user["id"]), "role": user["role"], "iat": now, "exp": now + 600, "ver": 0}
    base.update(claims)
    return forge_token(app.extensions["hitl_jwt_key"], claims={k: v for k, v in base.items() if v is not None})


@pytest.mark.parametrize(
    ("claims", "status", "detail"),
    [
        pytest.param({}, 200, None, id="fresh"),
        pytest.param({"iat": int(time.time()) - 24 * 3600 - 120}, 401, "token too old; log in again",
                     id="older-than-HITL_JWT_MAX_AGE-though-exp-is-ahead"),
        pytest.param({"ver": None}, 401, "token revoked", id="no-token-version"),
        pytest.param({"ver": 1}, 401, "token revoked", id="another-token-version"),
    ],
)
def test_token_age_and_version_are_checked_on_decode(app, client, users, claims, status, detail):
    token = _token(app, users["reviewer"], **claims)
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status
    if detail is not None:
        assert response.json["error"] == "unauthorized" and response.json["detail"].startswith(detail)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"HITL_JWT_TTL": "8h"}, "HITL_JWT_TTL must be a whole number; got '8h'.", id="not-a-number"),
        pytest.param({"HITL_JWT_MAX_AGE": "3600"}, "HITL_JWT_MAX_AGE (3600 s) is shorter than HITL_JWT_TTL",
                     id="max-age-below-ttl"),
        pytest.param({"HITL_LOGIN_ATTEMPTS": "0"}, "HITL_LOGIN_ATTEMPTS must be at least 1", id="no-attempts"),
        pytest.param({"HITL_PROXY_HOPS": "-1"}, "HITL_PROXY_HOPS must be 0 or more", id="negative-hops"),
        pytest.param({"HITL_LOGIN_ACCOUNT_ATTEMPTS": "0"}, "HITL_LOGIN_ACCOUNT_ATTEMPTS must be at least 1",
                     id="no-account-budget"),
        pytest.param({"HITL_LOGIN_ACCOUNT_WINDOW": "60"},
                     "HITL_LOGIN_ACCOUNT_WINDOW (60 s) must be longer than HITL_LOGIN_WINDOW (60 s)",
                     id="account-window-not-longer"),
        pytest.param({"HITL_LOGIN_TRUST_TTL": "0"}, "HITL_LOGIN_TRUST_TTL must be at least 1", id="no-trust"),
        pytest.param({"HITL_STREAM_RECHECK": "0"}, "HITL_STREAM_RECHECK must be at least 1", id="no-recheck"),
        pytest.param({"HITL_STREAM_RECHECK": "5s"}, "HITL_STREAM_RECHECK must be a whole number; got '5s'.",
                     id="recheck-not-a-number"),
    ],
)
def test_bad_auth_settings_name_the_setting(env, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        ConsoleConfig.from_env(env)


@pytest.mark.parametrize(
    ("env", "max_age"),
    [
        pytest.param({}, 24 * 3600, id="default"),
        pytest.param({"HITL_JWT_TTL": "172800"}, 172800, id="follows-a-longer-ttl"),
        pytest.param({"HITL_JWT_MAX_AGE": "90000"}, 90000, id="set"),
    ],
)
def test_max_age_defaults(env, max_age):
    assert ConsoleConfig.from_env(env).jwt_max_age == max_age


def test_cli_password_change_and_disable_sign_out_the_account(client, auth, users):
    from click.testing import CliRunner

    from hitl_console.cli import main

    def hitl(*args: str):
        return CliRunner().invoke(main, list(args))

    old = auth.bearer("reviewer@example.com")
    result = hitl("user", "password", "Reviewer@example.com", "--password", "another long pw")
    assert result.exit_code == 0, result.output
    assert result.output == "Changed the password of reviewer@example.com; its existing logins are signed out.\n"
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401
    current = auth.login("reviewer@example.com", "another long pw")
    assert current.status_code == 200
    current = {"Authorization": f"Bearer {current.json['access_token']}"}

    result = hitl("user", "disable", "reviewer@example.com")
    assert result.exit_code == 0 and "Disabled reviewer@example.com" in result.output
    assert client.get("/api/v1/auth/me", headers=current).status_code == 401
    assert auth.login("reviewer@example.com", "another long pw").status_code == 401
    listed = hitl("user", "list", "--json")
    assert {u["email"]: u["active"] for u in json.loads(listed.output)} == {
        "admin@example.com": True, "reviewer@example.com": False}

    result = hitl("user", "enable", "reviewer@example.com")
    assert result.exit_code == 0 and result.output == "Enabled reviewer@example.com.\n"
    assert client.get("/api/v1/auth/me", headers=current).status_code == 401  # still signed out
    assert auth.login("reviewer@example.com", "another long pw").status_code == 200

    for args, message in ((("user", "disable", "nobody@example.com"), "No console account nobody@example.com"),
                          (("user", "password", "admin@example.com", "--password", "short"), "at least 8")):
        result = hitl(*args)
        assert result.exit_code == 1 and message in result.output, result.output
    table = hitl("user", "list")
    assert table.exit_code == 0 and "reviewer@example.com" in table.output and "STATUS" in table.output


def test_a_password_change_ends_an_open_event_stream(console_server, state):
    """The websocket's periodic re-check (live.py) revokes like an API call does."""
    from simple_websocket import ConnectionClosed, ConnectionError as HandshakeRefused

    from hitl_console.auth.users import update_user
    from tests.support.console import create_fixture_user

    user = create_fixture_user(state.db, "reviewer@example.com", PASSWORD, "reviewer")
    token = console_server.login("reviewer@example.com")["access_token"]
    ws = console_server.ws(token=token)
    update_user(state.db, user["id"], password="a brand new password")
    with pytest.raises(ConnectionClosed) as closed:  # the server re-checks the token and closes
        while ws.receive(timeout=30) is not None:
            pass
    assert closed.value.reason == 1008 and closed.value.message.startswith("token revoked")
    with pytest.raises(HandshakeRefused) as refused:
        console_server.ws(token=token)
    assert refused.value.status_code == 401
