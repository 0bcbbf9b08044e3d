"""``casebridge status``: where a referral stands; overdue referrals and plan measures.

``status --overdue`` lists referrals without an answer past their response time and, next to
them, measures of delivered support plans past their due date with the agency that follows each
up (:mod:`casebridge.routing.status`). ``--json`` prints ``{"referrals": [...], "measures":
[...]}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer

from casebridge.db import get_database
from casebridge.errors import InputError
from casebridge.gateway.cli import app
from casebridge.routing.status import ReferralStatusService, ReferralView
from casebridge.settings import get_settings


def _service() -> ReferralStatusService:
    return ReferralStatusService(get_database(get_settings().effective_database_url))


def print_referral(view: ReferralView, now: datetime) -> None:
    """The lifecycle of one referral, readably."""
    r = view.referral
    flag = "  OVERDUE" if view.overdue(now) else ""
    typer.echo(f"referral {r.message_id}: {r.status}{flag}")
    typer.echo(f"  from {r.sender} to {', '.join(r.recipients)} for purpose '{r.purpose}'")
    typer.echo(f"  requested {r.requested_at.isoformat(timespec='seconds')}, answer due "
               f"{view.due_at.isoformat(timespec='seconds')} ({view.response_days} working days)")
    for change in r.history:
        typer.echo(f"  {change.at.isoformat(timespec='seconds')}  {change.status:<11} reported "
                   f"by {change.reported_by} (message {change.message_id})")
    for change in view.ignored:
        typer.echo(f"  {change.at.isoformat(timespec='seconds')}  {change.status:<11} from "
                   f"{change.reported_by} ignored: the lifecycle does not allow it")


@app.command()
def status(
    referral_id: str = typer.Argument(None, metavar="REFERRAL-ID",
                                      help="Message id of the referral."),
    overdue: bool = typer.Option(
        False, "--overdue", help="List referrals without an answer past their response time "
        "and plan measures past their due date."),
    sender: str = typer.Option(
        None, "--sender", metavar="AGENCY",
        help="With --overdue: only this agency's referrals and the measures it follows up."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Show a referral's lifecycle, or list overdue referrals and plan measures (Wiedervorlage)."""
    now = datetime.now(UTC)
    if overdue == (referral_id is not None):
        raise InputError("give either REFERRAL-ID or --overdue")
    service = _service()
    if referral_id is not None:
        view = service.require(referral_id)
        if as_json:
            typer.echo(json.dumps(view.as_report(now), indent=2, ensure_ascii=False))
        else:
            print_referral(view, now)
        return
    views = service.overdue(now=now, sender=sender)
    measures = service.overdue_measures(today=now.date(), agency=sender)
    if as_json:
        typer.echo(json.dumps({"referrals": [v.as_report(now) for v in views],
                               "measures": [m.as_report(now.date()) for m in measures]},
                              indent=2, ensure_ascii=False))
        return
    if not views:
        typer.echo("no overdue referrals")
    for v in views:
        r = v.referral
        typer.echo(f"{r.message_id}  from {r.sender} to {', '.join(r.recipients)}  due "
                   f"{v.due_at.isoformat(timespec='seconds')}  status {r.status}")
    if not measures:
        typer.echo("no overdue measures")
    for m in measures:
        goal = f", goal {m.goal}" if m.goal is not None else ""
        typer.echo(f"measure {m.position}{goal} of plan {m.plan_message_id} ({m.owner})  due "
                   f"{m.due.isoformat()}  follow-up by {m.follow_up_by} "
                   f"(responsible: {m.responsible_agency or m.responsible_role})")
