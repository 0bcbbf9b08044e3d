"""Every data subject of a transfer indexed (issue 17 item 2): who is in a message, their
pseudonymous references, the registry's deliberate links, and the migration of a store whose
audit entries were written before the index (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from hypothesis import given, settings
from sqlalchemy import select

from casebridge.adapters import get_adapter
from casebridge.canonical_model import Category, ChildProtectionData, Part, Purpose
from casebridge.consent.access import access_report
from casebridge.consent.audit import AuditTrail, draft_for_decision
from casebridge.consent.gate import ConsentGate
from casebridge.consent.store import ConsentStore, DataSubjectRow
from casebridge.consent.subjects import SubjectIndex, persons_in, subject_reference
from casebridge.db import Database, create_db_engine, migrate
from casebridge.errors import ConflictError
from casebridge.gateway.demo import sample_bytes
from tests.consent.legacy_audit import append_legacy
from tests.consent.store_fixtures import *  # noqa: F403
from tests.consent.store_fixtures import directive
from tests.strategies import envelopes

AT = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FALLNUMMER = "urn:casebridge:id:jugendamt-duisburg:fallnummer"
KUNDENNUMMER = "urn:casebridge:id:jobcenter-duisburg:kundennummer"


def _youth_file():
    [envelope] = get_adapter("jugendamt").parse(sample_bytes("jugendamt/fall-001.json"),
                                                source="jugendamt-duisburg")
    return envelope


def _zuweisung():
    [envelope] = get_adapter("jobcenter").parse(sample_bytes("jobcenter/zuweisung-001.xml"),
                                                source="jobcenter-duisburg")
    return envelope


def test_the_youth_file_carries_the_child_and_the_mother() -> None:
    client, *others = persons_in(_youth_file())
    assert client.roles == {"client"} and (FALLNUMMER, "JA-51-2026-1189") in client.identifiers
    [mother] = others  # the child entrusted his note himself: he is the client
    assert mother.roles == {"guardian"} and mother.categories == {"household"}
    assert mother.name == "yilmaz, ayse" and mother.birth_date == date(1988, 4, 12)
    assert mother.identifiers == []


def test_the_referral_carries_the_son_as_household_member() -> None:
    client, son = persons_in(_zuweisung())
    assert (KUNDENNUMMER, "962D123456") in client.identifiers
    assert son.roles == {"household_member"} and son.categories == {"household"}


def test_a_child_protection_transfer_names_the_child() -> None:
    envelope = _zuweisung()
    assessment = Part(id="kws", category=Category.CHILD_PROTECTION,
                      content=ChildProtectionData(endangerment_assessed=True))
    notification = envelope.model_copy(update={"purpose": Purpose.CHILD_PROTECTION,
                                               "parts": [*envelope.parts, assessment]})
    _client, child = persons_in(notification)
    assert child.roles == {"child"} and child.categories == {"household", "child_protection"}


def test_an_entruster_named_by_relation_is_the_household_member_of_that_role() -> None:
    envelope = _youth_file()
    notes = [p for p in envelope.parts if p.category == Category.ENTRUSTED]
    assert notes
    changed = [p.model_copy(update={"entrusted_by": p.entrusted_by.model_copy(
        update={"relation": "mother"})}) if p.category == Category.ENTRUSTED else p
        for p in envelope.parts]
    _client, mother = persons_in(envelope.model_copy(update={"parts": changed}))
    assert mother.roles == {"guardian", "entruster"}
    assert mother.categories == {"household", "entrusted"}


@settings(max_examples=150, deadline=None)
@given(envelopes())
def test_everyone_is_concerned_only_by_categories_the_message_carries(envelope) -> None:
    people = persons_in(envelope)
    present = {str(c) for c in envelope.categories}
    assert people[0].roles == {"client"} and people[0].categories == present
    for person in people[1:]:
        assert person.roles and person.categories <= present
        assert person.categories, "a person in a message is concerned by some category"
    key = b"k" * 32
    refs = [subject_reference(key, p, scope="c-1") for p in people[1:]]
    assert all(r.startswith("s-") and len(r) == 26 for r in refs)
    # the reference is stable: the same message gives the same references
    assert refs == [subject_reference(key, p, scope="c-1") for p in persons_in(envelope)[1:]]


def _register_son(db: Database) -> str:
    results = ConsentStore(db).import_fhir(
        sample_bytes("consent-fhir/consent-guardian-001.json"), source="test")
    return results[0].client_id


def test_old_entries_keep_working_after_the_migration(fresh_db_url) -> None:
    """Entries written before revision 0009 (no subjects) stay verifiable and reported, with the
    persons not indexed then named; new decisions carry the subjects."""
    engine = create_db_engine(fresh_db_url)
    try:
        migrate(engine, "0008_plan_measures")
        db = Database(engine)
        son = _register_son(db)
        envelope = _youth_file()
        gate = ConsentGate(db)
        old = gate.evaluate(envelope, at=AT)  # what the gate did before: decide, append
        written = append_legacy(engine, [
            draft_for_decision(envelope, d, stage="inbound", at=AT,
                               client_id=old.client.client_id)
            for d in old.decisions.decisions])
        migrate(engine)
        before = AuditTrail(db).verify()
        assert before.ok and before.checked == len(written)
        gate.check(envelope.model_copy(update={"message_id": "jugendamt-duisburg:new-1"}),
                   at=AT, stage="inbound")
        assert AuditTrail(db).verify().ok
        report = access_report(db, son)
        old_ones = [t for t in report.transfers if not t.indexed]
        new_ones = [t for t in report.transfers if t.indexed]
        assert len(old_ones) == len(new_ones) == 2  # two recipients each
        assert all(set(t.not_indexed) >= {"guardian", "household_member"} for t in old_ones)
        assert all(t.not_indexed == [] for t in new_ones)
        new_entries = [e for e in AuditTrail(db).entries() if e.seq > before.last_seq]
        subjects = new_entries[0].details["subjects"]
        assert [s["roles"] for s in subjects] == [["client"], ["guardian"]]
        assert subjects[0]["ref"] == son and subjects[1]["ref"].startswith("s-")
        assert "Ay" not in json.dumps(subjects)  # references and codes, no names

        # the mother: found by name, linked deliberately, then her report has the new transfers
        mother_client = ConsentStore(db).record(directive(
            "cons-m", identifiers=((KUNDENNUMMER, "962D123456"),))).client_id
        index = SubjectIndex(db)
        [seen] = [m for m in index.by_name("Yılmaz, Ayşe", date(1988, 4, 12))
                  if m.kind == "subject"]
        assert [t for t in access_report(db, mother_client).transfers] == []
        assert index.link(seen.ref, mother_client, by="desk") is True
        assert index.link(seen.ref, mother_client, by="desk") is False
        mine = access_report(db, mother_client).transfers
        assert len(mine) == 2 and all(t.roles == ["guardian"] for t in mine)
        assert all(t.released == ["household"] or t.state == "not_transferred" for t in mine)
        try:
            index.link(seen.ref, son, by="desk")
        except ConflictError:
            pass
        else:
            raise AssertionError("a confirmed link was moved to another client")
        with db.session() as session:
            row = session.scalars(select(DataSubjectRow)).one()
            assert row.client_id == mother_client and row.linked_by == "desk"
    finally:
        engine.dispose()
