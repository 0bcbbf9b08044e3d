"""``casebridge dlq``: list, show and replay dead letters (metadata only, never content)."""

from __future__ import annotations

import json

import typer
from rich.progress import Progress

from casebridge.errors import InputError
from casebridge.gateway.cli import app
from casebridge.routing.dlq import DeadLetters
from casebridge.routing.runtime import Routing

dlq_app = typer.Typer(help="Inspect and replay the dead-letter queue.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _dead_letters() -> tuple[Routing, DeadLetters]:
    routing = Routing.from_settings()
    return routing, DeadLetters(routing)


@dlq_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List dead messages, one row each: id, message, recipient, reason, attempts, failures."""
    routing, dlq = _dead_letters()
    try:
        letters = dlq.list()
    finally:
        routing.close()
    if as_json:
        typer.echo(json.dumps([d.as_report() for d in letters], indent=2, ensure_ascii=False))
        return
    if not letters:
        typer.echo("the dead-letter queue is empty")
    for d in letters:
        copies = f", {d.copies} copies" if d.copies > 1 else ""
        typer.echo(f"{d.id}  {d.message_id}  -> {d.recipient}  {d.reason}  "
                   f"(attempts {d.attempts}{copies}; first failure {d.first_failure}, "
                   f"last {d.dead_at})")


@dlq_app.command()
def show(ident: str = typer.Argument(..., metavar="ID", help="Dead-letter id (from list).")
         ) -> None:
    """Show one dead letter's metadata, reason and the recipient's answer."""
    routing, dlq = _dead_letters()
    try:
        letter = dlq.show(ident)
    finally:
        routing.close()
    typer.echo(json.dumps(letter.as_report(), indent=2, ensure_ascii=False))


@dlq_app.command()
def replay(
    ident: list[str] = typer.Argument(None, metavar="[ID]...", help="Dead letters to replay."),
    all_: bool = typer.Option(False, "--all", help="Replay every dead letter."),
) -> None:
    """Replay dead letters: consent is checked again, then they are queued for delivery."""
    if bool(ident) == all_:
        raise InputError("give dead-letter ids or --all")
    routing, dlq = _dead_letters()
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("replaying", total=None)

            def step(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            outcomes = dlq.replay(None if all_ else ident, progress=step)
    finally:
        routing.close()
    for o in outcomes:
        typer.echo(f"{o.id}  {o.result}" + (f" ({o.reason})" if o.reason else ""))
    skipped = sum(o.result == "skipped_delivered" for o in outcomes)
    typer.echo(f"{sum(o.result == 'requeued' for o in outcomes)} of {len(outcomes)} requeued"
               + (f", {skipped} skipped (already delivered)" if skipped else ""))
