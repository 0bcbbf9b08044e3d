"""The base class of every canonical model: strict, immutable, no unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CanonicalModel(BaseModel):
    """Strict (no silent coercion), frozen (values, not records) and closed (extra fields fail).

    ``extra="forbid"`` is what keeps personal data from riding along outside a categorised part:
    a field that is not declared cannot be set.
    """

    model_config = ConfigDict(
        strict=True,
        frozen=True,
        extra="forbid",
        validate_default=True,
        use_enum_values=False,
    )
