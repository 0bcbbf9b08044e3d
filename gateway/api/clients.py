"""Clients: show, find by identifier, link an identifier, propose candidates.

For the consent desk and administrators. Look-ups that carry personal data (a name, an agency
identifier) are POSTs with a JSON body, so the data never appears in a URL, a proxy's access log
or a browser history. Candidates are proposals for a person to confirm, never links.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, BeforeValidator, Field
from starlette.convertors import StringConvertor, register_url_convertor

from casebridge.consent.registry import ClientInfo, ClientRegistry
from casebridge.errors import NotFound
from casebridge.gateway.deps import ConsentDesk, DatabaseDep
from casebridge.gateway.problems import problem_responses

router = APIRouter(prefix="/v1/clients", tags=["clients"])


class _ClientIdConvertor(StringConvertor):
    """A client id in a path: any segment but the names of this router's own operations.

    Without it ``/v1/clients/candidates`` also matches ``/{client_id}``, and a wrong method there
    would be answered with the ``Allow`` of the client read instead of the candidates search.
    """

    regex = "(?!(?:candidates|lookup)$)[^/]+"


register_url_convertor("client_id", _ClientIdConvertor())


class LinkedIdentifier(BaseModel):
    """An identifier of the client and how it was linked."""

    system: str
    value: str
    linked_by: str
    linked_at: datetime


class ClientView(BaseModel):
    """A client as the registry knows it."""

    client_id: str
    birth_date: date | None
    identifiers: list[LinkedIdentifier]


def _date_text_only(value: object) -> object:
    # pydantic would read 0 as 1970-01-01; a birth date is written YYYY-MM-DD.
    if not isinstance(value, str | date):
        raise ValueError("a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_date_text_only)]
_VISIBLE = r"[^\s\x85\ufeff]"


class IdentifierIn(BaseModel):
    """An agency identifier: its system URI and value."""

    # The canonical model's rules, so that the schema says what the server accepts. "Not
    # white space" is spelt out: \S means different sets in JSON Schema's (ECMA-262) regular
    # expressions and in pydantic's, which differ in U+0085 and U+FEFF.
    system: str = Field(min_length=1, max_length=255,
                        pattern=rf"^[a-z][a-z0-9+.-]*:{_VISIBLE}+$",
                        examples=["urn:casebridge:id:jobcenter-duisburg:kundennummer"])
    value: str = Field(min_length=1, max_length=255, pattern=_VISIBLE)


class CandidateQuery(BaseModel):
    """A name as written anywhere ('Family, Given') and, if known, the birth date."""

    name: str = Field(min_length=1, max_length=255)
    birth_date: IsoDate | None = None


class LinkResult(BaseModel):
    """Whether the link was new."""

    client_id: str
    linked: bool = Field(description="False: the identifier was already linked to this client.")


def _view(info: ClientInfo) -> ClientView:
    return ClientView(
        client_id=info.client_id,
        birth_date=info.birth_date,
        identifiers=[LinkedIdentifier.model_validate(link) for link in info.links],
    )


@router.get(
    "/{client_id:client_id}",
    response_model=ClientView,
    summary="Show a client and its identifiers",
    responses=problem_responses(401, 403, 404),
)
def show(client_id: str, _desk: ConsentDesk, db: DatabaseDep) -> ClientView:
    """The client with every linked identifier."""
    return _view(ClientRegistry(db).show(client_id))


@router.post(
    "/lookup",
    response_model=ClientView,
    summary="Find the client owning an identifier",
    responses=problem_responses(401, 403, 404, 422),
)
def lookup(identifier: IdentifierIn, _desk: ConsentDesk, db: DatabaseDep) -> ClientView:
    """The client an agency identifier is linked to."""
    registry = ClientRegistry(db)
    client_id = registry.find(identifier.system, identifier.value)
    if client_id is None:
        raise NotFound("no client has that identifier")
    return _view(registry.show(client_id))


@router.post(
    "/{client_id:client_id}/identifiers",
    response_model=LinkResult,
    status_code=201,
    summary="Link an agency identifier to a client",
    responses={
        200: {"model": LinkResult, "description": "Already linked to this client."},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
def link(
    client_id: str, identifier: IdentifierIn, desk: ConsentDesk, db: DatabaseDep,
    response: Response,
) -> LinkResult:
    """Link deliberately (409 if the identifier belongs to another client: never merged)."""
    created = ClientRegistry(db).link(client_id, identifier.system, identifier.value, by=desk.name)
    if not created:
        response.status_code = 200
    return LinkResult(client_id=client_id, linked=created)


@router.post(
    "/candidates",
    response_model=list[ClientView],
    summary="Propose clients by name and birth date",
    responses=problem_responses(401, 403, 422),
)
def candidates(query: CandidateQuery, _desk: ConsentDesk, db: DatabaseDep) -> list[ClientView]:
    """Clients whose recorded normalised name (and birth date) match: to confirm, not links."""
    return [_view(c) for c in ClientRegistry(db).candidates(query.name, query.birth_date)]
