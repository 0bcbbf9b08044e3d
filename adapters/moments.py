"""Date-times as the native formats write them: ISO 8601 with an offset every format accepts.

The canonical model takes any aware datetime, but the formats do not take every offset: XSD
``xs:dateTime`` and FHIR ``dateTime`` allow whole minutes up to ±14:00, RFC 3339 (the youth
office's ``date-time``) whole minutes. A time whose offset is outside that is written in UTC:
the same instant, so reading it back gives an equal datetime. Rendered output is not validated
again at run time (the property tests validate it), so this is where the offset is made valid.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casebridge.errors import Problem, RenderError

_LIMIT = timedelta(hours=14)
_MINUTE = timedelta(minutes=1)


def iso(moment: datetime, where: str) -> str:
    """``moment`` in ISO 8601 with its own offset, or in UTC where that offset is not valid."""
    offset = moment.utcoffset()
    if offset is not None and (abs(offset) > _LIMIT or offset % _MINUTE):
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # year 1 or 9999 shifted out of range
            raise RenderError("a time is out of range",
                              problems=[Problem(where, "a time at the edge of year 1 or 9999 "
                                                "cannot be written in UTC")]) from None
    return moment.isoformat()
