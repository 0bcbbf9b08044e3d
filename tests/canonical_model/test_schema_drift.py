"""The committed JSON Schemas are exactly what the models generate."""

from __future__ import annotations

from casebridge.canonical_model.schema import SCHEMA_DIR, render, schema_documents


def test_committed_schemas_match_the_models() -> None:
    expected = schema_documents()
    committed = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert committed == set(expected), "run `casebridge schema` and commit the result"
    for name, schema in expected.items():
        on_disk = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert on_disk == render(schema), f"{name} drifted: run `casebridge schema` and commit"


def test_every_schema_carries_the_schema_version() -> None:
    for schema in schema_documents().values():
        assert schema["x-casebridge-schema-version"] == "1.0"
    envelope = schema_documents()["envelope.schema.json"]
    assert envelope["properties"]["schema_version"]["const"] == "1.0"


def test_schema_command_writes_the_files(run_cli, tmp_path) -> None:
    result = run_cli("schema", "--out", str(tmp_path))
    assert result.exit_code == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(schema_documents())
