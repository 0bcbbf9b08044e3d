"""Turn pydantic's validation errors into casebridge problems that name fields, not values."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from casebridge.errors import ModelValidationError, Problem

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A readable dotted path (``parts[2].content.birth_date``) from a pydantic location."""
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        elif not out:
            out = str(item)
        else:
            out += f".{item}"
    return out or "(message)"


def problems_from(exc: ValidationError) -> list[Problem]:
    """One problem per pydantic error; the input value is deliberately not quoted."""
    # pydantic puts the discriminator tag into loc for tagged unions; it is noise for a reader.
    kinds = {"identity", "contact", "household", "benefit", "case_file", "support_plan",
             "child_protection", "statement", "note"}
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in kinds))
        msg = err["msg"].removeprefix("Value error, ")
        problems.append(Problem(field_path(loc), msg))
    return problems


def validate_json(model: type[M], data: bytes | str) -> M:
    """Parse JSON into ``model``; raise ModelValidationError naming every bad field."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise ModelValidationError(
            f"invalid {model.__name__}", problems=problems_from(exc)
        ) from None


def validate_python(model: type[M], data: object) -> M:
    """Validate Python data (dicts, model instances) into ``model`` with field-named errors."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ModelValidationError(
            f"invalid {model.__name__}", problems=problems_from(exc)
        ) from None
