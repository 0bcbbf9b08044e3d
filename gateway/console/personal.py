"""Keeping personal data out of DPO review comments before they enter the hash chain.

A review comment is appended to the audit chain, which is never edited, so a name or birth date
written into it could never be removed again. Before the append, the comment is checked against
what casebridge knows of the person concerned (the registry's recorded names and birth dates of
the override's client) and for statements of birth in general ("geb.", "geboren", "born", "*"
before a date). Matching uses the registry's own name normalisation, so "Yılmaz" in the
comment matches "Yilmaz" on record. The result names *what* was found, never the value.
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from casebridge.canonical_model import normalise_name
from casebridge.consent.store import ClientNameRow, ClientRow
from casebridge.db import Database

#: name parts shorter than this are initials or particles ("von"), too common to refuse
_MIN_PART = 3
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_BIRTH_MARKER = re.compile(
    r"\b(?:geb\.|geboren|geburtsdatum|geburtstag|born|birth\s*date|date\s+of\s+birth|d\.\s*o\.\s*b\.?)"
    r"|\*\s*\d", re.IGNORECASE)
_MONTHS = {
    name: n for n, names in enumerate((
        ("januar", "jänner", "january", "jan"), ("februar", "february", "feb"),
        ("märz", "maerz", "march", "mär", "mar"), ("april", "apr"), ("mai", "may"),
        ("juni", "june", "jun"), ("juli", "july", "jul"), ("august", "aug"),
        ("september", "sept", "sep"), ("oktober", "october", "okt", "oct"),
        ("november", "nov"), ("dezember", "december", "dez", "dec")), start=1)
    for name in names
}
_NUMERIC = re.compile(
    r"\b(?P<d>\d{1,2})\s*[./]\s*(?P<m>\d{1,2})\s*[./]\s*(?P<y>\d{4}|\d{2})\b"
    r"|\b(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})\b")
_WORDED = re.compile(r"\b(?P<d>\d{1,2})\.?\s+(?P<m>[^\W\d_]+)\.?\s+(?P<y>\d{4})\b")


def _dates(text: str) -> set[date]:
    """Every calendar date written in ``text`` (two-digit years read both as 19xx and 20xx)."""
    found: set[date] = set()

    def add(year: int, month: int, day: int) -> None:
        try:
            found.add(date(year, month, day))
        except ValueError:
            pass

    for m in _NUMERIC.finditer(text):
        if m.group("iy"):
            add(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
            continue
        day, month, year = int(m.group("d")), int(m.group("m")), m.group("y")
        years = [int(year)] if len(year) == 4 else [1900 + int(year), 2000 + int(year)]
        for y in years:
            add(y, month, day)
    for m in _WORDED.finditer(text):
        month_number = _MONTHS.get(m.group("m").casefold())
        if month_number is not None:
            add(int(m.group("y")), month_number, int(m.group("d")))
    return found


def _name_parts(names: list[str]) -> set[str]:
    parts: set[str] = set()
    for name in names:
        parts |= {w for w in _WORD.findall(name) if len(w) >= _MIN_PART}
    return parts


def personal_data_in(db: Database, comment: str, client_id: str | None) -> list[str]:
    """What personal data of the person concerned ``comment`` contains, as label keys
    (``personal.name``, ``personal.birth_date``, ``personal.birth_marker``); empty if none."""
    names: list[str] = []
    births: set[date] = set()
    if client_id:
        with db.session() as session:
            for name, birth in session.execute(
                select(ClientNameRow.name_normalised, ClientNameRow.birth_date)
                .where(ClientNameRow.client_id == client_id)
            ):
                names.append(name)
                if birth is not None:
                    births.add(birth)
            recorded = session.scalar(
                select(ClientRow.birth_date).where(ClientRow.client_id == client_id))
            if recorded is not None:
                births.add(recorded)
    found = []
    words = set(_WORD.findall(normalise_name(comment)))
    if words & _name_parts(names):
        found.append("personal.name")
    if births & _dates(comment):
        found.append("personal.birth_date")
    if _BIRTH_MARKER.search(comment):
        found.append("personal.birth_marker")
    return found
