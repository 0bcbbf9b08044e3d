"""JSON Schemas of the canonical models, written by ``casebridge schema``.

The committed files under ``canonical_model/schemas/`` are the published contract for other
implementations; tests/canonical_model/test_schema_drift.py fails when they drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from casebridge.canonical_model.case import CaseFile, SupportPlan
from casebridge.canonical_model.consent import ConsentDirective, ConsentWithdrawal
from casebridge.canonical_model.envelope import SCHEMA_VERSION, TransferEnvelope
from casebridge.canonical_model.parts import Part
from casebridge.canonical_model.people import Agency, Client, HouseholdMember, Person
from casebridge.canonical_model.referral import Referral
from casebridge.canonical_model.validation import validate_json

SCHEMA_DIR = Path(__file__).parent / "schemas"

#: file stem -> model. The envelope first: it is the contract routing carries.
MODELS: dict[str, type[BaseModel]] = {
    "envelope": TransferEnvelope,
    "part": Part,
    "agency": Agency,
    "client": Client,
    "person": Person,
    "household-member": HouseholdMember,
    "case-file": CaseFile,
    "support-plan": SupportPlan,
    "referral": Referral,
    "consent-directive": ConsentDirective,
    "consent-withdrawal": ConsentWithdrawal,
}


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document (draft 2020-12) for every canonical model."""
    docs = {}
    for stem, model in MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:casebridge:schema:{SCHEMA_VERSION}:{stem}",
            "x-casebridge-schema-version": SCHEMA_VERSION,
            **schema,
        }
        docs[f"{stem}.schema.json"] = schema
    return docs


def render(schema: dict[str, Any]) -> str:
    """The exact text written to disk (stable key order, trailing newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schema_documents().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def example_envelope() -> TransferEnvelope:
    """The example referral envelope shipped beside the schemas (docs and tests use it)."""
    raw = (Path(__file__).parent / "examples" / "referral-envelope.json").read_bytes()
    return validate_json(TransferEnvelope, raw)
