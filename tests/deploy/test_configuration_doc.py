"""docs/configuration.md lists every setting with its real default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from casebridge.settings import Settings
from tests.deploy.conftest import REPO

DOC = REPO / "docs" / "configuration.md"
#: Variables documented that are not Settings fields (read by other parts, or meta-variables).
EXTRA = {"CASEBRIDGE_ENV_FILE", "CASEBRIDGE_HEALTHCHECK_URL", "CASEBRIDGE_<NAME>_FILE"}


def _rows() -> dict[str, str]:
    """First-column variable -> the whole table row, for every table in the document."""
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| `(CASEBRIDGE_[A-Z_<>]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_has_a_row(name) -> None:
    assert f"CASEBRIDGE_{name.upper()}" in _rows(), f"docs/configuration.md lacks {name}"


def test_no_row_for_a_setting_that_does_not_exist() -> None:
    known = {f"CASEBRIDGE_{n.upper()}" for n in Settings.model_fields} | EXTRA
    assert set(_rows()) <= known, set(_rows()) - known


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_documented_default_is_the_real_one(name) -> None:
    field = Settings.model_fields[name]
    row = _rows()[f"CASEBRIDGE_{name.upper()}"]
    default_cell = row.split("|")[2]
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, Path):
            assert "data directory" in default_cell
        else:
            assert f"`{value!r}`".replace("'", '"') in default_cell, (name, value)
    elif field.default is None:
        assert default_cell.strip().startswith("unset"), name
    elif isinstance(field.default, bool):
        assert f"`{str(field.default).lower()}`" in default_cell, (name, field.default)
    else:
        assert f"`{field.default}`" in default_cell, (name, field.default)


def test_documented_refusals_match_the_code() -> None:
    from casebridge.settings import DEFAULT_PASSWORDS

    text = DOC.read_text()
    for password in DEFAULT_PASSWORDS:
        assert f"`{password}`" in text, password
