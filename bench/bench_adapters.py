"""Adapters: native → canonical translation rate against a bare parse of the same bytes.

One module for all four systems. Each is an :class:`Entry`: a generator of varied native
messages (seeded, 10,000 per system; ``--quick``: 500) and the baselines its rate is compared
with, measured in the same run on the same bytes:

- jobcenter, sozialamt: ``lxml.etree.fromstring``; target >= 0.25.
- jugendamt: ``json.loads``; target >= 0.25.
- provider-fhir: fhir.resources' own validated parse (``Bundle``/``Task.model_validate_json``);
  target >= 0.5; the ratio to ``json.loads`` is reported too.

The adapter's rate includes every check: size bound, encoding, DOCTYPE refusal, parse,
XSD/JSON-Schema validation, mapping and canonical validation.

Timing is robust to a shared, noisy machine: the messages are timed in chunks; each chunk is
run ``REPEAT`` times with adapter and baselines interleaved, and the fastest run of each chunk
counts. A burst of load from another process then inflates one run of one chunk, not the result.
Like ``timeit``, the minimum mostly leaves out pauses of the cyclic garbage collector.

Rendering (canonical → native, what the worker and previews do for a recipient) is reported
per system and message type against the render of the previous release, which validated its
own output again (XSD for the XML systems, fhir.resources' model for FHIR JSON) and wrote JSON
with ``json.dumps``. That old path is kept here, as :data:`PREVIOUS_RENDER`, so the ratio (new
rate / old rate) is measured in one run on the same envelopes; for the JSON systems a third
variant (no validation, ``json.dumps``) splits the gain between the two changes. Each row is the
median of three runs, with the load average.

    python -m bench.run --only adapters [--quick]
    python -m bench.bench_adapters --profile jobcenter   # cProfile of the adapter's parse
    python -m bench.bench_adapters --render              # the render rows only
"""

from __future__ import annotations

import copy
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast

from lxml import etree

from bench.common import Row
from casebridge.adapters import get_adapter
from casebridge.adapters.jobcenter.read import HEMMNIS
from casebridge.adapters.sozialamt.read import BEREICH
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
from casebridge.gateway.demo import sample_bytes

T = TypeVar("T")

#: Messages per timed chunk, and how often each chunk is run (the fastest run counts). A chunk
#: stays well under a scheduler time slice (a few ms), so on a loaded machine some run of it is
#: usually not preempted; 50-message chunks measured the adapter up to 2x slow under load.
CHUNK = 5
REPEAT = 5

# --- XML systems ----------------------------------------------------------------------------

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
    hemmnisse = [(code, str(category)) for code, category in HEMMNIS.items()]
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
    bereiche = [(code, str(category)) for code, category in BEREICH.items()]
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


# --- JSON systems ---------------------------------------------------------------------------

J_GIVEN = ["Emre", "Ayşe", "Jürgen", "Zoë", "Łukasz", "Mária", "Анна", "Nguyễn Thị", "Sören"]
J_FAMILY = ["Yılmaz", "Müller", "Öztürk", "Kowalski", "Dvořák", "Petrenko", "Ben Ali", "Schäfer"]
J_WORDS = ("Gespräch Termin Schule Mutter Unterstützung Alltag Hilfe Fehlzeiten Wohnung Arbeit "
         "Beratung vereinbart berichtet möchte wöchentlich Woche").split()
ENTRUSTERS = [None, None, None, "kind", "mutter", "vater", "sorgeberechtigte", "Oma Ilse"]
CATEGORIES = ["health", "addiction", "criminal", "housing", "debts", "employment", None]


def _jtext(rng: random.Random) -> str:
    n = rng.choice([3, 8, 12, 20, 40, 60, 120, 400])
    return " ".join(rng.choice(J_WORDS) for _ in range(n))


