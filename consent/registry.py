"""The client registry: which agency identifiers belong to which canonical client.

Links are made deliberately — when a consent is recorded with the client's identifiers, or by an
explicit ``clients link`` — never by fuzzy matching, because a wrong link would apply one
person's consent to another person's data. Matching by normalised name and birth date only
*proposes* candidates for a person to confirm.

Resolution of a message: the identifiers of its identity part(s) must point to exactly one
client. No identity part, no registered identifier, or identifiers of two different clients all
resolve to *unknown* (the engine then blocks with ``unknown_client``); nothing is guessed.
casebridge's own id travels as an identifier in system ``urn:casebridge:client`` and is
registered like any other, so a message or consent naming it resolves through the same index.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from casebridge.canonical_model import (
    CLIENT_ID_SYSTEM,
    ConsentDirective,
    Identifier,
    IdentityData,
    TransferEnvelope,
    normalise_name,
)
from casebridge.consent.engine import ConsentState
from casebridge.consent.store import (
    ClientIdentifierRow,
    ClientNameRow,
    ClientRow,
    ConsentRow,
    WithdrawalRow,
    parse_directive,
)
from casebridge.db import Database
from casebridge.errors import ConflictError, InputError, NotFound

_MAX_LOOKUP = 64  # identifiers per resolution; a hostile message cannot make the query unbounded


def new_client_id() -> str:
    """A fresh canonical client id, ``c-`` and 16 random hex digits."""
    return f"c-{secrets.token_hex(8)}"


class Resolution(StrEnum):
    """How an envelope's identifiers resolved."""

    RESOLVED = "resolved"
    NO_IDENTIFIERS = "no_identifiers"
    NOT_REGISTERED = "not_registered"
    AMBIGUOUS = "ambiguous"  # identifiers of two different clients: never guessed


