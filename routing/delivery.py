"""Delivery to recipients: push over HTTP with retries, or into the agency's pull outbox.

Push: one POST per message, carrying the delivery id as ``Idempotency-Key`` (and the message id
as ``X-Casebridge-Message-Id``) so a recipient can recognise a repeat. With signing secrets
configured, every attempt is signed per the Standard Webhooks specification (``webhook-id`` = the
delivery id, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>`` once per
secret); with a client certificate configured, casebridge presents it (mTLS). tenacity retries
what is worth retrying -- 5xx, 408/429, timeouts, connection errors -- with exponential backoff,
jitter and a cap, up to the agency's maximum attempts. Any other 4xx is a permanent failure: the
recipient's answer (status and a bounded excerpt) is kept for the dead letter. httpx errors are
translated to :class:`~casebridge.errors.DeliveryError` subclasses here and nowhere else.

Pull: :class:`Outbox` stores the rendered bytes for the agency; the gateway lists, fetches and
acknowledges them. An acknowledged item keeps its metadata but drops its body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from casebridge.db import Database
from casebridge.errors import ConfigError, NotFound, RecipientRefused, RetryableDeliveryError
from casebridge.routing.routes import PushDelivery, RetryPolicy
from casebridge.routing.store import OutboxRow

#: How much of a recipient's refusal is kept (it explains the 4xx; bounded against floods).
ANSWER_EXCERPT = 2000
_RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class PushResult:
    """A push the recipient accepted."""

    status_code: int
    attempts: int


SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def read_signing_secret(path: Path) -> bytes:
    """The HMAC key in a Standard Webhooks secret file (``whsec_<base64>``); ConfigError if not."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"signing secret {path}: cannot read the file ({reason})") from None
    try:
        key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"signing secret {path}: not whsec_ followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(f"signing secret {path}: the key must be 24 to 64 bytes")
    return key


def signature_header(keys: Sequence[bytes], webhook_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: ``v1,<base64 HMAC-SHA256 of id.timestamp.body>`` per key."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in keys
    )


class PushClient:
    """POSTs rendered messages to recipients' endpoints (pooled httpx clients).

    One client for plain HTTPS and one per distinct TLS set-up (a client certificate or a CA
    bundle of a recipient), created on first use.
    """

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self.client = httpx.Client(transport=transport, follow_redirects=False)
        self._tls_clients: dict[tuple[Path | None, Path | None, Path | None], httpx.Client] = {}
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock

    def close(self) -> None:
        """Close pooled connections."""
        self.client.close()
        for client in self._tls_clients.values():
            client.close()

    def _client_for(self, target: PushDelivery) -> httpx.Client:
        cert = target.client_certificate
        if cert is None and target.ca_file is None:
            return self.client
        key = (cert.cert_file if cert else None, cert.key_file if cert else None, target.ca_file)
        with self._lock:
            client = self._tls_clients.get(key)
            if client is None:
                try:
                    context = ssl.create_default_context(cafile=target.ca_file)
                    if cert is not None:
                        context.load_cert_chain(cert.cert_file, cert.key_file)
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(
                        f"push to {target.url}: TLS files cannot be used ({type(exc).__name__})"
                    ) from None
                client = httpx.Client(
                    transport=self._transport, verify=context, follow_redirects=False
                )
                self._tls_clients[key] = client
            return client

    def _post_once(
        self, client: httpx.Client, target: PushDelivery, body: bytes, headers: dict[str, str],
        keys: Sequence[bytes],
    ) -> int:
        if keys:
            # Signed per attempt: the timestamp says when this attempt was sent, so a recipient's
            # replay window also holds for retries.
            timestamp = int(self._clock())
            headers = {
                **headers,
                "webhook-id": headers["Idempotency-Key"],
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature_header(
                    keys, headers["Idempotency-Key"], timestamp, body
                ),
            }
        try:
            response = client.post(
                target.url, content=body, headers=headers, timeout=target.timeout
            )
        except httpx.TimeoutException as exc:
            raise RetryableDeliveryError(f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise RetryableDeliveryError(f"connection failed ({type(exc).__name__})") from exc
        code = response.status_code
        if 200 <= code < 300:
            return code
        answer = response.text[:ANSWER_EXCERPT]
        if code >= 500 or code in _RETRYABLE_4XX:
            raise RetryableDeliveryError(f"HTTP {code}")
        raise RecipientRefused(code, answer)

    def push(
        self,
        target: PushDelivery,
        body: bytes,
        *,
        media_type: str,
        delivery_id: str,
        message_id: str,
        sender: str,
        retry: RetryPolicy,
    ) -> PushResult:
        """Deliver ``body``; retries per ``retry``; raises the last DeliveryError if it fails."""
        headers = {
            "Content-Type": media_type,
            "Idempotency-Key": delivery_id,
            "X-Casebridge-Message-Id": message_id,
            "X-Casebridge-Sender": sender,
        }
        retrying = Retrying(
            stop=stop_after_attempt(retry.max_attempts),
            wait=wait_exponential_jitter(
                multiplier=retry.initial_backoff, max=retry.max_backoff, jitter=retry.jitter
            ),
            retry=retry_if_exception_type(RetryableDeliveryError),
            reraise=True,
            sleep=self._sleep or time.sleep,
        )
        attempts = 0
        for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                try:
                    keys = [read_signing_secret(path) for path in target.signing_secret_files]
                    client = self._client_for(target)
                except ConfigError as exc:
                    # Never sent unsigned or without its certificate; retried, so a file being
                    # replaced during a rotation is picked up, then a dead letter naming the file.
                    raise RetryableDeliveryError(exc.message) from None
                code = self._post_once(client, target, body, headers, keys)
        return PushResult(code, attempts)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One message waiting in (or fetched from) a pull agency's outbox; no body."""

    item_id: int
    agency: str
    delivery_id: str
    message_id: str
    sender: str
    message_type: str
    media_type: str
    created_at: datetime
    acked_at: datetime | None


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        row.id, row.agency, row.delivery_id, row.message_id, row.sender, row.message_type,
        row.media_type, row.created_at, row.acked_at,
    )