def _date(rng: random.Random, start: int = 1950, end: int = 2027) -> str:
    return f"{rng.randint(start, end)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def jugendamt_messages(n: int, rng: random.Random) -> list[bytes]:
    """``n`` varied youth-office exports."""
    base = json.loads(sample_bytes("jugendamt/fall-001.json"))
    out = []
    for i in range(n):
        doc = copy.deepcopy(base)
        fall = doc["fall"]
        doc["zweck"] = rng.choice(["zuweisung", "fallkonferenz", "hilfeplanung", "kinderschutz"])
        if doc["zweck"] == "kinderschutz":  # required with that purpose (2026-12)
            doc["rechtsgrundlage"] = {"code": rng.choice(["sgb-viii-8a", "kkg-4"]),
                                      "begruendung": _jtext(rng)}
        fall["fallnummer"] = f"JA-51-2026-{i}"
        fall["kind"].update(vorname=rng.choice(J_GIVEN), nachname=rng.choice(J_FAMILY),
                            geburtsdatum=_date(rng, 2005, 2020))
        if rng.random() < 0.3:
            del fall["kind"]["schule"]
        fall["sorgeberechtigte"] = [
            {"vorname": rng.choice(J_GIVEN), "nachname": rng.choice(J_FAMILY),
             "geburtsdatum": _date(rng, 1960, 2000), "rolle": rng.choice(["Mutter", "Vater"]),
             "anschrift": {"strasse": "Musterstraße 12a", "plz": "47053", "ort": "Duisburg"}}
            for _ in range(rng.randint(0, 2))]
        if rng.random() < 0.2:
            del fall["hilfeplan"]
        else:
            fall["hilfeplan"]["ziele"] = [
                {"nr": k + 1, "text": _jtext(rng), "teilziele": [_jtext(rng)] * rng.randint(0, 3)}
                for k in range(rng.randint(0, 4))]
        fall["notizen"] = [{"datum": _date(rng, 2025, 2026), "text": _jtext(rng),
                            "anvertraut_von": rng.choice(ENTRUSTERS)}
                           for _ in range(rng.randint(0, 12))]
        out.append(json.dumps(doc, ensure_ascii=False).encode())
    return out


def fhir_messages(n: int, rng: random.Random) -> list[bytes]:
    """``n`` varied provider messages: 80 % referral bundles, 20 % Task status updates."""
    bundle = json.loads(sample_bytes("provider-fhir/referral-bundle-001.json"))
    task = json.loads(sample_bytes("provider-fhir/task-update-001.json"))
    out = []
    for i in range(n):
        if rng.random() < 0.2:
            doc = copy.deepcopy(task)
            doc["identifier"][0]["value"] = f"SB-{i}"
            doc["status"] = rng.choice(["received", "accepted", "in-progress", "completed"])
            out.append(json.dumps(doc, ensure_ascii=False).encode())
            continue
        doc = copy.deepcopy(bundle)
        patient, sr = doc["entry"][0]["resource"], doc["entry"][1]["resource"]
        patient["name"] = [{"family": rng.choice(J_FAMILY), "given": [rng.choice(J_GIVEN)]}]
        patient["birthDate"] = _date(rng)
        if rng.random() < 0.3:
            del patient["telecom"]
        sr["identifier"][0]["value"] = f"JC-DU-2026-{i}"
        sr["reasonCode"] = [_coded(rng, {"text": _jtext(rng)}) for _ in range(rng.randint(1, 4))]
        sr["note"] = [_coded(rng, {"text": _jtext(rng)}) for _ in range(rng.randint(0, 6))]
        out.append(json.dumps(doc, ensure_ascii=False).encode())
    return out


def _coded(rng: random.Random, element: dict[str, Any]) -> dict[str, Any]:
    category = rng.choice(CATEGORIES)
    if category and "text" in element and rng.random() < 0.5:
        element["coding"] = [{"system": "urn:casebridge:category", "code": category}]
    return element


def _fhir_reference(raw: bytes) -> object:
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.task import Task

    # Same dispatch the adapter needs: a Task update is not a Bundle.
    model = Task if raw.startswith(b'{"resourceType": "Task"') else Bundle
    return model.model_validate_json(raw)


def _fhir_bundle_form(messages: list[bytes]) -> list[bytes]:
    # fhir.resources' FHIR element models want JSON members as FHIR writes them; the adapter
    # coded some notes with a coding, which an Annotation does not have: use the casebridge
    # category extension there instead, so both sides read valid FHIR.
    out = []
    for raw in messages:
        doc = json.loads(raw)
        if doc["resourceType"] == "Bundle":
            for note in doc["entry"][1]["resource"].get("note", []):
                coding = note.pop("coding", None)
                if coding:
                    note["extension"] = [{"url": "urn:casebridge:category",
                                          "valueCode": coding[0]["code"]}]
        out.append(json.dumps(doc, ensure_ascii=False).encode())
    return out


# --- timing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One system: how to make its messages, its baselines and its target ratio."""

    make: Callable[[int], list[bytes]]
    baselines: tuple[tuple[str, Callable[[bytes], Any]], ...]
    target: float


SYSTEMS: dict[str, Entry] = {
    "jobcenter": Entry(jobcenter_messages, (("lxml fromstring", etree.fromstring),), 0.25),
    "sozialamt": Entry(sozialamt_messages, (("lxml fromstring", etree.fromstring),), 0.25),
    "jugendamt": Entry(
        lambda n: jugendamt_messages(n, random.Random(20261121)),
        (("json.loads", json.loads),),
        0.25,
    ),
    "provider-fhir": Entry(
        lambda n: _fhir_bundle_form(fhir_messages(n, random.Random(20261122))),
        (("fhir.resources model_validate_json", _fhir_reference), ("json.loads", json.loads)),
        0.5,
    ),
}


