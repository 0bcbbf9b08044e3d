"""Constrained scalar types shared by the canonical models."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

#: Text that must carry something: stripped, at least one character.
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: Free text with an upper bound so a hostile message cannot make one datum unbounded.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100_000)]
#: An agency id as used in every native system and in consents, e.g. ``jobcenter-duisburg``.
AgencyId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")
]
#: A message id: no whitespace, printable, bounded.
MessageId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}$")]
#: Identifier systems are URIs (``urn:casebridge:id:{agency}:{kind}``, ``urn:casebridge:client``).
IdentifierSystem = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9+.-]*:\S+$")]
#: A legal-basis code of ``urn:casebridge:legal-basis``, e.g. ``sgb-x-67b``, ``sgb-viii-8a``.
LegalBasisCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")]

_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def _check_partial_date(value: str) -> str:
    match = _PARTIAL_DATE.match(value)
    if not match:
        raise ValueError("must be YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = match.groups()
    if month and not 1 <= int(month) <= 12:
        raise ValueError("month is outside 01..12")
    if day:
        date(int(year), int(month), int(day))  # raises ValueError for impossible days
    return value


#: A date that may be known only to the year or month (e.g. a job held "2019-01" to "2022-06").
PartialDate = Annotated[str, AfterValidator(_check_partial_date)]


Count = Annotated[int, Field(ge=0)]
