"""The client registry: deliberate links, refusal to merge, resolution never guessed."""

from __future__ import annotations

from datetime import date

import pytest

from casebridge.canonical_model import CLIENT_ID_SYSTEM, Identifier
from casebridge.consent.registry import ClientRegistry, Resolution, resolve, resolve_envelope
from casebridge.consent.store import ConsentStore
from casebridge.db import Database
from casebridge.errors import ConflictError, InputError, NotFound
from tests.consent.store_fixtures import *  # noqa: F403
from tests.consent.store_fixtures import AKTENZEICHEN, KUNDENNUMMER, directive, example_envelope

FALLNUMMER = "urn:casebridge:id:jugendamt-duisburg:fallnummer"


def test_import_links_identifiers_and_later_consents_add_to_the_same_client(any_db) -> None:
    store, registry = ConsentStore(any_db), ClientRegistry(any_db)
    first = store.record(directive("c1", identifiers=((KUNDENNUMMER, "K-1"),)))
    assert first.client_id.startswith("c-") and len(first.client_id) == 18
    second = store.record(
        directive("c2", identifiers=((KUNDENNUMMER, "K-1"), (AKTENZEICHEN, "AZ-1")))
    )
    assert second.client_id == first.client_id
    info = registry.show(first.client_id)
    systems = {(i.system, i.value) for i in info.identifiers}
    assert {(KUNDENNUMMER, "K-1"), (AKTENZEICHEN, "AZ-1"),
            (CLIENT_ID_SYSTEM, first.client_id)} == systems
    assert info.birth_date == date(1988, 4, 12)
    assert {link["linked_by"] for link in info.links} >= {"consent:c1", "consent:c2"}


def test_identifiers_of_two_clients_are_refused_not_merged(any_db) -> None:
    store = ConsentStore(any_db)
    a = store.record(directive("c1", identifiers=((KUNDENNUMMER, "K-1"),)))
    b = store.record(directive("c2", identifiers=((AKTENZEICHEN, "AZ-1"),)))
    assert a.client_id != b.client_id
    with pytest.raises(ConflictError, match="does not merge"):
        store.record(directive("c3", identifiers=((KUNDENNUMMER, "K-1"), (AKTENZEICHEN, "AZ-1"))))
    assert store.get("c3") is None


def test_a_consent_naming_the_casebridge_client_id_uses_it(any_db) -> None:
    result = ConsentStore(any_db).record(
        directive("c1", identifiers=((CLIENT_ID_SYSTEM, "c-0123456789abcdef"), (KUNDENNUMMER, "K")))
    )
    assert result.client_id == "c-0123456789abcdef"


def test_a_different_birth_date_for_the_same_identifier_is_refused(any_db) -> None:
    store = ConsentStore(any_db)
    store.record(directive("c1"))
    with pytest.raises(ConflictError, match="birth date"):
        store.record(directive("c2", client_birth_date=date(1990, 1, 1)))


def test_explicit_link(any_db) -> None:
    store, registry = ConsentStore(any_db), ClientRegistry(any_db)
    a = store.record(directive("c1", identifiers=((KUNDENNUMMER, "K-1"),)))
    b = store.record(directive("c2", identifiers=((KUNDENNUMMER, "K-2"),)))
    assert registry.link(a.client_id, FALLNUMMER, "F-1", by="desk") is True
    assert registry.link(a.client_id, FALLNUMMER, "F-1") is False
    assert registry.find(FALLNUMMER, "F-1") == a.client_id
    with pytest.raises(ConflictError):
        registry.link(b.client_id, FALLNUMMER, "F-1")
    with pytest.raises(NotFound):
        registry.link("c-doesnotexist", FALLNUMMER, "F-9")
    with pytest.raises(InputError):
        registry.link(a.client_id, "not a uri", "F-9")


