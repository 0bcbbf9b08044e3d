"""``casebridge translate``: a native message to canonical JSON, or to another system's format.

Output of ``--to canonical``: one envelope is printed as a JSON object; a file holding several
messages (a social-office ``Fallmitteilungen`` file) as a JSON array of envelopes. Output of
``--to SYSTEM``: the rendered native message; several envelopes go into one file where the target
format has a batch form (``render_all``, e.g. sozialamt), otherwise the documents are written one
after the other. Bad input exits with code 2 and one ``casebridge: <file>:<position>: <problem>``
line per problem on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from casebridge.adapters import Adapter, get_adapter
from casebridge.canonical_model import TransferEnvelope
from casebridge.errors import InputError, InputTooLarge, Problem, RenderError
from casebridge.gateway.cli import app
from casebridge.settings import get_settings

CANONICAL = "canonical"


def read_input(file: str, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of ``file`` (``-``: stdin) and the name to report; refused early when too big."""
    if file == "-":
        raw = sys.stdin.buffer.read(max_bytes + 1)
        return raw, "<stdin>"
    path = Path(file)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputTooLarge(
                f"{file}: too large",
                problems=[Problem(file, f"input exceeds the limit of {max_bytes} bytes")],
            )
        return path.read_bytes(), file
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"{file}: {reason}", problems=[Problem(file, reason)]) from None


def render(target: Adapter, envelopes: list[TransferEnvelope]) -> bytes:
    """The native bytes of ``envelopes`` in the target system's format."""
    batch = getattr(target, "render_all", None)
    if batch is not None and len(envelopes) > 1:
        return bytes(batch(envelopes))
    return b"".join(target.render(e) for e in envelopes)


def canonical_json(envelopes: list[TransferEnvelope]) -> str:
    """One envelope as an object, several as an array."""
    data = [e.model_dump(mode="json", exclude_none=True) for e in envelopes]
    return json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False)


@app.command()
def translate(
    file: str = typer.Argument(..., help="The native message file; '-' reads standard input."),
    source_system: str = typer.Option(
        ...,
        "--from",
        "-f",
        help="System that wrote the message: jobcenter, sozialamt, jugendamt, provider-fhir.",
    ),
    target: str = typer.Option(
        CANONICAL,
        "--to",
        "-t",
        help="'canonical' prints the envelope(s) as JSON; a system name renders them natively.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the result to this file instead of standard output."
    ),
) -> None:
    """Translate a native message into canonical JSON or into another system's native format."""
    max_bytes = get_settings().max_message_bytes
    reader = get_adapter(source_system, max_bytes=max_bytes)
    writer = None if target == CANONICAL else get_adapter(target, max_bytes=max_bytes)
    raw, name = read_input(file, max_bytes)
    envelopes = reader.parse(raw, source=name)
    if writer is None:
        result = (canonical_json(envelopes) + "\n").encode("utf-8")
    else:
        try:
            result = render(writer, envelopes)
        except RenderError as exc:  # name the file, as for every other problem
            where = f"{name}: rendering for {target}"
            raise RenderError(
                f"{where}: {exc.message}", problems=[Problem(where, line) for line in exc.lines()]
            ) from None
    if output is not None:
        output.write_bytes(result)
        return
    sys.stdout.buffer.write(result)
    sys.stdout.flush()
