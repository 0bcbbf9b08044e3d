"""``casebridge demo``: the README's main command.

It runs whatever part of the exchange exists, on the embedded defaults, and says what does not
exist yet. Today that is the canonical model: it loads the example referral envelope, validates
it and shows how its data is split into categorised parts -- the unit every consent decision
works on.
"""

from __future__ import annotations

import importlib.resources
from collections import Counter

import typer

from casebridge.canonical_model import TransferEnvelope, validate_json
from casebridge.gateway.cli import app

PENDING_STAGES = [
    ("adapters", "translate the four agency samples into canonical envelopes"),
    ("consent", "record the sample consents and decide each transfer"),
    ("routing", "deliver each permitted part to its recipient and verify the audit chain"),
]


def load_example_envelope() -> TransferEnvelope:
    """The example referral envelope shipped with the canonical model."""
    raw = (
        importlib.resources.files("casebridge.canonical_model")
        .joinpath("examples/referral-envelope.json")
        .read_bytes()
    )
    return validate_json(TransferEnvelope, raw)


@app.command()
def demo() -> None:
    """Run the exchange on the embedded defaults and show what happens at each step."""
    envelope = load_example_envelope()
    typer.echo(f"casebridge demo -- canonical model, schema version {envelope.schema_version}")
    typer.echo(
        f"  message {envelope.message_id}: {envelope.message_type} from {envelope.sender} "
        f"to {', '.join(envelope.recipients)} for purpose '{envelope.purpose}'"
    )
    counts = Counter(p.category for p in envelope.parts)
    for category, n in sorted(counts.items()):
        typer.echo(f"    {n} part(s) of category {category}")
    typer.echo("  every datum sits in one categorised part: the envelope validated.")
    for package, what in PENDING_STAGES:
        typer.echo(f"  not yet built: {package} -- will {what}")
