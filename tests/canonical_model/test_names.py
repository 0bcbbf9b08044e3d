"""Names are kept as written; the normalised form is for matching only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casebridge.canonical_model import PersonName, normalise_name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Yılmaz, Ayşe", "Yilmaz, Ayse"),
        ("Müller, Jörg", "Mueller, Joerg"),
        ("Straße", "STRASSE"),
        ("Dvořák,  Antonín", "Dvorak, Antonin"),
        ("Meyer-Lüdenscheidt, Anna", "meyer luedenscheidt, anna"),
    ],
)
def test_normalised_forms_compare_equal(a: str, b: str) -> None:
    assert normalise_name(a) == normalise_name(b)


def test_different_people_stay_different() -> None:
    assert normalise_name("Yılmaz, Ayşe") != normalise_name("Yılmaz, Emre")


def test_name_is_kept_as_written() -> None:
    name = PersonName(family="Yılmaz", given=["Ayşe"])
    assert name.display() == "Yılmaz, Ayşe"
    assert name.normalised() == "yilmaz, ayse"


@given(st.text())
def test_normalisation_is_idempotent(text: str) -> None:
    once = normalise_name(text)
    assert normalise_name(once) == once
