"""Delivery to recipients: push over HTTP with retries, or into the agency's pull outbox.

Push: one POST per message, carrying the delivery id as ``Idempotency-Key`` (and the message id
as ``X-Casebridge-Message-Id``) so a recipient can recognise a repeat. tenacity retries what is
worth retrying -- 5xx, 408/429, timeouts, connection errors -- with exponential backoff, jitter
and a cap, up to the agency's maximum attempts. Any other 4xx is a permanent failure: the
recipient's answer (status and a bounded excerpt) is kept for the dead letter. httpx errors are
translated to :class:`~casebridge.errors.DeliveryError` subclasses here and nowhere else.

Pull: :class:`Outbox` stores the rendered bytes for the agency; the gateway lists, fetches and
acknowledges them. An acknowledged item keeps its metadata but drops its body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from casebridge.db import Database
from casebridge.errors import NotFound, RecipientRefused, RetryableDeliveryError
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


class PushClient:
    """POSTs rendered messages to recipients' endpoints (one httpx client, pooled)."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.client = httpx.Client(transport=transport, follow_redirects=False)
        self._sleep = sleep

    def close(self) -> None:
        """Close pooled connections."""
        self.client.close()

    def _post_once(
        self, target: PushDelivery, body: bytes, headers: dict[str, str]
    ) -> int:
        try:
            response = self.client.post(
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
                code = self._post_once(target, body, headers)
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
