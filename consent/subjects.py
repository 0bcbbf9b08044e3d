"""Data subjects: every person whose data a transfer carried, not only the client (rule 11).

A transfer about one client often carries data of others: household and benefit-community
members, guardians (the mother among the youth office's ``sorgeberechtigte``), the child named in
a child-protection notification, a person who entrusted something (§65 SGB VIII). When the gate
decides a transfer, :func:`index_subjects` names each of them by a *reference* and the audit entry
records ``details.subjects`` = ``[{"ref", "roles", "categories"}, …]`` — references and category
codes only, never a name.

A reference is the client id where the person's identifiers are registered to a client, else a
pseudonym ``s-…``: an HMAC (key made once per store by the migration) over the person's first
identifier, or — for a person seen without any — over the client whose file it was, the
normalised name and the birth date. The same person in the same file therefore keeps one
reference; the same name in another file is another reference (never merged by matching). The
registry keeps beside it what a case worker needs to find the person again (normalised name,
birth date, identifiers seen) and, once confirmed deliberately (:meth:`SubjectIndex.link`), the
client it is. Nothing here links automatically except an exact registered identifier.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from threading import Lock
from typing import Any

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from casebridge.canonical_model import (
    Category,
    HouseholdData,
    Identifier,
    IdentityData,
    Purpose,
    TransferEnvelope,
    normalise_name,
)
from casebridge.canonical_model.vocabulary import HouseholdRole, PersonRelation
from casebridge.consent.store import (
    ClientIdentifierRow,
    ClientNameRow,
    ClientRow,
    DataSubjectIdentifierRow,
    DataSubjectRow,
    RegistrySecretRow,
)
from casebridge.db import Database
from casebridge.errors import ConflictError, InputError, NotFound

#: Roles a person can have in a transfer (the report words each).
CLIENT, GUARDIAN, MEMBER, CHILD, ENTRUSTER = (
    "client", "guardian", "household_member", "child", "entruster")
ROLES = (CLIENT, GUARDIAN, MEMBER, CHILD, ENTRUSTER)
_GUARDIAN_ROLES = frozenset({HouseholdRole.MOTHER, HouseholdRole.FATHER, HouseholdRole.PARENT,
                             HouseholdRole.LEGAL_GUARDIAN})
#: An entruster named only by relation is the household member of that role, if exactly one.
_RELATION_ROLES = {
    PersonRelation.MOTHER: {HouseholdRole.MOTHER},
    PersonRelation.FATHER: {HouseholdRole.FATHER},
    PersonRelation.PARENT: {HouseholdRole.PARENT, HouseholdRole.MOTHER, HouseholdRole.FATHER},
    PersonRelation.LEGAL_GUARDIAN: {HouseholdRole.LEGAL_GUARDIAN},
}
SUBJECT_PREFIX = "s-"
_MAX_PERSONS = 64  # per message: a hostile message cannot make the index unbounded


# --- who is in a message (pure) ---------------------------------------------------------------


@dataclass(slots=True)
class PersonSeen:
    """One person in an envelope, with what concerns them."""

    roles: set[str]
    categories: set[str]
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    name: str | None = None  # normalised, for matching only
    birth_date: date | None = None
    relation: str | None = None  # an entruster known only by relation
    household_role: str | None = None


def persons_in(envelope: TransferEnvelope) -> list[PersonSeen]:
    """Every person whose data ``envelope`` carries; the client first.

    The client (the identity part) is concerned by every category present. A household member
    by ``household`` (a guardian: custody or a parent's role); a child in the household of a
    child-protection transfer also by ``child_protection``; a person who entrusted a part by
    ``entrusted`` — matched to the household member of the same role or name where that is
    unambiguous, else a person of their own. Pure: reads nothing but the envelope.
    """
    present = {str(c) for c in envelope.categories}
    client = PersonSeen({CLIENT}, set(present))
    for part in envelope.parts:
        if isinstance(part.content, IdentityData):
            content = part.content
            client.identifiers += [(i.system, i.value) for i in content.identifiers]
            if client.name is None and content.name is not None:
                client.name = content.name.normalised()
            client.birth_date = client.birth_date or content.birth_date
    protection = (Category.CHILD_PROTECTION in envelope.categories
                  or envelope.purpose == Purpose.CHILD_PROTECTION)
    others: list[PersonSeen] = []
    for part in envelope.parts:
        if not isinstance(part.content, HouseholdData):
            continue
        for member in part.content.members:
            person = member.person
            role = (GUARDIAN if member.has_custody or member.role in _GUARDIAN_ROLES
                    else CHILD if protection and member.role == HouseholdRole.CHILD else MEMBER)
            seen = PersonSeen(
                {role}, {str(Category.HOUSEHOLD)},
                [(i.system, i.value) for i in person.identifiers],
                person.name.normalised() if person.name is not None else None,
                person.birth_date, household_role=str(member.role),
            )
            if role == CHILD and str(Category.CHILD_PROTECTION) in present:
                seen.categories.add(str(Category.CHILD_PROTECTION))
            _merge_into(others, seen)
    for part in envelope.parts:
        grantor = part.entrusted_by
        if grantor is None:
            continue
        if grantor.relation == PersonRelation.SELF:
            continue  # the client entrusted it: already concerned by every category
        name = grantor.name.normalised() if grantor.name is not None else None
        match = _entruster_match(others, grantor.relation, name)
        if match is None:
            match = PersonSeen(set(), set(), name=name,
                               relation=None if name else str(grantor.relation))
            others.append(match)
        match.roles.add(ENTRUSTER)
        match.categories.add(str(Category.ENTRUSTED))
    return [client, *others[:_MAX_PERSONS]]


def _same(a: PersonSeen, b: PersonSeen) -> bool:
    if a.identifiers and b.identifiers:
        return bool(set(a.identifiers) & set(b.identifiers))
    return (a.name is not None and a.name == b.name and a.birth_date == b.birth_date
            and not a.identifiers and not b.identifiers)


def _merge_into(people: list[PersonSeen], seen: PersonSeen) -> None:
    for person in people:
        if _same(person, seen):
            person.roles |= seen.roles
            person.categories |= seen.categories
            person.identifiers += [i for i in seen.identifiers if i not in person.identifiers]
            return
    people.append(seen)


def _entruster_match(
    people: Sequence[PersonSeen], relation: PersonRelation, name: str | None
) -> PersonSeen | None:
    if name is not None:
        named = [p for p in people if p.name == name]
        return named[0] if len(named) == 1 else None
    roles = {str(r) for r in _RELATION_ROLES.get(relation, set())}
    by_role = [p for p in people if p.household_role in roles]
    return by_role[0] if len(by_role) == 1 else None


# --- references -------------------------------------------------------------------------------


def subject_reference(key: bytes, person: PersonSeen, *, scope: str) -> str:
    """The pseudonymous reference of a person not registered as a client (see module doc)."""
    if person.identifiers:
        system, value = min(person.identifiers)
        material = f"id\x1f{system}\x1f{value}"
    else:
        birth = person.birth_date.isoformat() if person.birth_date else ""
        who = person.name if person.name is not None else f"relation:{person.relation}"
        material = f"seen\x1f{scope}\x1f{who}\x1f{birth}"
    digest = hmac.new(key, material.encode(), hashlib.sha256).hexdigest()
    return SUBJECT_PREFIX + digest[:24]


_KEYS: dict[str, bytes] = {}
_KEYS_LOCK = Lock()


def subject_key(conn: Connection) -> bytes:
    """The store's reference key (made by migration 0006), cached per database."""
    url = conn.engine.url.render_as_string(hide_password=True)
    with _KEYS_LOCK:
        key = _KEYS.get(url)
    if key is None:
        value = conn.execute(
            select(RegistrySecretRow.value).where(RegistrySecretRow.name == "subject_key")
        ).scalar_one_or_none()
        if value is None:
            raise NotFound("the registry's subject key is missing; run the migrations")
        key = bytes.fromhex(value)
        with _KEYS_LOCK:
            _KEYS[url] = key
    return key


def _registered_owners(
    conn: Connection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    rows = conn.execute(
        select(ClientIdentifierRow.system, ClientIdentifierRow.value,
               ClientIdentifierRow.client_id)
        .where(or_(*(and_(ClientIdentifierRow.system == s, ClientIdentifierRow.value == v)
                     for s, v in wanted)))
    )
    return {(s, v): c for s, v, c in rows}


def index_subjects(
    db: Database, envelope: TransferEnvelope, *, client_id: str | None, at: datetime
) -> list[dict[str, object]]:
    """The ``subjects`` of the envelope's audit entries; registers new pseudonyms.

    The client resolved by the gate keeps its client id. Another person whose identifier is
    registered is named by that client's id (an exact identifier is the registry's own link);
    everyone else by a pseudonym, recorded in ``data_subjects`` the first time it is seen. Runs
    in its own short transaction before the audit append: a pseudonym registered for a transfer
    whose append then fails only says the person was seen.
    """
    people = persons_in(envelope)
    subjects: list[dict[str, object]] = []
    if len(people) == 1 and client_id is not None:
        _add_subject(subjects, client_id, people[0])
        return subjects  # only the resolved client: nothing to look up or register
    scope = client_id or f"sender:{envelope.sender}"
    url = db.engine.url.render_as_string(hide_password=True)
    new: list[tuple[str, PersonSeen]] = []
    # Reads only, and only what this process does not know yet: in the steady state every
    # person was registered before, so the decision path neither queries nor locks for it.
    with ExitStack() as stack:
        opened: list[Connection] = []

        def conn() -> Connection:
            if not opened:
                opened.append(stack.enter_context(db.snapshot_read()))
            return opened[0]

        others = people[1:] if client_id is not None else people
        pairs = [i for p in others for i in p.identifiers]
        owners = _registered_owners(conn(), pairs) if pairs else {}
        key = _KEYS.get(url)
        for n, person in enumerate(people):
            if n == 0 and client_id is not None:
                ref = client_id
            else:
                owned = {owners[i] for i in person.identifiers if i in owners}
                if len(owned) == 1:
                    ref = owned.pop()
                else:
                    key = key or subject_key(conn())
                    ref = subject_reference(key, person, scope=scope)
                    if (url, ref, tuple(sorted(person.identifiers))) not in _REGISTERED:
                        new.append((ref, person))
            _add_subject(subjects, ref, person)
        missing = _missing(conn(), new) if new else []
    if missing:
        with db.connection(immediate=True) as write:
            _register(write, missing, scope_client_id=client_id, seen_by=envelope.sender, at=at)
    if len(_REGISTERED) > _REGISTERED_MAX:
        _REGISTERED.clear()
    _REGISTERED.update((url, ref, tuple(sorted(p.identifiers))) for ref, p in new)
    return subjects


#: (database, reference, identifiers) this process knows to be registered; bounded.
_REGISTERED: set[tuple[str, str, tuple[tuple[str, str], ...]]] = set()
_REGISTERED_MAX = 100_000


def _missing(conn: Connection, seen: list[tuple[str, PersonSeen]]) -> list[tuple[str, PersonSeen]]:
    refs = sorted({ref for ref, _ in seen})
    known = set(conn.execute(select(DataSubjectRow.ref).where(DataSubjectRow.ref.in_(refs)))
                .scalars())
    idents = {(r, s, v) for r, s, v in conn.execute(
        select(DataSubjectIdentifierRow.ref, DataSubjectIdentifierRow.system,
               DataSubjectIdentifierRow.value).where(DataSubjectIdentifierRow.ref.in_(refs)))}
    return [(ref, p) for ref, p in seen
            if ref not in known or any((ref, s, v) not in idents for s, v in p.identifiers)]


def _add_subject(subjects: list[dict[str, object]], ref: str, person: PersonSeen) -> None:
    for existing in subjects:
        if existing["ref"] == ref:  # e.g. a member whose identifier is the client's own
            existing["roles"] = sorted({*existing["roles"], *person.roles})  # type: ignore[misc]
            existing["categories"] = sorted(
                {*existing["categories"], *person.categories})  # type: ignore[misc]
            return
    subjects.append({"ref": ref, "roles": sorted(person.roles),
                     "categories": sorted(person.categories)})


def _register(
    conn: Connection, new: list[tuple[str, PersonSeen]], *, scope_client_id: str | None,
    seen_by: str, at: datetime,
) -> None:
    refs = sorted({ref for ref, _ in new})
    known = set(conn.execute(select(DataSubjectRow.ref).where(DataSubjectRow.ref.in_(refs)))
                .scalars())
    seen_ids = {
        (r, s, v) for r, s, v in conn.execute(
            select(DataSubjectIdentifierRow.ref, DataSubjectIdentifierRow.system,
                   DataSubjectIdentifierRow.value)
            .where(DataSubjectIdentifierRow.ref.in_(refs)))
    }
    rows, ident_rows = [], []
    for ref, person in new:
        if ref not in known:
            known.add(ref)
            role = next((r for r in (GUARDIAN, CHILD, MEMBER, ENTRUSTER, CLIENT)
                         if r in person.roles), MEMBER)
            rows.append({
                "ref": ref, "role": role, "scope_client_id": scope_client_id,
                "seen_by": seen_by[:64], "first_seen_at": at,
                "name_normalised": person.name[:255] if person.name else None,
                "birth_date": person.birth_date,
            })
        for system, value in person.identifiers:
            if (ref, system, value) not in seen_ids:
                seen_ids.add((ref, system, value))
                ident_rows.append({"ref": ref, "system": system, "value": value})
    # Two gates may see the same new person at once: the first insert wins, the other's is a
    # no-op (the row it would write is the same).
    if rows:
        conn.execute(_insert_new(conn, DataSubjectRow), rows)
    if ident_rows:
        conn.execute(_insert_new(conn, DataSubjectIdentifierRow), ident_rows)


def _insert_new(conn: Connection, model: type[Any]) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    return sqlite.insert(model).on_conflict_do_nothing()


# --- finding a person, confirming a link ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonMatch:
    """A person a look-up found: a registered client, or a reference seen in a file.

    Candidates only: nothing is linked by finding it.
    """

    ref: str
    kind: str  # "client" or "subject"
    client_id: str | None  # the client (for a subject: the confirmed link, if any)
    birth_date: date | None
    identifiers: list[Identifier]
    role: str | None = None  # subject: how it was first seen
    seen_by: str | None = None  # subject: the agency whose file it was in
    scope_client_id: str | None = None  # subject: the client of that file
    linked_by: str | None = None


class SubjectIndex:
    """Find persons by identifier or by name and birth date; confirm a subject's link."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def by_identifier(self, system: str, value: str) -> list[PersonMatch]:
        """The client owning the identifier and every subject seen with it."""
        try:
            ident = Identifier(system=system, value=value)
        except ValueError:
            raise InputError(
                "identifier: the system must be a URI such as "
                "urn:casebridge:id:AGENCY:KIND and the value must not be empty") from None
        with self.db.connection() as conn:
            owner = conn.execute(
                select(ClientIdentifierRow.client_id).where(
                    ClientIdentifierRow.system == ident.system,
                    ClientIdentifierRow.value == ident.value)
            ).scalar_one_or_none()
            refs = sorted(set(conn.execute(
                select(DataSubjectIdentifierRow.ref).where(
                    DataSubjectIdentifierRow.system == ident.system,
                    DataSubjectIdentifierRow.value == ident.value)
            ).scalars()))
            return _matches(conn, [owner] if owner else [], refs)

    def by_name(self, name: str, birth_date: date | None) -> list[PersonMatch]:
        """Clients and subjects whose normalised name (and birth date, if given) match."""
        wanted = normalise_name(name)
        if not wanted:
            raise InputError("name: give a name such as 'Family, Given'")
        with self.db.connection() as conn:
            clients = select(ClientNameRow.client_id).where(
                ClientNameRow.name_normalised == wanted)
            subjects = select(DataSubjectRow.ref).where(
                DataSubjectRow.name_normalised == wanted)
            if birth_date is not None:
                clients = clients.where(ClientNameRow.birth_date == birth_date)
                subjects = subjects.where(DataSubjectRow.birth_date == birth_date)
            return _matches(conn, sorted(set(conn.execute(clients).scalars())),
                            sorted(set(conn.execute(subjects).scalars())))

    def link(self, ref: str, client_id: str, *, by: str) -> bool:
        """Confirm that subject ``ref`` is client ``client_id`` (a person's deliberate act).

        The identifiers seen with the subject are linked to the client as well (ConflictError
        if one belongs to another client). False if the link existed; ConflictError if the
        subject is linked to another client already: links are never moved or merged.
        """
        with self.db.session(immediate=True) as session:
            subject = session.get(DataSubjectRow, ref)
            if subject is None:
                raise NotFound(f"no person with reference '{ref}' was seen in a transfer")
            if session.get(ClientRow, client_id) is None:
                raise NotFound(f"client '{client_id}' is not in the registry")
            if subject.client_id == client_id:
                return False
            if subject.client_id is not None:
                raise ConflictError(
                    f"reference '{ref}' is already confirmed as client '{subject.client_id}'; "
                    "casebridge does not move or merge links")
            idents = session.execute(
                select(DataSubjectIdentifierRow.system, DataSubjectIdentifierRow.value)
                .where(DataSubjectIdentifierRow.ref == ref)).all()
            now = datetime.now(UTC)
            for system, value in idents:
                owner = session.scalar(select(ClientIdentifierRow.client_id).where(
                    ClientIdentifierRow.system == system, ClientIdentifierRow.value == value))
                if owner is not None and owner != client_id:
                    raise ConflictError(
                        f"an identifier seen with '{ref}' (system '{system}') belongs to client "
                        f"'{owner}'; casebridge does not merge clients")
                if owner is None:
                    session.add(ClientIdentifierRow(
                        client_id=client_id, system=system, value=value, linked_at=now,
                        linked_by=f"subject:{ref}:{by}"[:255]))
            subject.client_id = client_id
            subject.linked_by = by[:255]
            subject.linked_at = now
            return True

    def references_of(self, client_id: str) -> list[str]:
        """Every subject reference that stands for ``client_id``: confirmed links, and
        pseudonyms made from an identifier that is now registered to the client."""
        with self.db.connection() as conn:
            linked = set(conn.execute(
                select(DataSubjectRow.ref).where(DataSubjectRow.client_id == client_id)
            ).scalars())
            by_ident = set(conn.execute(
                select(DataSubjectIdentifierRow.ref).join(
                    ClientIdentifierRow,
                    and_(ClientIdentifierRow.system == DataSubjectIdentifierRow.system,
                         ClientIdentifierRow.value == DataSubjectIdentifierRow.value))
                .where(ClientIdentifierRow.client_id == client_id)
            ).scalars())
        return sorted(linked | by_ident)

    def subject(self, ref: str) -> PersonMatch | None:
        """One subject reference, or None."""
        with self.db.connection() as conn:
            found = _matches(conn, [], [ref])
        return found[0] if found else None


def _identifiers(conn: Connection, table: Any, owner: Any, owners: Sequence[str]
                 ) -> dict[str, list[Identifier]]:
    found: dict[str, list[Identifier]] = {}
    for key, system, value in conn.execute(
        select(owner, table.system, table.value).where(owner.in_(owners))
        .order_by(table.system, table.value)
    ):
        found.setdefault(key, []).append(Identifier(system=system, value=value))
    return found


def _matches(conn: Connection, client_ids: Sequence[str], refs: Sequence[str]) -> list[PersonMatch]:
    found: list[PersonMatch] = []
    if client_ids:
        births = dict(conn.execute(select(ClientRow.client_id, ClientRow.birth_date)
                                   .where(ClientRow.client_id.in_(client_ids))).all())
        idents = _identifiers(conn, ClientIdentifierRow, ClientIdentifierRow.client_id,
                              client_ids)
        found += [PersonMatch(cid, "client", cid, births.get(cid), idents.get(cid, []))
                  for cid in client_ids if cid in births]
    if refs:
        seen = _identifiers(conn, DataSubjectIdentifierRow, DataSubjectIdentifierRow.ref, refs)
        rows = conn.execute(select(DataSubjectRow).where(DataSubjectRow.ref.in_(refs))
                            .order_by(DataSubjectRow.first_seen_at, DataSubjectRow.ref)).all()
        found += [PersonMatch(s.ref, "subject", s.client_id, s.birth_date, seen.get(s.ref, []),
                              role=s.role, seen_by=s.seen_by, scope_client_id=s.scope_client_id,
                              linked_by=s.linked_by) for s in rows]
    return found
