"""Signed pushes: real HTTP(S) deliveries verified by the independent `standardwebhooks` package.

The recipient is a real server on 127.0.0.1 (plain HTTP, or TLS demanding a client certificate);
casebridge's PushClient delivers to it over the network, and the recipient checks each delivery
exactly as docs/gateway.md tells a recipient to, with the reference implementation of the scheme.
"""

from __future__ import annotations

import base64
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from casebridge.errors import RetryableDeliveryError
from casebridge.routing.delivery import PushClient, read_signing_secret
from casebridge.routing.routes import ClientCertificate, PushDelivery, RetryPolicy

RETRY = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02, jitter=0)


@dataclass
class Recipient:
    """A recipient endpoint that records what it received."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    peer_subjects: list[object] = field(default_factory=list)


def _serve(context: ssl.SSLContext | None) -> Iterator[Recipient]:
    recipient = Recipient(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recipient.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            if context is not None:
                recipient.peer_subjects.append(self.connection.getpeercert()["subject"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if context is not None else "http"
    recipient.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/inbox"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recipient
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recipient() -> Iterator[Recipient]:
    yield from _serve(None)


def _secret(tmp_path: Path, name: str, byte: int) -> tuple[Path, str]:
    text = "whsec_" + base64.b64encode(bytes([byte]) * 32).decode()
    path = tmp_path / name
    path.write_text(text + "\n")
    return path, text


def _push(client: PushClient, target: PushDelivery, body: bytes = b"<Nachricht/>") -> None:
    client.push(target, body, media_type="application/xml", delivery_id="msg_d-1",
                message_id="M-1", sender="jobcenter-duisburg", retry=RETRY)


def test_a_delivery_verifies_with_either_secret_during_rotation(recipient, tmp_path) -> None:
    old_path, old = _secret(tmp_path, "old", 1)
    new_path, new = _secret(tmp_path, "new", 2)
    target = PushDelivery(url=recipient.url, signing_secret_files=[new_path, old_path])
    client = PushClient()
    try:
        _push(client, target)
    finally:
        client.close()
    (headers, body), = recipient.received
    assert headers["webhook-id"] == "msg_d-1" == headers["idempotency-key"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):  # a recipient still on the old secret, one already on the new
        Webhook(secret).verify(body, headers, json_parse=False)  # raises if not genuine
    _other, stranger = _secret(tmp_path, "stranger", 3)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(body, headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):  # a body altered on the way
        Webhook(new).verify(body + b" ", headers, json_parse=False)


def test_a_replay_outside_the_tolerance_window_is_refused(recipient, tmp_path) -> None:
    path, secret = _secret(tmp_path, "key", 7)
    target = PushDelivery(url=recipient.url, signing_secret_files=[path])
    # A delivery sent ten minutes ago, captured and sent again now by somebody else.
    client = PushClient(clock=lambda: time.time() - 600)
    try:
        _push(client, target)
    finally:
        client.close()
    (headers, body), = recipient.received
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(body, headers, json_parse=False)


def test_unsigned_without_secrets_and_never_unsigned_with_a_broken_one(recipient, tmp_path):
    client = PushClient(sleep=lambda _s: None)
    try:
        _push(client, PushDelivery(url=recipient.url))
        assert "webhook-signature" not in recipient.received[0][0]
        broken = tmp_path / "broken"
        broken.write_text("whsec_not base64!")
        with pytest.raises(RetryableDeliveryError, match="broken: not whsec_"):
            _push(client, PushDelivery(url=recipient.url, signing_secret_files=[broken]))
        assert len(recipient.received) == 1  # nothing sent unsigned
    finally:
        client.close()


def test_secret_files_are_checked(tmp_path) -> None:
    from casebridge.errors import ConfigError

    short = tmp_path / "short"
    short.write_text("whsec_" + base64.b64encode(b"x" * 8).decode())
    with pytest.raises(ConfigError, match="24 to 64 bytes"):
        read_signing_secret(short)
    with pytest.raises(ConfigError, match="cannot read"):
        read_signing_secret(tmp_path / "missing")
    path, _ = _secret(tmp_path, "ok", 9)
    assert read_signing_secret(path) == bytes([9]) * 32


def test_mtls_presents_the_configured_client_certificate(tmp_path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    name = "casebridge.example.invalid"
    client_cert = ca.issue_cert(name, common_name=name)
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    client_cert.cert_chain_pems[0].write_to_path(str(cert_file))
    client_cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    path, secret = _secret(tmp_path, "key", 5)
    for recipient in _serve(server_context):
        client = PushClient(sleep=lambda _s: None)
        try:
            with pytest.raises(RetryableDeliveryError):  # the server demands a certificate
                _push(client, PushDelivery(url=recipient.url, ca_file=ca_file))
            _push(client, PushDelivery(
                url=recipient.url, ca_file=ca_file, signing_secret_files=[path],
                client_certificate=ClientCertificate(cert_file=cert_file, key_file=key_file),
            ))
        finally:
            client.close()
        (headers, body), = recipient.received
        Webhook(secret).verify(body, headers, json_parse=False)  # raises if not genuine
        assert (("commonName", name),) in recipient.peer_subjects[0]


def _documented_verify():  # type: ignore[no-untyped-def]
    """The recipient's example from docs/gateway.md, as a recipient would copy it."""
    doc = (Path(__file__).parents[2] / "docs" / "gateway.md").read_text(encoding="utf-8")
    section = doc[doc.index("**How a recipient verifies**"):]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("\n```", start)]
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/gateway.md", "exec"), namespace)  # our own docs
    return namespace["verify"]


def test_the_documented_example_verifies_and_refuses_a_replay(recipient, tmp_path) -> None:
    verify = _documented_verify()
    path, secret = _secret(tmp_path, "key", 11)
    target = PushDelivery(url=recipient.url, signing_secret_files=[path])
    for clock in (time.time, lambda: time.time() - 600):
        client = PushClient(clock=clock)
        try:
            _push(client, target)
        finally:
            client.close()
    (fresh_headers, fresh_body), (old_headers, old_body) = recipient.received
    assert verify(secret, fresh_headers, fresh_body) == "msg_d-1"
    with pytest.raises(ValueError, match="no valid signature"):
        verify(secret, fresh_headers, fresh_body + b"x")
    with pytest.raises(ValueError, match="tolerance"):
        verify(secret, old_headers, old_body)
