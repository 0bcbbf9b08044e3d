"""Referral status: working days, overdue referrals, lifecycle from status updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from casebridge.adapters import get_adapter
from casebridge.gateway.demo import sample_bytes
from casebridge.routing.status import ReferralStatusService, add_working_days, record_referral

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_working_days_skip_weekends():
    assert add_working_days(MONDAY, 1) == MONDAY + timedelta(days=1)
    assert add_working_days(MONDAY, 5) == MONDAY + timedelta(days=7)
    assert add_working_days(MONDAY, 10) == MONDAY + timedelta(days=14)
    friday = MONDAY + timedelta(days=4)
    assert add_working_days(friday, 1) == MONDAY + timedelta(days=7)
    saturday = MONDAY + timedelta(days=5)
    assert add_working_days(saturday, 1) == MONDAY + timedelta(days=7)


@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=1, max_value=60))
def test_working_days_property(offset_days, days):
    start = MONDAY + timedelta(days=offset_days)
    due = add_working_days(start, days)
    assert due.weekday() < 5
    span = [start + timedelta(days=i) for i in range(1, (due - start).days + 1)]
    assert sum(1 for d in span if d.weekday() < 5) == days


def test_unanswered_referral_becomes_overdue_only_after_its_response_time(db):
    referral = get_adapter("jobcenter").parse(sample_bytes("jobcenter/zuweisung-001.xml"))[0]
    with db.session() as s:
        assert record_referral(s, referral, ["suchtberatung-diakonie-du"], at=MONDAY,
                               response_days=10)
        assert not record_referral(s, referral, ["suchtberatung-diakonie-du"], at=MONDAY,
                                   response_days=10)
    service = ReferralStatusService(db)
    due = MONDAY + timedelta(days=14)
    assert service.overdue(now=due - timedelta(minutes=1)) == []
    [late] = service.overdue(now=due + timedelta(minutes=1))
    assert late.referral.message_id == "JC-DU-2026-000123"
    report = late.as_report(due + timedelta(minutes=1))
    assert report["overdue"] is True and report["status"] == "requested"
    assert service.overdue(now=due + timedelta(days=1), sender="sozialamt-duisburg") == []