@dataclass(frozen=True, slots=True)
class ResolvedClient:
    """The outcome of resolving a message's client."""

    resolution: Resolution
    client_id: str | None = None
    birth_date: date | None = None


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A client as the registry knows it."""

    client_id: str
    birth_date: date | None
    identifiers: list[Identifier] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)


def envelope_identifiers(envelope: TransferEnvelope) -> list[Identifier]:
    """The client identifiers an envelope carries in its identity part(s)."""
    found: list[Identifier] = []
    for part in envelope.parts:
        if isinstance(part.content, IdentityData):
            found.extend(part.content.identifiers)
    return found


def _owners(session: Session, identifiers: Iterable[Identifier]) -> dict[tuple[str, str], str]:
    pairs = {(i.system, i.value) for i in identifiers}
    if not pairs:
        return {}
    stmt = select(
        ClientIdentifierRow.system, ClientIdentifierRow.value, ClientIdentifierRow.client_id
    ).where(_identifier_match(pairs))
    return {(s, v): c for s, v, c in session.execute(stmt)}


def _identifier_match(pairs: Iterable[tuple[str, str]]) -> Any:
    return or_(*(and_(ClientIdentifierRow.system == s, ClientIdentifierRow.value == v)
                 for s, v in pairs))


@cache
def _decision_lookup() -> Any:
    # Built once: constructing the expression costs more than the indexed query itself.
    owners = (
        select(ClientIdentifierRow.client_id)
        .where(tuple_(ClientIdentifierRow.system, ClientIdentifierRow.value).in_(
            bindparam("pairs", expanding=True)))
        .distinct()
        .subquery()
    )
    return (
        select(owners.c.client_id, ClientRow.birth_date, ConsentRow.consent_id,
               ConsentRow.directive_json, WithdrawalRow.at)
        .join(ClientRow, ClientRow.client_id == owners.c.client_id)
        .outerjoin(ConsentRow, ConsentRow.client_id == owners.c.client_id)
        .outerjoin(WithdrawalRow, WithdrawalRow.consent_id == ConsentRow.consent_id)
    )


def resolve_with_consents(
    conn: Connection, identifiers: list[Identifier]
) -> tuple[ResolvedClient, list[ConsentState]]:
    """Resolve the client and load its consents in ONE statement (the decision's hot path).

    Same outcome as :func:`resolve` followed by ``states_for_client``: identifiers of two
    clients resolve to AMBIGUOUS and load nothing. One round trip instead of three keeps the
    gate's latency flat as the store grows (every step is an index look-up).
    """
    if not identifiers:
        return ResolvedClient(Resolution.NO_IDENTIFIERS), []
    pairs = sorted({(i.system, i.value) for i in identifiers[:_MAX_LOOKUP]})
    stmt = _decision_lookup()
    rows = conn.execute(stmt, {"pairs": pairs}).all()
    clients = {row[0] for row in rows}
    if not clients:
        return ResolvedClient(Resolution.NOT_REGISTERED), []
    if len(clients) > 1:
        return ResolvedClient(Resolution.AMBIGUOUS), []
    client_id, birth = rows[0][0], rows[0][1]
    states = {
        consent_id: ConsentState(parse_directive(text), withdrawn_at=at)
        for _, _, consent_id, text, at in rows
        if consent_id is not None
    }
    return ResolvedClient(Resolution.RESOLVED, client_id, birth), list(states.values())


def resolve(session: Session, identifiers: list[Identifier]) -> ResolvedClient:
    """Exactly one client owning any of ``identifiers``, else an unresolved outcome."""
    if not identifiers:
        return ResolvedClient(Resolution.NO_IDENTIFIERS)
    owners = set(_owners(session, identifiers[:_MAX_LOOKUP]).values())
    if not owners:
        return ResolvedClient(Resolution.NOT_REGISTERED)
    if len(owners) > 1:
        return ResolvedClient(Resolution.AMBIGUOUS)
    client_id = owners.pop()
    birth = session.scalar(select(ClientRow.birth_date).where(ClientRow.client_id == client_id))
    return ResolvedClient(Resolution.RESOLVED, client_id, birth)


def resolve_envelope(session: Session, envelope: TransferEnvelope) -> ResolvedClient:
    """Resolve the client an envelope is about (see the module docstring)."""
    return resolve(session, envelope_identifiers(envelope))


def _add_identifier(session: Session, client_id: str, ident: Identifier, linked_by: str) -> None:
    session.add(
        ClientIdentifierRow(
            client_id=client_id, system=ident.system, value=ident.value,
            linked_at=datetime.now(UTC), linked_by=linked_by[:255],
        )
    )


def _create_client(session: Session, client_id: str, birth_date: date | None) -> None:
    session.add(ClientRow(client_id=client_id, birth_date=birth_date, created_at=datetime.now(UTC)))
    session.flush()
    _add_identifier(session, client_id, Identifier(system=CLIENT_ID_SYSTEM, value=client_id),
                    "registry")


def link_for_consent(session: Session, directive: ConsentDirective) -> str:
    """Link the consent's client identifiers to one client (created if new); return its id.

    Identifiers already owned by one client link the rest to that client; identifiers owned by
    two different clients are refused (ConflictError), never merged.
    """
    idents = directive.client_identifiers
    owners = set(_owners(session, idents).values())
    named = {i.value for i in idents if i.system == CLIENT_ID_SYSTEM}
    if len(named) > 1:
        raise ConflictError(
            f"consent '{directive.consent_id}': the patient carries two casebridge client ids"
        )
    if len(owners) > 1:
        raise ConflictError(
            f"consent '{directive.consent_id}': its patient's identifiers belong to "
            f"{len(owners)} different clients ({', '.join(sorted(owners))}); link them "
            "deliberately or correct the consent, casebridge does not merge clients"
        )
    if owners:
        client_id = owners.pop()
        client = session.get(ClientRow, client_id)
        assert client is not None  # the FK guarantees it
        birth = directive.client_birth_date
        if birth is not None and client.birth_date is not None and birth != client.birth_date:
            raise ConflictError(
                f"consent '{directive.consent_id}': the patient's birth date differs from the one "
                f"on record for client '{client_id}'; check the identifiers before linking"
            )
        if client.birth_date is None and birth is not None:
            client.birth_date = birth
    else:
        client_id = named.pop() if named else new_client_id()
        _create_client(session, client_id, directive.client_birth_date)
    known = _owners(session, idents)
    for ident in idents:
        if (ident.system, ident.value) not in known:
            _add_identifier(session, client_id, ident, f"consent:{directive.consent_id}")
            known[(ident.system, ident.value)] = client_id
    if directive.client_name is not None:
        _remember_name(session, client_id, directive.client_name.normalised(),
                       directive.client_birth_date)
    session.flush()
    return client_id


def _remember_name(session: Session, client_id: str, name: str, birth: date | None) -> None:
    exists = session.scalar(
        select(ClientNameRow.id).where(
            ClientNameRow.client_id == client_id,
            ClientNameRow.name_normalised == name,
            ClientNameRow.birth_date.is_(None)
            if birth is None
            else ClientNameRow.birth_date == birth,
        )
    )
    if exists is None:
        session.add(
            ClientNameRow(client_id=client_id, name_normalised=name[:255], birth_date=birth)
        )


class ClientRegistry:
    """Show, link and propose clients (each call one transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def show(self, client_id: str) -> ClientInfo:
        """A client with its identifiers; NotFound if unknown."""
        with self.db.session() as session:
            client = session.get(ClientRow, client_id)
            if client is None:
                raise NotFound(f"client '{client_id}' is not in the registry")
            rows = session.scalars(
                select(ClientIdentifierRow)
                .where(ClientIdentifierRow.client_id == client_id)
                .order_by(ClientIdentifierRow.system, ClientIdentifierRow.value)
            ).all()
            return ClientInfo(
                client_id=client.client_id,
                birth_date=client.birth_date,
                identifiers=[Identifier(system=r.system, value=r.value) for r in rows],
                links=[
                    {"system": r.system, "value": r.value, "linked_by": r.linked_by,
                     "linked_at": r.linked_at.isoformat()}
                    for r in rows
                ],
            )

    def find(self, system: str, value: str) -> str | None:
        """The client owning an identifier, or None."""
        with self.db.session() as session:
            return session.scalar(
                select(ClientIdentifierRow.client_id).where(
                    ClientIdentifierRow.system == system, ClientIdentifierRow.value == value
                )
            )

    def link(self, client_id: str, system: str, value: str, *, by: str = "cli") -> bool:
        """Link an identifier to an existing client; False if it already was, ConflictError if it
        belongs to another client."""
        try:
            ident = Identifier(system=system, value=value)
        except ValueError:
            raise InputError(
                "identifier: SYSTEM must be a URI such as urn:casebridge:id:AGENCY:KIND and VALUE "
                "must not be empty"
            ) from None
        with self.db.session(immediate=True) as session:
            if session.get(ClientRow, client_id) is None:
                raise NotFound(f"client '{client_id}' is not in the registry")
            owner = _owners(session, [ident]).get((ident.system, ident.value))
            if owner == client_id:
                return False
            if owner is not None:
                raise ConflictError(
                    f"identifier in system '{ident.system}' already belongs to client '{owner}'; "
                    "casebridge does not move or merge links"
                )
            _add_identifier(session, client_id, ident, f"manual:{by}")
            return True

    def candidates(self, name: str, birth_date: date | None) -> list[ClientInfo]:
        """Clients whose recorded normalised name (and birth date, if given) match — proposals
        for a person to confirm, never links."""
        wanted = normalise_name(name)
        if not wanted:
            raise InputError("name: give a name such as 'Family, Given'")
        with self.db.session() as session:
            stmt = select(ClientNameRow.client_id).where(ClientNameRow.name_normalised == wanted)
            if birth_date is not None:
                stmt = stmt.where(ClientNameRow.birth_date == birth_date)
            ids = sorted(set(session.scalars(stmt)))
        return [self.show(cid) for cid in ids]
