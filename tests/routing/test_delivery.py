"""Push delivery with retries (httpx.MockTransport) and the pull outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from casebridge.errors import NotFound, RecipientRefused, RetryableDeliveryError
from casebridge.routing.delivery import Outbox, PushClient
from casebridge.routing.routes import PushDelivery, RetryPolicy

TARGET = PushDelivery(url="http://recipient.test/inbox", timeout=1)
RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.02, jitter=0)


def _push(client: PushClient, retry: RetryPolicy = RETRY):
    return client.push(TARGET, b"<x/>", media_type="application/xml", delivery_id="d-1",
                       message_id="M-1", sender="jobcenter-duisburg", retry=retry)


def scripted(*answers):
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, PushClient(transport=httpx.MockTransport(handler), sleep=lambda _s: None)


def test_success_carries_idempotency_key_and_message_id():
    seen, client = scripted(httpx.Response(201))
    result = _push(client)
    assert (result.status_code, result.attempts) == (201, 1)
    req = seen[0]
    assert req.headers["Idempotency-Key"] == "d-1"
    assert req.headers["X-Casebridge-Message-Id"] == "M-1"
    assert req.headers["Content-Type"] == "application/xml"
    assert req.content == b"<x/>"


def test_5xx_timeouts_and_connection_errors_are_retried_until_success():
    seen, client = scripted(
        httpx.Response(503), httpx.ReadTimeout("slow"), httpx.ConnectError("down"),
        httpx.Response(200),
    )
    assert _push(client).attempts == 4
    assert len(seen) == 4


def test_retries_stop_at_the_budget():
    seen, client = scripted(httpx.Response(502))
    with pytest.raises(RetryableDeliveryError, match="HTTP 502"):
        _push(client)
    assert len(seen) == RETRY.max_attempts


def test_4xx_is_permanent_and_keeps_the_answer():
    seen, client = scripted(httpx.Response(422, text="Kundennummer unbekannt"))
    with pytest.raises(RecipientRefused) as info:
        _push(client)
    assert len(seen) == 1
    assert info.value.status_code == 422
    assert info.value.answer == "Kundennummer unbekannt"


def test_429_is_retried():
    _seen, client = scripted(httpx.Response(429), httpx.Response(204))
    assert _push(client).attempts == 2


def test_backoff_is_exponential_with_cap():
    waits: list[float] = []
    client = PushClient(transport=httpx.MockTransport(lambda r: httpx.Response(500)),
                        sleep=waits.append)
    with pytest.raises(RetryableDeliveryError):
        _push(client, RetryPolicy(max_attempts=6, initial_backoff=1, max_backoff=4, jitter=0))
    assert waits == [1, 2, 4, 4, 4]


def test_outbox_put_list_fetch_ack(db):
    outbox = Outbox(db)
    now = datetime.now(UTC)
    with db.session() as s:
        for n in range(3):
            Outbox.put(s, agency="suchtberatung-diakonie-du", delivery_id=f"d-{n}",
                       message_id=f"M-{n}", sender="jobcenter-duisburg",
                       message_type="referral", media_type="application/fhir+json",
                       body=f"body-{n}".encode(), at=now)
    pending = outbox.pending("suchtberatung-diakonie-du")
    assert [p.message_id for p in pending] == ["M-0", "M-1", "M-2"]
    item, body = outbox.fetch("suchtberatung-diakonie-du", pending[1].item_id)
    assert body == b"body-1" and item.media_type == "application/fhir+json"
    assert outbox.ack("suchtberatung-diakonie-du", pending[1].item_id) is True
    assert outbox.ack("suchtberatung-diakonie-du", pending[1].item_id) is False
    assert [p.message_id for p in outbox.pending("suchtberatung-diakonie-du")] == ["M-0", "M-2"]
    with pytest.raises(NotFound):  # acked: body gone
        outbox.fetch("suchtberatung-diakonie-du", pending[1].item_id)
    with pytest.raises(NotFound):  # another agency's item
        outbox.fetch("jobcenter-duisburg", pending[0].item_id)
    with pytest.raises(NotFound):
        outbox.ack("jobcenter-duisburg", pending[0].item_id)
    assert outbox.pending("jobcenter-duisburg") == []
