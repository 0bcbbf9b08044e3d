"""Rules every adapter applies to a statutory notification (rule 8) before it becomes an envelope.

A notification without consent names its legal basis and carries a written justification; both
travel to the recipient and into the DPO's review. What the formats cannot check themselves is
checked here once, so that every system refuses the same messages with the same words: a
child-protection purpose without basis or justification, a basis or justification on a message
of another purpose (it would claim an exception the sender did not ask for), and a child that is
not a minor. Whether a route admits the basis is the route table's question
(:meth:`casebridge.routing.routes.RouteTable.check`), not the adapter's.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from lxml import etree

from casebridge.adapters.xml import at, line, text_of
from casebridge.canonical_model import Purpose, TransferEnvelope
from casebridge.errors import MappingError, Problem

#: Below this age a person is a child for the youth office (§ 7 SGB VIII: Kind/Jugendlicher).
ADULT_AGE = 18


def claim_problem(purpose: Purpose, basis: str | None, justification: str | None) -> str | None:
    """Why a message's statutory claim is unusable, or None when it is complete or absent."""
    if purpose is Purpose.CHILD_PROTECTION:
        if basis is None and justification is None:
            return ("a child-protection notification needs its legal basis and a written "
                    "justification (§ 8a SGB VIII, § 4 KKG)")
        if basis is None:
            return "a child-protection notification needs its legal basis"
        if justification is None:
            return "a child-protection notification needs a written justification"
        return None
    if basis is not None or justification is not None:
        return ("a legal basis and justification belong to a child-protection notification "
                "only; this message has another purpose")
    return None


def version_refusal(
    envelope: TransferEnvelope, version: str, first: str, interface: str
) -> str | None:
    """Why a recipient whose ``interface`` runs ``version`` cannot receive ``envelope``: a
    statutory notification needs ``first`` or later (the versions before it have no element
    for it, and writing it as an ordinary message would hide what it is), else None."""
    if _number(version) >= _number(first) or (envelope.purpose is not Purpose.CHILD_PROTECTION
                            and envelope.statutory is None):
        return None
    return (f"the recipient runs {interface} {version}, which cannot carry a child-protection "
            f"notification (it needs {first} or later); nothing was sent to it")


def _number(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in version.split(".") if n.isdigit())


def is_minor(birth: date, on: date) -> bool:
    """Whether a person born on ``birth`` is under 18 on ``on``."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return years < ADULT_AGE


def xml_claim(
    purpose: Purpose,
    basis_el: etree._Element | None,
    why_el: etree._Element | None,
    message: etree._Element,
    source: str,
) -> dict[str, Any] | None:
    """The statutory claim of an XML message (``Rechtsgrundlage/@schluessel`` and
    ``Begruendung``), or None; MappingError at the offending element when it is unusable."""
    basis = None if basis_el is None else basis_el.get("schluessel")
    why = None if why_el is None else text_of(why_el, source)
    problem = claim_problem(purpose, basis, why)
    if problem is not None:
        where = basis_el if basis_el is not None else why_el if why_el is not None else message
        raise MappingError(f"{source}: statutory notification",
                           problems=[Problem(at(source, line(where)), problem)])
    return None if basis is None else {"legal_basis": basis, "justification": why}
