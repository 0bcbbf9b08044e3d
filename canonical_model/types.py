"""Constrained scalar types shared by the canonical models."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticKnownError

#: Text that must carry something: stripped, at least one character.
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

#: What pydantic-core's ``strip_whitespace`` removes (Rust ``str::trim``: Unicode White_Space).
#: Python's own ``str.strip()`` would also remove U+001C..U+001F.
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
TEXT_MAX = 100_000


def _text(value: str) -> str:
    # Same result and errors as StringConstraints(strip_whitespace=True, min_length=1,
    # max_length=TEXT_MAX), at a fraction of the cost for long texts: pydantic-core builds a new
    # string for every stripped value and counts characters over its UTF-8 form, which for a
    # note of a few kB costs about 1.5 µs; str.strip returns the same object when there is
    # nothing to strip, and len() is O(1).
    stripped = value.strip(_WHITESPACE)
    if not stripped:
        raise PydanticKnownError("string_too_short", {"min_length": 1})
    if len(stripped) > TEXT_MAX:
        raise PydanticKnownError("string_too_long", {"max_length": TEXT_MAX})
    return stripped


#: Free text with an upper bound so a hostile message cannot make one datum unbounded.
Text = Annotated[
    str,
    AfterValidator(_text),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": TEXT_MAX}),
]
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
