"""Case files and support plans."""

from __future__ import annotations

from datetime import date

from pydantic import Field, PositiveInt

from casebridge.canonical_model.base import CanonicalModel
from casebridge.canonical_model.types import AgencyId, NonEmptyStr, Text
from casebridge.canonical_model.vocabulary import CasePhaseField


class CaseFile(CanonicalModel):
    """An agency's case about the client (Akte, Fall, Kundenvorgang)."""

    agency: AgencyId
    local_case_id: NonEmptyStr = Field(description="Aktenzeichen, Fallnummer, … in that agency.")
    legal_basis: NonEmptyStr | None = Field(default=None, description="e.g. 'SGB XII'.")
    help_type: Text | None = Field(default=None, description="Hilfeart, e.g. '§30 SGB VIII'.")
    phase: CasePhaseField | None = None
    opened_on: date | None = None


class Goal(CanonicalModel):
    """A goal of a support plan with its sub-goals."""

    number: PositiveInt | None = None
    text: Text
    sub_goals: list[Text] = Field(default_factory=list)


class Measure(CanonicalModel):
    """A step or measure: what, towards which goal, who is responsible, by when."""

    goal: PositiveInt | None = Field(default=None, description="Number of the goal it serves.")
    text: Text
    responsible: NonEmptyStr | None = None
    due: date | None = None


class SupportPlan(CanonicalModel):
    """Hilfeplan (§36 SGB VIII), Kooperationsplan (§15 SGB II), Gesamtplan."""

    as_of: date | None = None
    goals: list[Goal] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)
