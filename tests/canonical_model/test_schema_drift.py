"""The committed JSON Schemas are exactly what the models generate."""

from __future__ import annotations

import json

from casebridge.canonical_model.schema import SCHEMA_DIR, render, schema_documents

REGENERATE = "run `casebridge schema --out canonical_model/schemas` and commit"


def test_committed_schemas_match_the_models() -> None:
    expected = schema_documents()
    committed = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert committed == set(expected), REGENERATE
    for name, schema in expected.items():
        on_disk = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert on_disk == render(schema), f"{name} drifted: {REGENERATE}"


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


def test_schema_command_writes_into_the_current_directory_not_the_package(
    run_cli, tmp_path, monkeypatch
) -> None:
    before = {p: p.stat().st_mtime_ns for p in SCHEMA_DIR.iterdir()}
    monkeypatch.chdir(tmp_path)
    result = run_cli("schema")
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(schema_documents())
    assert {p: p.stat().st_mtime_ns for p in SCHEMA_DIR.iterdir()} == before


def test_schema_stdout_prints_the_envelope_schema(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("schema", "--stdout")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == render(schema_documents()["envelope.schema.json"])
    assert json.loads(result.stdout)["$id"].endswith(":envelope")
    assert list(tmp_path.iterdir()) == []
