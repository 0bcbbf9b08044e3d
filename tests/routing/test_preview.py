"""Previews and dry runs take the gateway's path: same refusals, same decisions, same bytes."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from casebridge.adapters import get_adapter
from casebridge.canonical_model import Category, Purpose, StatutoryClaim
from casebridge.consent.audit import AuditTrail
from casebridge.consent.registry import envelope_identifiers
from casebridge.consent.store import ConsentStore
from casebridge.errors import NoRoute
from casebridge.gateway.demo import sample_bytes, samples
from casebridge.routing.preview import decide_file, mask, personal_values, preview_file
from tests.consent import consent_factories as factories
from tests.consent.store_fixtures import example_envelope
from tests.routing.conftest import PUSH_URLS

CET = timezone(timedelta(hours=1))
AT = datetime(2026, 12, 3, 10, 0, tzinfo=CET)
SYSTEMS = {"jobcenter": "jobcenter", "sozialamt": "sozialamt", "jugendamt": "jugendamt",
           "provider-fhir": "provider-fhir"}

#: The category heading a prose note begins with (shown unmasked by design).
NOTE_HEADING = re.compile(r"^\[[^\]\n]{1,60}\]\s*")


def message_samples() -> list[tuple[str, str]]:
    """Every native message sample shipped with casebridge, with its system."""
    found = []
    for folder, system in SYSTEMS.items():
        for entry in sorted(samples().joinpath(folder).iterdir(), key=lambda e: e.name):
            found.append((f"{folder}/{entry.name}", system))
    return found


def delivered(routing, recipients) -> dict[tuple[str, str], bytes]:
    """(message id, recipient) → the bytes each recipient received (pushed or in its outbox)."""
    worker = routing.worker(push=recipients.client())
    worker.run(idle_timeout=0.3)
    worker.close()
    by_url = {url: agency for agency, url in PUSH_URLS.items()}
    got = {(r.headers["X-Casebridge-Message-Id"], by_url[str(r.url)]): r.content
           for r in recipients.requests}
    outbox = routing.outbox()
    for agency in routing.routes.agencies:
        for item in outbox.pending(agency):
            got[(item.message_id, agency)] = outbox.fetch(agency, item.item_id)[1]
    return got


def broad_consents(routing, envelopes) -> None:
    """Consents of each message's client for all its recipients, purposes and the categories a
    consent can name (special ones named), so that more recipients are permitted."""
    store = ConsentStore(routing.db)
    for n, envelope in enumerate(envelopes):
        identifiers = envelope_identifiers(envelope)
        if not identifiers:
            continue
        directive = factories.consent(
            re.sub(r"[^A-Za-z0-9.-]", "-",
                   f"{envelope.source_system}-{n}-{envelope.message_id}")[:64],
            disclosers=[envelope.sender],
            recipients=list(routing.routes.agencies),
            purposes=[str(p) for p in Purpose if p != Purpose.CHILD_PROTECTION],  # statutory
            categories=[str(c) for c in Category if c != Category.ENTRUSTED],
            valid_from=AT - timedelta(days=30), valid_until=AT + timedelta(days=30),
            birth_date=None,
        ).model_copy(update={"client_identifiers": identifiers})
        store.record(directive, source="test")


@pytest.mark.parametrize("broad", [False, True], ids=["sample-consents", "broad-consents"])
@pytest.mark.parametrize(("relative", "system"), message_samples())
def test_preview_is_byte_for_byte_what_each_recipient_receives(
    routing, recipients, relative, system, broad
):
    routing.clock = lambda: AT
    raw = sample_bytes(relative)
    envelopes = get_adapter(system).parse(raw, source=relative)
    if broad:
        broad_consents(routing, envelopes)
    try:
        previews = preview_file(routing.routes, routing.gate, envelopes, system=system, at=AT,
                                requested_by="test")
    except NoRoute as refused:
        with pytest.raises(NoRoute) as at_door:
            routing.router().submit(raw, system=system)
        assert at_door.value.message == refused.message
        return
    expected = {(m.envelope.message_id, r): c.native
                for m in previews for r, c in m.copies.items() if c.native is not None}
    accepted = routing.router().submit(raw, system=system)
    # the same decisions and reasons as the gateway's
    for a, m in zip(accepted, previews, strict=True):
        for r in a.recipients:
            report = next(d for d in m.decisions.decisions
                          if d.recipient == r.recipient).as_report()
            assert (r.outcome, r.released, r.withheld) == (
                report["outcome"], report["released"], report["withheld"])
    assert delivered(routing, recipients) == expected


def test_the_samples_exercise_every_delivery_mode(routing, recipients):
    """With broad consents the byte-for-byte test compares pushed and pulled copies, XML and
    JSON, of most samples."""
    routing.clock = lambda: AT
    kinds = set()
    copies = 0
    for _relative, previews in sample_previews(routing, broad=True):
        for m in previews:
            for recipient, copy in m.copies.items():
                if copy.native is not None:
                    copies += 1
                    mode = routing.routes.agency(recipient).delivery.mode
                    kinds.add((mode, "xml" if "xml" in (copy.media_type or "") else "json"))
    assert {("push", "xml"), ("pull", "json")} <= kinds
    assert copies >= 5


def test_preview_sends_nothing_records_no_decision_and_one_preview_event(routing, recipients):
    raw = sample_bytes("jugendamt/fall-001.json")
    envelopes = get_adapter("jugendamt").parse(raw)
    [message] = preview_file(routing.routes, routing.gate, envelopes, system="jugendamt",
                             at=AT, requested_by="jugendamt-duisburg")
    assert {r for r, c in message.copies.items() if c.native} == {
        "jobcenter-duisburg", "sozialamt-duisburg"}
    assert delivered(routing, recipients) == {}
    entries = list(AuditTrail(routing.db).entries())
    assert [e.kind for e in entries] == ["preview"]
    assert entries[0].message_id == envelopes[0].message_id
    assert entries[0].details["requested_by"] == "jugendamt-duisburg"
    assert "jobcenter-duisburg:partial" in str(entries[0].details["outcomes"])


def sample_previews(routing, *, broad: bool = False):
    """(sample, its previewed messages) for every sample the route table admits."""
    for relative, system in message_samples():
        envelopes = get_adapter(system).parse(sample_bytes(relative), source=relative)
        if broad:
            broad_consents(routing, envelopes)
        try:
            yield relative, preview_file(routing.routes, routing.gate, envelopes, system=system,
                                         at=AT, requested_by="test")
        except NoRoute:
            continue


def leaves(body: bytes, media_type: str) -> list[str]:
    """Every value of a document: XML texts and attribute values, JSON strings."""
    if "xml" in media_type:
        root = etree.fromstring(body)
        return [v for el in root.iter() for v in (el.text or "", *el.attrib.values()) if v]
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.append(value)

    walk(json.loads(body))
    return found


def _tags_xml(body: bytes) -> list[object]:
    root = etree.fromstring(body)
    return [(el.tag, sorted(el.attrib)) for el in root.iter()]


def _keys_json(value: object) -> object:
    if isinstance(value, dict):
        return {k: _keys_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys_json(v) for v in value]
    return type(value).__name__ if not isinstance(value, int | float) else "number"


def test_masking_hides_every_personal_value_and_keeps_the_structure(routing):
    for relative, previews in sample_previews(routing, broad=True):
        for m in previews:
            for copy in m.copies.values():
                if copy.native is None or copy.media_type is None:
                    continue
                masked = copy.masked(m.envelope)
                assert masked is not None
                text = masked.decode("utf-8" if b"8859" not in masked[:80] else "latin-1")
                # every value (names of elements, attributes and keys are structure), except
                # what is shown as it is: agency ids, message ids, URIs (identifier systems) and
                # a note's category heading ("[Gesundheit] …", the interfaces' own vocabulary)
                shown = {m.envelope.sender, *m.envelope.recipients, m.envelope.message_id}
                values = [NOTE_HEADING.sub("", v) for v in leaves(masked, copy.media_type)
                          if v not in shown and not v.startswith(("urn:", "http"))]
                for value in personal_values(m.envelope):
                    assert not [v for v in values if value.casefold() in v.casefold()], (
                        relative, value)
                if "xml" in copy.media_type:
                    assert _tags_xml(masked) == _tags_xml(copy.native)
                else:
                    assert _keys_json(json.loads(masked)) == _keys_json(json.loads(copy.native))
                # header values stay readable
                assert m.envelope.message_id in text and m.envelope.sender in text


def test_masking_keeps_category_headings_and_shapes():
    envelope = example_envelope()
    body = json.dumps({"note": "[Gesundheit] " + "962D123456", "id": envelope.message_id})
    masked = json.loads(mask(body.encode(), "application/json", envelope))
    assert masked == {"note": "[Gesundheit] 999X999999", "id": envelope.message_id}


def test_decide_applies_the_route_table_like_the_gateway(routing):
    """A statutory claim is an override on the child-protection route, refused elsewhere."""
    claim = StatutoryClaim(legal_basis="kkg-4", justification="Hinweise auf Vernachlässigung")
    notification = example_envelope(purpose=Purpose.CHILD_PROTECTION,
                                    recipients=["jugendamt-duisburg"], statutory=claim)
    [(_, evaluation)] = decide_file(routing.routes, routing.gate, [notification],
                                    system="jobcenter", at=AT)
    assert [str(d.outcome) for d in evaluation.decisions.decisions] == ["override"]
    elsewhere = example_envelope(purpose=Purpose.CHILD_PROTECTION, statutory=claim)
    with pytest.raises(NoRoute) as refused:
        decide_file(routing.routes, routing.gate, [elsewhere], system="jobcenter", at=AT)
    with pytest.raises(NoRoute) as at_door:
        routing.router().route(elsewhere)
    assert refused.value.message == at_door.value.message
    with pytest.raises(NoRoute, match="uses system 'jobcenter', not 'sozialamt'"):
        decide_file(routing.routes, routing.gate, [example_envelope()], system="sozialamt",
                    at=AT)
