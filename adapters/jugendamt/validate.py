"""Validate a youth-office export against ``fallakte-3.schema.json`` (JSON Schema 2020-12).

The schema is checked by ``jsonschema-rs`` (a Rust implementation of JSON Schema): the pure
Python ``jsonschema`` costs about 20x the bare ``json.loads`` of a message, which alone would
miss the adapter's throughput target. Error messages are written here from the error kind, so
they name the JSON pointer and the rule, never the offending value.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

from casebridge.adapters.json_input import at, pointer
from casebridge.errors import ParseError, Problem, SchemaError

SCHEMA_FILE = "fallakte-3.schema.json"


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of ``jugendamt-fallakte/3`` as shipped beside this module."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(schema(), validate_formats=True)


def _describe(kind: Any) -> str:
    name = kind.name
    detail = kind.as_dict()
    if name == "required":
        return f"missing required field '{detail['property']}'"
    if name == "additionalProperties":
        fields = ", ".join(f"'{f}'" for f in detail["unexpected"])
        return f"unknown field(s) {fields}: not part of jugendamt-fallakte/3"
    if name == "type":
        return f"must be of type {' or '.join(detail['types'])}"
    if name == "const":
        return f"must be '{detail['expected_value']}'"
    if name == "enum":
        return f"must be one of {', '.join(map(str, detail['options']))}"
    if name == "format":
        return {"date": "not a valid date (YYYY-MM-DD)",
                "date-time": "not a valid date-time with offset (RFC 3339)"}.get(
            detail["format"], f"not a valid {detail['format']}")
    if name == "minLength" or (name == "pattern" and detail["pattern"] == "\\S"):
        return "must not be empty or blank"
    if name == "pattern":
        return "does not have the expected form (an id or code)"
    if name == "maxLength":
        return f"longer than {detail['limit']} characters"
    if name == "minItems":
        return f"needs at least {detail['limit']} item(s)"
    if name == "maxItems":
        return f"has more than {detail['limit']} items"
    if name == "minProperties":
        return "must not be empty"
    if name in ("minimum", "maximum"):
        return f"must be {'at least' if name == 'minimum' else 'at most'} {detail['limit']}"
    if name == "uniqueItems":
        return "items must be unique"
    if name == "anyOf":
        return "needs 'vorname' or 'nachname'"  # the only anyOf in the schema
    return f"violates the schema rule '{name}'"


def validate(data: Any, source: str) -> None:
    """Raise SchemaError listing every violation (JSON pointer + rule) if ``data`` is invalid."""
    validator = _validator()
    try:
        if validator.is_valid(data):  # fast path; error collection only for bad input
            return
        errors = list(validator.iter_errors(data))
    except ValueError:  # jsonschema-rs refuses input nested beyond its recursion limit
        raise ParseError(f"{source}: JSON nested too deeply",
                         problems=[Problem(source, "JSON is nested too deeply")]) from None
    problems = [Problem(at(source, pointer(err.instance_path)), _describe(err.kind))
                for err in errors]
    problems.sort(key=lambda p: p.location)
    raise SchemaError(
        f"{source}: not a valid jugendamt-fallakte/3 export ({len(problems)} problem(s))",
        problems=problems,
    )
