"""``casebridge schema``: write the JSON Schemas of the canonical model."""

from __future__ import annotations

from pathlib import Path

import typer

from casebridge.canonical_model.envelope import SCHEMA_VERSION
from casebridge.canonical_model.schema import SCHEMA_DIR, write_schemas
from casebridge.gateway.cli import app


@app.command()
def schema(
    out: Path = typer.Option(
        SCHEMA_DIR, "--out", "-o", help="Directory to write the *.schema.json files into."
    ),
) -> None:
    """Write the JSON Schema of the transfer envelope and of each canonical model."""
    for path in write_schemas(out):
        typer.echo(str(path))
    typer.echo(f"schema version {SCHEMA_VERSION}", err=True)
