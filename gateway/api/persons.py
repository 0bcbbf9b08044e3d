"""Find a person and confirm who they are: for the DPO and the consent desk.

A person is found by any agency identifier (the Kundennummer with its agency, a Fallnummer, …)
or by name and birth date. The answer lists *candidates*: registered clients, and persons seen
only inside another client's file (the mother among the youth office's ``sorgeberechtigte``) by
their pseudonymous reference. Nothing is linked by finding it; a case worker confirms that a
reference is a client with ``POST /v1/persons/{ref}/link`` — recorded in the audit trail — after
which that client's access report includes the transfers the reference was named in.

Look-ups carry personal data (a name, an identifier), so they are POSTs with a JSON body: the
data never appears in a URL, a proxy's access log or a browser history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from casebridge.canonical_model import agency_identifier_system
from casebridge.consent.audit import AuditTrail
from casebridge.consent.subjects import PersonMatch, SubjectIndex
from casebridge.db import Database
from casebridge.gateway.deps import DatabaseDep, PersonDesk
from casebridge.gateway.problems import problem_responses

router = APIRouter(prefix="/v1/persons", tags=["persons"])

LINK_KIND = "subject_linked"


class IdentifierView(BaseModel):
    """An agency identifier."""

    system: str
    value: str


class PersonView(BaseModel):
    """A candidate: a registered client, or a person seen in another client's file."""

    ref: str = Field(description="The client id, or the pseudonymous reference (s-…).")
    kind: str = Field(description="client, or subject (seen in a file, see seen_by).")
    client_id: str | None = Field(description="For a subject: the confirmed client, if any.")
    birth_date: date | None
    identifiers: list[IdentifierView]
    role: str | None = Field(None, description="Subject: guardian, household_member, child, "
                                               "entruster, client — as first seen.")
    seen_by: str | None = Field(None, description="Subject: the agency whose file it was in.")
    scope_client_id: str | None = Field(None, description="Subject: that file's client.")
    linked_by: str | None = None


class IdentifierQuery(BaseModel):
    """An agency identifier: the agency and the kind of identifier (e.g. jobcenter-duisburg,
    kundennummer — the system urn:casebridge:id:AGENCY:KIND) and its value."""

    agency: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", examples=["jobcenter-duisburg"])
    kind: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", examples=["kundennummer"])
    value: str = Field(min_length=1, max_length=255)

    @property
    def system_uri(self) -> str:
        """The identifier system as a URI."""
        return agency_identifier_system(self.agency, self.kind)


class NameQuery(BaseModel):
    """A name as written anywhere ('Family, Given') and, if known, the birth date."""

    name: str = Field(min_length=1, max_length=255)
    birth_date: date | None = None


class LinkIn(BaseModel):
    """The client a person seen in a file is, as a case worker confirmed it."""

    client_id: str = Field(min_length=1, max_length=64)


class LinkResult(BaseModel):
    """Whether the link was new."""

    ref: str
    client_id: str
    linked: bool = Field(description="False: it was confirmed before.")


def person_view(match: PersonMatch) -> PersonView:
    """The API form of a look-up result."""
    return PersonView(
        ref=match.ref, kind=match.kind, client_id=match.client_id, birth_date=match.birth_date,
        identifiers=[IdentifierView(system=i.system, value=i.value) for i in match.identifiers],
        role=match.role, seen_by=match.seen_by, scope_client_id=match.scope_client_id,
        linked_by=match.linked_by,
    )


def confirm_link(db: Database, ref: str, client_id: str, *, by: str, via: str) -> bool:
    """Confirm a subject's client and record it in the audit trail (API and console)."""
    created = SubjectIndex(db).link(ref, client_id, by=by)
    if created:
        AuditTrail(db).append_event(
            LINK_KIND, at=datetime.now(UTC), stage=via, client_id=client_id,
            details={"ref": ref, "by": by[:128]},
        )
    return created


@router.post(
    "/lookup",
    response_model=list[PersonView],
    summary="Find persons by an agency identifier",
    responses=problem_responses(401, 403, 422),
)
def lookup(query: IdentifierQuery, _reader: PersonDesk, db: DatabaseDep) -> list[PersonView]:
    """The client owning the identifier and every person seen with it in a transfer."""
    return [person_view(m) for m in SubjectIndex(db).by_identifier(query.system_uri, query.value)]


@router.post(
    "/candidates",
    response_model=list[PersonView],
    summary="Find persons by name and birth date",
    responses=problem_responses(401, 403, 422),
)
def candidates(query: NameQuery, _reader: PersonDesk, db: DatabaseDep) -> list[PersonView]:
    """Clients and persons seen in files whose name (and birth date) match: candidates for a
    person to confirm, never links."""
    return [person_view(m) for m in SubjectIndex(db).by_name(query.name, query.birth_date)]


@router.post(
    "/{ref}/link",
    response_model=LinkResult,
    status_code=201,
    summary="Confirm that a person seen in a file is a client",
    responses={
        200: {"model": LinkResult, "description": "Confirmed before."},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
def link(
    ref: Annotated[str, Path(min_length=3, max_length=32, pattern=r"^s-[0-9a-f]+$")],
    body: LinkIn, reader: PersonDesk, db: DatabaseDep, response: Response,
) -> LinkResult:
    """Deliberately (409 if the person is confirmed as another client: never moved)."""
    created = confirm_link(db, ref, body.client_id, by=reader.name, via="api")
    if not created:
        response.status_code = 200
    return LinkResult(ref=ref, client_id=body.client_id, linked=created)
