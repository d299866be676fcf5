"""Channel sends (hitl_console/notify/channels.py): HITL_NOTIFY_TIMEOUT caps Apprise's own
socket timeouts, so an attempt cannot outlast its claim on the message by the plugin's 15 s."""

from __future__ import annotations

import socket

import pytest

from hitl_console.notify import channels


@pytest.mark.parametrize(("url", "timeout", "expected"), [
    ("mailto://user:pass@mail.example.com", 5.0, (5.0, 4.0)),  # email: 15 s to connect, capped
    ("mailto://user:pass@mail.example.com", 30.0, (15.0, 4.0)),  # a longer claim changes nothing
    ("json://hooks.example.com/in", 2.0, (2.0, 2.0)),
    ("json://hooks.example.com/in?cto=20&rto=25", 10.0, (10.0, 10.0)),  # the URL's own, capped too
    ("json://hooks.example.com/in?cto=1&rto=2", 10.0, (1.0, 2.0)),
])
def test_the_plugins_socket_timeouts_are_capped(url, timeout, expected):
    plugin = channels._plugin(url)
    channels.cap_timeouts(plugin, timeout)
    assert (plugin.socket_connect_timeout, plugin.socket_read_timeout) == expected
    assert plugin.request_timeout == expected  # what the HTTP plugins hand to requests


def test_a_mail_server_that_never_answers_is_a_failed_attempt_naming_the_timeout():
    with socket.socket() as hung:  # accepts the connection (the backlog) and never says hello
        hung.bind(("127.0.0.1", 0))
        hung.listen(1)
        port = hung.getsockname()[1]
        result = channels.send(f"mailto://user:Sup3rS3cret@127.0.0.1:{port}?from=hitl@example.org&to=ops@example.org&mode=insecure",
                               title="t", body="b", timeout=0.5)
    assert not result.ok
    assert "timed out" in result.error and "Sup3rS3cret" not in result.error