class Outbox:
    """The pull agencies' outboxes: list pending, fetch the native bytes, acknowledge.

    The gateway serves these to the authenticated agency; every method takes the agency so that
    one agency can never read or acknowledge another's messages.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def put(
        session: Session, *, agency: str, delivery_id: str, message_id: str, sender: str,
        message_type: str, media_type: str, body: bytes, at: datetime,
    ) -> None:
        """Add a rendered message inside the caller's transaction (with its delivered mark)."""
        session.add(
            OutboxRow(
                agency=agency, delivery_id=delivery_id, message_id=message_id, sender=sender,
                message_type=message_type, media_type=media_type, body=body, created_at=at,
            )
        )

    def pending(self, agency: str, *, limit: int = 100, after: int = 0) -> list[OutboxItem]:
        """Unacknowledged items of ``agency``, oldest first (keyset paging by ``after``)."""
        with self.db.session() as session:
            rows = session.scalars(
                select(OutboxRow)
                .where(OutboxRow.agency == agency, OutboxRow.acked_at.is_(None),
                       OutboxRow.id > after)
                .order_by(OutboxRow.id)
                .limit(max(1, min(limit, 1000)))
            ).all()
            return [_item(r) for r in rows]

    def fetch(self, agency: str, item_id: int) -> tuple[OutboxItem, bytes]:
        """One pending item and its native bytes; NotFound if absent, another's, or acked."""
        with self.db.session() as session:
            row = session.get(OutboxRow, item_id)
            if row is None or row.agency != agency or row.body is None:
                raise NotFound(f"outbox item {item_id} is not pending for agency '{agency}'")
            return _item(row), row.body

    def ack(self, agency: str, item_id: int) -> bool:
        """Acknowledge an item (drops its body); False if it was already acknowledged."""
        now = datetime.now(UTC)
        with self.db.session(immediate=True) as session:
            row = session.get(OutboxRow, item_id)
            if row is None or row.agency != agency:
                raise NotFound(f"outbox item {item_id} does not exist for agency '{agency}'")
            if row.acked_at is not None:
                return False
            session.execute(
                update(OutboxRow).where(OutboxRow.id == item_id).values(acked_at=now, body=None)
            )
            return True
