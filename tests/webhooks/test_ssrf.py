"""The SSRF guard: the corpus of internal targets is refused, in every spelling; a public host
is pinned to the addresses that were checked. (The 302 to an internal host, through a real
receiver, is in test_delivery.py.)"""

from __future__ import annotations

import re
import socket

import pytest

from hitl_console.webhooks import ssrf, transport
from tests.support.receiver import Receiver

PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"


def fake_dns(*answers: str):
    """A getaddrinfo that answers every name with ``answers``."""

    def getaddrinfo(host, port, type=0, proto=0):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in answers]

    return getaddrinfo


def no_dns(*args, **kwargs):
    raise AssertionError("an IP literal must not be resolved")


# (url, what the refusal says)
REFUSED_LITERALS = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.0.0.1:8000/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback address (inside the IPv6 address ::ffff:7f00:1)"),
    ("http://[::ffff:10.0.0.1]/hook", "private address (inside the IPv6 address ::ffff:a00:1)"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata address (inside the IPv6 address"),
    ("http://2130706433/hook", "loopback"),  # decimal 127.0.0.1
    ("http://0x7f000001/hook", "loopback"),  # hex
    ("http://017700000001/hook", "loopback"),  # octal
    ("http://0x7f.1/hook", "loopback"),  # mixed, shortened
    ("http://127.1/hook", "loopback"),
    ("http://0/hook", "unspecified"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://100.64.0.1/hook", "CGNAT"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://240.0.0.1/hook", "private"),  # reserved (Python files it under private)
    ("http://[2002:7f00:1::]/hook", "loopback address (inside"),  # 6to4 around 127.0.0.1
    ("http://[64:ff9b::a00:1]/hook", "private address (inside"),  # NAT64 around 10.0.0.1
    ("http://localhost/hook", "loopback name"),
    ("http://LOCALHOST./hook", "loopback name"),
    ("http://api.localhost/hook", "loopback name"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_LITERALS)
def test_internal_literals_are_refused_without_dns(url, reason):
    with pytest.raises(ssrf.UnsafeURL, match=re.escape(reason)):
        ssrf.resolve(url, getaddrinfo=no_dns)
    with pytest.raises(ssrf.UnsafeURL, match=re.escape(reason)):
        ssrf.check_callback_url(url, allow_private=False)  # the API's creation-time check


@pytest.mark.parametrize(("answers", "reason"), [
    (("10.1.2.3",), "resolves to 10.1.2.3, a private address"),
    (("127.0.0.53",), "resolves to 127.0.0.53, a loopback address"),
    (("169.254.169.254",), "a cloud metadata address"),
    (("::1",), "resolves to ::1, a loopback address"),
    ((PUBLIC_V4, "10.0.0.7"), "resolves to 10.0.0.7"),  # every address must pass, not just one
    ((PUBLIC_V6, "fd12::1"), "resolves to fd12::1, a private address"),
])
def test_a_name_resolving_to_an_internal_address_is_refused(answers, reason):
    with pytest.raises(ssrf.UnsafeURL, match=reason):
        ssrf.resolve("https://hooks.agent.example/x", getaddrinfo=fake_dns(*answers))
    ssrf.check_callback_url("https://hooks.agent.example/x", allow_private=False)  # no DNS at creation


def test_localhost_resolved_by_the_system_is_refused():
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.resolve("http://localhost:9/x")


@pytest.mark.parametrize(("url", "reason"), [
    ("ftp://example.com/x", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("gopher://example.com/", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("//example.com/x", "only http and https"),
    ("http://user:pw@example.com/x", "credentials"),
    ("http://127.0.0.1@example.com/x", "credentials"),
    ("http:///x", "no host"),
    ("http://example.com:99999/x", "port"),
    ("http://[fe80::1%25eth0]/x", "zone"),
    ("http://example.com/a b", "not a URL"),
])
def test_schemes_credentials_and_malformed_urls_are_refused_even_when_private_is_allowed(url, reason):
    with pytest.raises(ssrf.UnsafeURL, match=reason):
        ssrf.resolve(url, allow_private=True, getaddrinfo=fake_dns(PUBLIC_V4))
    with pytest.raises(ssrf.UnsafeURL, match=reason):
        ssrf.check_callback_url(url, allow_private=True)


def test_a_public_host_is_pinned_to_its_checked_addresses():
    target = ssrf.resolve("https://hooks.agent.example:8443/cb?x=1", getaddrinfo=fake_dns(PUBLIC_V4, PUBLIC_V6))
    assert target == ssrf.Target(scheme="https", host="hooks.agent.example", port=8443, path="/cb?x=1",
                                 addresses=(PUBLIC_V4, PUBLIC_V6))
    assert ssrf.check_callback_url("https://hooks.agent.example/cb") == "https://hooks.agent.example/cb"


def test_allow_private_lifts_the_address_check_only():
    target = ssrf.resolve("http://127.0.0.1:8080/hook", allow_private=True)
    assert target.addresses == ("127.0.0.1",)
    assert ssrf.check_callback_url("http://10.0.0.1/x", allow_private=True)


def test_the_allow_private_default_is_the_environment(monkeypatch):
    monkeypatch.setenv("HITL_WEBHOOK_ALLOW_PRIVATE", "0")
    with pytest.raises(ssrf.UnsafeURL):
        ssrf.check_callback_url("http://127.0.0.1/x")
    monkeypatch.setenv("HITL_WEBHOOK_ALLOW_PRIVATE", "1")
    assert ssrf.check_callback_url("http://127.0.0.1/x")


def test_the_connection_goes_to_the_checked_address_with_the_urls_host():
    """The name resolves (here: by a fake resolver) to 127.0.0.1: the request goes there, and
    still says ``Host: hooks.agent.example:<port>``. The system resolver is never asked."""
    rec = Receiver().start()
    try:
        port = rec.server.server_address[1]

        def resolve(url, *, allow_private):
            return ssrf.resolve(url, allow_private=True, getaddrinfo=fake_dns("127.0.0.1"))

        result = transport.post(f"http://hooks.agent.example:{port}/cb?a=1", b"{}", {"X-Test": "1"},
                                timeout=5, resolve=resolve)
        assert (result.status_code, result.error) == (200, None)
        (request,) = rec.requests
        assert request["headers"]["Host"] == f"hooks.agent.example:{port}"
        assert request["path"] == "/cb?a=1"
    finally:
        rec.stop()


def test_a_refused_url_is_a_permanent_failure_and_nothing_is_sent():
    result = transport.post("http://169.254.169.254/latest/meta-data/", b"{}", {}, timeout=5)
    assert result.status_code is None and result.permanent
    assert result.error == "refused: the callback host 169.254.169.254 is a cloud metadata address"


def test_an_unresolvable_name_is_retried_not_refused():
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    def resolve(url, *, allow_private):
        return ssrf.resolve(url, allow_private=allow_private, getaddrinfo=nxdomain)

    result = transport.post("https://gone.agent.example/cb", b"{}", {}, timeout=5, resolve=resolve)
    assert result.status_code is None and not result.permanent
    assert "does not resolve" in result.error


def _tls_server(tmp_path, name: str):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for ``name``; its CA context."""
    import datetime
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen["host"] = self.headers["Host"]
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_path, key_path)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    return server, client_ctx, seen


def test_https_is_pinned_and_the_certificate_checked_against_the_urls_host(tmp_path):
    server, context, seen = _tls_server(tmp_path, "hooks.agent.example")
    try:
        port = server.server_address[1]

        def resolve(url, *, allow_private):
            return ssrf.resolve(url, allow_private=True, getaddrinfo=fake_dns("127.0.0.1"))

        ok = transport.post(f"https://hooks.agent.example:{port}/cb", b"{}", {}, timeout=5, resolve=resolve,
                            ssl_context=context)
        assert (ok.status_code, ok.error) == (200, None)
        assert seen["host"] == f"hooks.agent.example:{port}"
        # Another name pinned to the same address: the certificate does not match, nothing is sent.
        wrong = transport.post(f"https://other.agent.example:{port}/cb", b"{}", {}, timeout=5, resolve=resolve,
                               ssl_context=context)
        assert wrong.status_code is None and wrong.error.startswith("TLS error")
    finally:
        server.shutdown()
        server.server_close()