def test_candidates_are_proposals_by_normalised_name_and_birth_date(any_db) -> None:
    store, registry = ConsentStore(any_db), ClientRegistry(any_db)
    a = store.record(directive("c1", identifiers=((KUNDENNUMMER, "K-1"),)))
    store.record(directive("c2", identifiers=((KUNDENNUMMER, "K-2"),),
                           client_birth_date=date(1970, 1, 1)))
    found = registry.candidates("YILMAZ, Ayse", date(1988, 4, 12))
    assert [c.client_id for c in found] == [a.client_id]
    assert len(registry.candidates("Yilmaz, Ayşe", None)) == 2
    assert registry.candidates("Muster, Max", None) == []
    # proposing links nothing
    assert registry.find(AKTENZEICHEN, "anything") is None


def _session_resolve(db: Database, identifiers):
    with db.session() as s:
        return resolve(s, identifiers)


def test_resolution_is_exactly_one_client_or_unknown(any_db) -> None:
    store = ConsentStore(any_db)
    a = store.record(directive("c1", identifiers=((KUNDENNUMMER, "962D123456"),)))
    b = store.record(directive("c2", identifiers=((AKTENZEICHEN, "AZ-1"),)))
    with any_db.session() as s:
        resolved = resolve_envelope(s, example_envelope())
    assert resolved.resolution == Resolution.RESOLVED and resolved.client_id == a.client_id
    assert resolved.birth_date == date(1988, 4, 12)
    k = Identifier(system=KUNDENNUMMER, value="962D123456")
    az = Identifier(system=AKTENZEICHEN, value="AZ-1")
    unknown = Identifier(system=KUNDENNUMMER, value="nobody")
    assert _session_resolve(any_db, [k, unknown]).client_id == a.client_id
    assert _session_resolve(any_db, [unknown]).resolution == Resolution.NOT_REGISTERED
    assert _session_resolve(any_db, []).resolution == Resolution.NO_IDENTIFIERS
    ambiguous = _session_resolve(any_db, [k, az])
    assert ambiguous.resolution == Resolution.AMBIGUOUS and ambiguous.client_id is None
    assert b.client_id != a.client_id
    by_own_id = Identifier(system=CLIENT_ID_SYSTEM, value=b.client_id)
    assert _session_resolve(any_db, [by_own_id]).client_id == b.client_id


def test_one_statement_lookup_agrees_with_resolve_and_states(any_db) -> None:
    from casebridge.consent.registry import resolve_with_consents
    from casebridge.consent.store import states_for_client

    store = ConsentStore(any_db)
    a = store.record(directive("c1", identifiers=((KUNDENNUMMER, "962D123456"),)))
    store.record(directive("c1b", identifiers=((KUNDENNUMMER, "962D123456"),)))
    store.withdraw("c1b", by="test")
    store.record(directive("c2", identifiers=((AKTENZEICHEN, "AZ-1"),)))
    k = Identifier(system=KUNDENNUMMER, value="962D123456")
    az = Identifier(system=AKTENZEICHEN, value="AZ-1")
    own = Identifier(system=CLIENT_ID_SYSTEM, value=a.client_id)
    unknown = Identifier(system=KUNDENNUMMER, value="nobody")
    for identifiers in ([k], [k, own], [k, unknown], [unknown], [], [k, az]):
        with any_db.session() as s:
            expected = resolve(s, identifiers)
            expected_states = (
                states_for_client(s, expected.client_id) if expected.client_id else []
            )
        with any_db.snapshot_read() as conn:
            got, states = resolve_with_consents(conn, identifiers)
        assert got == expected
        assert sorted((st.directive.consent_id, st.withdrawn_at) for st in states) == sorted(
            (st.directive.consent_id, st.withdrawn_at) for st in expected_states
        )
    with any_db.snapshot_read() as conn:
        _, states = resolve_with_consents(conn, [k, own])
    assert {st.directive.consent_id for st in states} == {"c1", "c1b"}  # no duplicates
    assert len(states) == 2
