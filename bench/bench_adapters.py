"""Adapters: native → canonical translation rate against the bare parse of the same bytes.

Each system is one entry of :data:`SYSTEMS`: a generator of varied native messages and the bare
parser that is its baseline (``lxml.etree.fromstring`` for XML, ``json.loads`` for JSON,
``Bundle.model_validate_json`` for FHIR). The adapter's rate includes every check: size bound,
encoding, DOCTYPE refusal, parse, XSD/JSON-Schema validation, mapping and canonical validation.

    python -m bench.run --only adapters [--quick]
    python -m bench.bench_adapters --profile jobcenter   # cProfile of the adapter's parse
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lxml import etree

from bench.common import Row
from casebridge.adapters import get_adapter
from casebridge.canonical_model import (
    Address,
    BenefitData,
    CaseFile,
    CaseFileData,
    ConferenceInfo,
    ContactData,
    ContactPoint,
    Goal,
    Identifier,
    IdentityData,
    Measure,
    Note,
    Part,
    PersonName,
    Statement,
    StatusInfo,
    SupportPlan,
    SupportPlanData,
    TransferEnvelope,
)

FAMILY = [
    "Yılmaz",
    "Müller",
    "Schmidt",
    "Kowalski",
    "Nguyễn",
    "Öztürk",
    "Łukasiewicz",
    "Weiß",
    "Petrović",
    "Schäfer",
    "Ivanova",
    "Al-Hassan",
    "Dąbrowski",
    "Fischer",
    "Šimić",
]
GIVEN = ["Ayşe", "Jürgen", "Anna", "Zoë", "Mehmet", "Ewa", "Đorđe", "Lena", "Jörg", "Chiara"]
WORDS = (
    "Wohnung Mietschulden Beratung Termin Gutachten Belastbarkeit Kind Schule Arbeit "
    "Teilzeit Energieschulden Räumungsklage Suchtberatung Gespräch vormittags Unterstützung "
    "Antrag Bescheid Kooperation Ziel Maßnahme Vermittlung"
).split()


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _name(rng: random.Random) -> PersonName:
    return PersonName(family=rng.choice(FAMILY), given=[rng.choice(GIVEN)])


def _moment(rng: random.Random) -> datetime:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return start + timedelta(minutes=rng.randint(0, 500_000))


def _statements(rng: random.Random, codes: list[tuple[str, str]], k: int) -> list[Part]:
    out = []
    for i in range(k):
        label, category = rng.choice(codes)
        out.append(
            Part(
                id=f"s{i}",
                category=category,
                content=Statement(label=label, text=_text(rng, 3, 40)),
            )
        )
    return out


def _notes(rng: random.Random, k: int) -> list[Part]:
    return [
        Part(id=f"n{i}", category="case_notes", content=Note(text=_text(rng, 5, 80)))
        for i in range(k)
    ]


def jobcenter_messages(n: int, seed: int = 1) -> list[bytes]:
    """``n`` varied job centre messages: about 80 % Zuweisung, 20 % Rueckmeldung."""
    rng = random.Random(seed)
    adapter = get_adapter("jobcenter")
    hemmnisse = [
        ("gesundheit", "health"),
        ("sucht", "addiction"),
        ("schulden", "debts"),
        ("wohnen", "housing"),
        ("familie", "household"),
        ("sonstige", "case_notes"),
    ]
    out = []
    for i in range(n):
        sender, recipient = (
            "jobcenter-duisburg",
            rng.choice(
                ["suchtberatung-diakonie-du", "schuldnerberatung-caritas-du", "sozialamt-duisburg"]
            ),
        )
        number = Identifier(
            system="urn:casebridge:id:jobcenter-duisburg:kundennummer",
            value=f"962D{rng.randint(100000, 999999)}",
        )
        if rng.random() < 0.2:
            env = TransferEnvelope(
                message_id=f"SB-{i}",
                correlation_id=f"JC-DU-{i}",
                message_type="status_update",
                purpose="service_delivery",
                sender=recipient,
                recipients=[sender],
                created_at=_moment(rng),
                status=StatusInfo(
                    status=rng.choice(["received", "accepted", "in_progress", "completed"]),
                    effective_on=date(2026, 1, 1) + timedelta(days=rng.randint(0, 300)),
                ),
                parts=[
                    Part(id="id", category="identity", content=IdentityData(identifiers=[number]))
                ],
            )
        else:
            purpose, mtype = rng.choice(
                [
                    ("referral", "referral"),
                    ("case_conference", "case_conference"),
                    ("joint_planning", "plan_update"),
                ]
            )
            parts = [
                Part(
                    id="id",
                    category="identity",
                    content=IdentityData(
                        identifiers=[number],
                        name=_name(rng),
                        birth_date=date(1950, 1, 1) + timedelta(days=rng.randint(0, 20000)),
                        sex=rng.choice(["female", "male"]),
                    ),
                ),
                Part(
                    id="c",
                    category="contact",
                    content=ContactData(
                        addresses=[
                            Address(
                                street="Musterstraße",
                                house_number=str(rng.randint(1, 99)),
                                postal_code="47053",
                                city="Duisburg",
                            )
                        ],
                        telecom=[
                            ContactPoint(system="phone", value=f"0203 {rng.randint(1000, 9999)}")
                        ],
                    ),
                ),
                Part(id="b", category="benefits", content=BenefitData(benefit_type="Bürgergeld")),
                Part(
                    id="edu",
                    category="education",
                    content=Statement(label="Schulabschluss", text="Hauptschulabschluss"),
                ),
                *_statements(rng, hemmnisse, rng.randint(1, 6)),
                Part(
                    id="plan",
                    category="support_plan",
                    content=SupportPlanData(
                        plan=SupportPlan(
                            goals=[Goal(number=g, text=_text(rng, 3, 10)) for g in range(1, 3)],
                            measures=[
                                Measure(goal=1, text=_text(rng, 3, 10), responsible="Kundin")
                            ],
                        )
                    ),
                ),
                *_notes(rng, rng.randint(0, 3)),
            ]
            env = TransferEnvelope(
                message_id=f"JC-DU-{i}",
                message_type=mtype,
                purpose=purpose,
                sender=sender,
                recipients=[recipient],
                created_at=_moment(rng),
                service=_text(rng, 3, 8),
                parts=parts,
            )
        out.append(adapter.render(env))
    return out


def sozialamt_messages(n: int, seed: int = 2) -> list[bytes]:
    """``n`` varied social office files, each holding one Fallmitteilung (some 2 or 3)."""
    rng = random.Random(seed)
    adapter = get_adapter("sozialamt")
    bereiche = [
        ("Wohnen", "housing"),
        ("Finanzen", "finances"),
        ("Schulden", "debts"),
        ("Gesundheit", "health"),
        ("Sucht", "addiction"),
        ("Arbeit", "employment"),
        ("Bildung", "education"),
        ("Familie", "household"),
    ]
    out = []
    for i in range(n):
        envelopes = []
        for k in range(1 if rng.random() < 0.8 else rng.randint(2, 3)):
            sender = "sozialamt-duisburg"
            akz = f"50-31-2026/{rng.randint(1000, 9999)}"
            case_file = CaseFile(
                agency=sender, local_case_id=akz, legal_basis="SGB XII", help_type=_text(rng, 3, 12)
            )
            purpose, mtype = rng.choice(
                [
                    ("referral", "referral"),
                    ("case_conference", "case_conference"),
                    ("joint_planning", "plan_update"),
                ]
            )
            parts = [
                Part(id="akte", category="benefits", content=CaseFileData(case_file=case_file)),
                Part(
                    id="id",
                    category="identity",
                    content=IdentityData(
                        identifiers=[
                            Identifier(
                                system="urn:casebridge:id:sozialamt-duisburg:aktenzeichen",
                                value=akz,
                            )
                        ],
                        name=_name(rng),
                        birth_date=date(1950, 1, 1) + timedelta(days=rng.randint(0, 20000)),
                    ),
                ),
                Part(
                    id="c",
                    category="contact",
                    content=ContactData(
                        addresses=[Address(text=f"Musterstr. {rng.randint(1, 99)}, 47053 Duisburg")]
                    ),
                ),
                *_statements(rng, bereiche, rng.randint(1, 8)),
                *_notes(rng, rng.randint(0, 3)),
            ]
            moment = _moment(rng).replace(second=0)
            envelopes.append(
                TransferEnvelope(
                    message_id=f"SA-DU-{i}-{k}",
                    message_type=mtype,
                    purpose=purpose,
                    sender=sender,
                    recipients=rng.sample(
                        ["jobcenter-duisburg", "jugendamt-duisburg", "suchtberatung-diakonie-du"],
                        rng.randint(1, 3),
                    ),
                    created_at=moment,
                    conference=ConferenceInfo(scheduled_at=moment + timedelta(days=7))
                    if mtype == "case_conference"
                    else None,
                    parts=parts,
                )
            )
        out.append(adapter.render_all(envelopes))
    return out


@dataclass(frozen=True)
class Entry:
    """One system in the benchmark: how to make its messages and what its baseline parse is."""

    make: Callable[[int], list[bytes]]
    baseline_name: str
    baseline: Callable[[bytes], Any]
    target: float


SYSTEMS: dict[str, Entry] = {
    "jobcenter": Entry(jobcenter_messages, "lxml fromstring", etree.fromstring, 0.25),
    "sozialamt": Entry(sozialamt_messages, "lxml fromstring", etree.fromstring, 0.25),
}


def _best(fn: Callable[[bytes], Any], messages: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for raw in messages:
            fn(raw)
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool = False) -> list[Row]:
    """Per system: envelopes/s of ``adapter.parse`` vs the bare parse of the same bytes."""
    n = 500 if quick else 10_000
    rows = []
    for system, entry in SYSTEMS.items():
        messages = entry.make(n)
        adapter = get_adapter(system)
        envelopes = sum(len(adapter.parse(raw)) for raw in messages)  # warm up, count
        adapter_s = _best(adapter.parse, messages, 3)
        baseline_s = _best(entry.baseline, messages, 3)
        size = sum(map(len, messages)) / len(messages)
        rows.append(
            Row(
                benchmark=f"adapters/{system}",
                metric="msg/s",
                value=envelopes / adapter_s,
                baseline_name=entry.baseline_name,
                baseline=envelopes / baseline_s,
                target=f">= {entry.target}",
                note=f"{len(messages)} files, {envelopes} messages, {size:,.0f} bytes/file on "
                "average; parse incl. encoding/DOCTYPE checks, schema validation, mapping",
            )
        )
    return rows


def profile(system: str, n: int = 2000) -> None:
    """Print where ``adapter.parse`` spends its time (cProfile, top functions by own time)."""
    import cProfile
    import pstats

    messages = SYSTEMS[system].make(n)
    adapter = get_adapter(system)
    profiler = cProfile.Profile()
    profiler.enable()
    for raw in messages:
        adapter.parse(raw)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--profile":
        profile(sys.argv[2])
    else:
        from bench.run import print_table

        print_table(run(quick="--quick" in sys.argv))