def interleaved(
    fns: Sequence[Callable[[T], Any]], messages: list[T], repeat: int = REPEAT
) -> list[float]:
    """Seconds each of ``fns`` needs for all ``messages`` (native bytes, or envelopes to
    render): per chunk, the fastest of ``repeat`` interleaved runs, summed over the chunks."""
    totals = [0.0] * len(fns)
    clock = time.perf_counter
    for start in range(0, len(messages), CHUNK):
        chunk = messages[start : start + CHUNK]
        best = [float("inf")] * len(fns)
        for _ in range(repeat):
            for i, fn in enumerate(fns):
                t0 = clock()
                for raw in chunk:
                    fn(raw)
                best[i] = min(best[i], clock() - t0)
        totals = [t + b for t, b in zip(totals, best, strict=True)]
    return totals


# --- rendering ------------------------------------------------------------------------------


def _jobcenter_validating(envelope: TransferEnvelope) -> bytes:
    """The job centre render of the previous release: build, validate against the XSD, write."""
    from casebridge.adapters import xml
    from casebridge.adapters.jobcenter import SCHEMA
    from casebridge.adapters.jobcenter.write import build

    root = build(envelope)
    if not xml.load_schema(SCHEMA).validate(root):
        raise AssertionError("rendered Zuweisung/Rueckmeldung violates the XSD")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _sozialamt_validating(envelope: TransferEnvelope) -> bytes:
    """The social office render of the previous release: build, validate, write ISO-8859-1."""
    from casebridge.adapters import xml
    from casebridge.adapters.sozialamt import SCHEMA
    from casebridge.adapters.sozialamt.write import build, document

    root = document([build(envelope)])
    if not xml.load_schema(SCHEMA).validate(root):
        raise AssertionError("rendered Fallmitteilungen violates the XSD")
    out = cast(bytes, etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1",
                                     pretty_print=True))
    if xml.looks_like_utf8(out):
        out = (b"<?xml version='1.0' encoding='ISO-8859-1'?>\n"
               + etree.tostring(root, encoding="us-ascii", pretty_print=True))
    return out


def _jugendamt_previous(envelope: TransferEnvelope) -> bytes:
    """The youth office render of the previous release: no validation (there never was one),
    written with ``json.dumps``."""
    from casebridge.adapters.jugendamt.render import render_doc

    return json.dumps(render_doc(envelope), ensure_ascii=False, indent=2).encode("utf-8")


def _fhir_unvalidated_json_dumps(envelope: TransferEnvelope) -> bytes:
    """The FHIR JSON render without validation but with ``json.dumps`` (the split)."""
    from casebridge.adapters.provider_fhir import ProviderFhirAdapter

    data, _ = ProviderFhirAdapter()._data(envelope)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fhir_validating(envelope: TransferEnvelope) -> bytes:
    """The FHIR JSON render of the previous release: build the resource, validate it with
    fhir.resources (Bundle or Task model), write the data with json."""
    from casebridge.adapters.provider_fhir import ProviderFhirAdapter

    data, model = ProviderFhirAdapter()._data(envelope)
    model.model_validate(data)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


#: Per system: the render of the previous release, which validated its output at run time.
PREVIOUS_RENDER: dict[str, Callable[[TransferEnvelope], bytes]] = {
    "jobcenter": _jobcenter_validating,
    "sozialamt": _sozialamt_validating,
    "jugendamt": _jugendamt_previous,
    "provider-fhir": _fhir_validating,
}
#: The FHIR render without validation but with the previous serialiser, to split the gain.
SPLIT: dict[str, Callable[[TransferEnvelope], bytes]] = {
    "provider-fhir": _fhir_unvalidated_json_dumps,
}


def _kind(envelope: TransferEnvelope) -> str:
    if envelope.purpose == "child_protection":
        return "notification"
    return str(envelope.message_type)


def render_pool(n: int) -> dict[str, list[TransferEnvelope]]:
    """Varied canonical envelopes of every message type, by type: what the three generators
    of this module parse into (job centre referrals, conferences, plans and provider status
    updates; youth office exports incl. child-protection notifications; FHIR referrals and
    Task updates)."""
    pool: dict[str, list[TransferEnvelope]] = {}
    sources = [("jobcenter", jobcenter_messages(n)),
               ("jugendamt", jugendamt_messages(n, random.Random(20261123))),
               ("provider-fhir", _fhir_bundle_form(fhir_messages(n, random.Random(20261124))))]
    for system, messages in sources:
        adapter = get_adapter(system)
        for raw in messages:
            for envelope in adapter.parse(raw):
                pool.setdefault(_kind(envelope), []).append(envelope)
    return pool


