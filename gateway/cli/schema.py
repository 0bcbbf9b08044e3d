"""``casebridge schema``: write the JSON Schemas of the canonical model."""

from __future__ import annotations

from pathlib import Path

import typer

from casebridge.canonical_model.envelope import SCHEMA_VERSION
from casebridge.canonical_model.schema import render, schema_documents, write_schemas
from casebridge.gateway.cli import app


@app.command()
def schema(
    out: Path = typer.Option(
        Path("."), "--out", "-o",
        help="Directory to write the *.schema.json files into (default: the current directory).",
    ),
    stdout: bool = typer.Option(
        False, "--stdout", help="Print the transfer envelope's schema instead of writing files."
    ),
) -> None:
    """Write the JSON Schema of the transfer envelope and of each canonical model."""
    # The default is the current directory, never the package's own schemas/ folder: in an
    # installed casebridge that folder is not the user's to change (the committed copies are
    # regenerated with `casebridge schema --out canonical_model/schemas` in a clone).
    if stdout:
        typer.echo(render(schema_documents()["envelope.schema.json"]), nl=False)
        return
    for path in write_schemas(out):
        typer.echo(str(path))
    typer.echo(f"schema version {SCHEMA_VERSION}", err=True)