def _renderable(system: str, envelopes: list[TransferEnvelope]) -> list[TransferEnvelope]:
    from casebridge.errors import RenderError

    adapter = get_adapter(system)
    out = []
    for envelope in envelopes:
        try:
            new = adapter.render(envelope)
        except RenderError:
            continue  # this system has no form for it (e.g. a status update to sozialamt)
        if new != PREVIOUS_RENDER[system](envelope):
            raise AssertionError(f"{system}: the render differs from the previous render")
        out.append(envelope)
    return out


def render_rows(quick: bool = False, runs: int = 3) -> list[Row]:
    """Per system and message type: renders/s without run-time validation (JSON written by
    pydantic-core) vs the previous release's render, same envelopes, interleaved; median of
    ``runs`` runs. For FHIR the note splits the gain (no validation, still ``json.dumps``)."""
    n = 40 if quick else 300
    pool = render_pool(n)
    cases = []
    for system, previous in PREVIOUS_RENDER.items():
        adapter = get_adapter(system)
        fns = [adapter.render, previous, *([SPLIT[system]] if system in SPLIT else [])]
        for kind, envelopes in sorted(pool.items()):
            usable = _renderable(system, envelopes)
            if usable:
                cases.append((system, kind, usable, fns))
    results: dict[tuple[str, str], list[list[float]]] = {}
    loads = []
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        for system, kind, usable, fns in cases:
            seconds = interleaved(fns, usable)
            results.setdefault((system, kind), []).append([len(usable) / t for t in seconds])
    rows = []
    for system, kind, usable, _ in cases:
        measured = results[(system, kind)]
        ratios = sorted(m[0] / m[1] for m in measured)
        split = ""
        if system in SPLIT:
            dumps = statistics.median(m[2] / m[1] for m in measured)
            split = (f"; without validation but still json.dumps: {dumps:.2f}x the previous "
                     "render (the rest is pydantic-core's JSON)")
        rows.append(Row(
            benchmark=f"render/{system}",
            metric=f"{kind} renders/s",
            value=statistics.median(m[0] for m in measured),
            baseline_name="previous render" + (" (json.dumps)" if system == "jugendamt"
                                               else " (validating)"),
            baseline=statistics.median(m[1] for m in measured),
            target="report",
            note=(f"{len(usable)} envelopes; ratio median {statistics.median(ratios):.2f} "
                  f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}) of {runs} runs{split}; load "
                  f"average {', '.join(f'{x:.1f}' for x in loads)} at the start of each run"),
        ))
    return rows


def run(quick: bool = False) -> list[Row]:
    """Per system: envelopes/s of ``adapter.parse`` vs each baseline on the same bytes; then
    the render rows (:func:`render_rows`)."""
    return [*parse_rows(quick), *render_rows(quick)]


def parse_rows(quick: bool = False) -> list[Row]:
    """Per system: envelopes/s of ``adapter.parse`` vs each baseline on the same bytes."""
    n = 500 if quick else 10_000
    rows = []
    for system, entry in SYSTEMS.items():
        messages = entry.make(n)
        adapter = get_adapter(system)
        envelopes = sum(len(adapter.parse(raw)) for raw in messages)  # warm up, prove valid
        for _, baseline in entry.baselines:
            for raw in messages[:50]:
                baseline(raw)
        seconds = interleaved([adapter.parse, *(fn for _, fn in entry.baselines)], messages)
        size = sum(map(len, messages)) / len(messages)
        for k, (name, _) in enumerate(entry.baselines, start=1):
            first = k == 1
            rows.append(
                Row(
                    benchmark=f"adapters/{system}",
                    metric="msg/s" if first else f"msg/s vs {name}",
                    value=envelopes / seconds[0],
                    baseline_name=name,
                    baseline=envelopes / seconds[k],
                    target=f">= {entry.target}" if first else "report",
                    note=(
                        f"{len(messages)} inputs, {envelopes} messages, {size:,.0f} bytes on "
                        f"average; fastest of {REPEAT} interleaved runs per {CHUNK}-message "
                        "chunk; parse incl. all checks, schema validation, mapping, canonical "
                        "validation"
                    )
                    if first
                    else "",
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
    elif "--render" in sys.argv:
        from bench.run import print_table

        print_table(render_rows(quick="--quick" in sys.argv))
    else:
        from bench.run import print_table

        print_table(run(quick="--quick" in sys.argv))
