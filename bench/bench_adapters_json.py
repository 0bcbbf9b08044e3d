"""Throughput of the JSON adapters (jugendamt, provider-fhir) against the bare parse.

10,000 varied messages per system (``--quick``: 500), built from the agencies' samples with a
seeded random generator: names in several scripts, 0..12 notes, texts from a few words to
several kilobytes, optional parts present or absent, FHIR status updates mixed into referrals.

- jugendamt: ``parse`` (size check, ``json.loads``, JSON Schema, mapping, canonical validation)
  against ``json.loads`` of the same bytes; target >= 0.25.
- provider-fhir: ``parse`` against fhir.resources' own validated parse of the same bytes
  (``Bundle``/``Task.model_validate_json``); target >= 0.5; the ratio to ``json.loads`` too.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable

from bench.common import Row
from casebridge.adapters.jugendamt import JugendamtAdapter
from casebridge.adapters.provider_fhir import ProviderFhirAdapter
from casebridge.gateway.demo import sample_bytes

GIVEN = ["Emre", "Ayşe", "Jürgen", "Zoë", "Łukasz", "Mária", "Анна", "Nguyễn Thị", "Sören"]
FAMILY = ["Yılmaz", "Müller", "Öztürk", "Kowalski", "Dvořák", "Petrenko", "Ben Ali", "Schäfer"]
WORDS = ("Gespräch Termin Schule Mutter Unterstützung Alltag Hilfe Fehlzeiten Wohnung Arbeit "
         "Beratung vereinbart berichtet möchte wöchentlich Woche").split()
ENTRUSTERS = [None, None, None, "kind", "mutter", "vater", "sorgeberechtigte", "Oma Ilse"]
CATEGORIES = ["health", "addiction", "criminal", "housing", "debts", "employment", None]


def _text(rng: random.Random) -> str:
    n = rng.choice([3, 8, 12, 20, 40, 60, 120, 400])
    return " ".join(rng.choice(WORDS) for _ in range(n))


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
        fall["fallnummer"] = f"JA-51-2026-{i}"
        fall["kind"].update(vorname=rng.choice(GIVEN), nachname=rng.choice(FAMILY),
                            geburtsdatum=_date(rng, 2005, 2020))
        if rng.random() < 0.3:
            del fall["kind"]["schule"]
        fall["sorgeberechtigte"] = [
            {"vorname": rng.choice(GIVEN), "nachname": rng.choice(FAMILY),
             "geburtsdatum": _date(rng, 1960, 2000), "rolle": rng.choice(["Mutter", "Vater"]),
             "anschrift": {"strasse": "Musterstraße 12a", "plz": "47053", "ort": "Duisburg"}}
            for _ in range(rng.randint(0, 2))]
        if rng.random() < 0.2:
            del fall["hilfeplan"]
        else:
            fall["hilfeplan"]["ziele"] = [
                {"nr": k + 1, "text": _text(rng), "teilziele": [_text(rng)] * rng.randint(0, 3)}
                for k in range(rng.randint(0, 4))]
        fall["notizen"] = [{"datum": _date(rng, 2025, 2026), "text": _text(rng),
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
        patient["name"] = [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}]
        patient["birthDate"] = _date(rng)
        if rng.random() < 0.3:
            del patient["telecom"]
        sr["identifier"][0]["value"] = f"JC-DU-2026-{i}"
        sr["reasonCode"] = [_coded(rng, {"text": _text(rng)}) for _ in range(rng.randint(1, 4))]
        sr["note"] = [_coded(rng, {"text": _text(rng)}) for _ in range(rng.randint(0, 6))]
        out.append(json.dumps(doc, ensure_ascii=False).encode())
    return out


def _coded(rng: random.Random, element: dict) -> dict:
    category = rng.choice(CATEGORIES)
    if category and "text" in element and rng.random() < 0.5:
        element["coding"] = [{"system": "urn:casebridge:category", "code": category}]
    return element


def _rate(fn: Callable[[bytes], object], messages: list[bytes], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for raw in messages:
            fn(raw)
        best = min(best, time.perf_counter() - start)
    return len(messages) / best


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


def run(quick: bool) -> list[Row]:
    """Rows for jugendamt and provider-fhir parse throughput."""
    n = 500 if quick else 10_000
    rng = random.Random(20261121)
    ja, fhir = JugendamtAdapter(), ProviderFhirAdapter()

    ja_msgs = jugendamt_messages(n, rng)
    for raw in ja_msgs[:50]:
        ja.parse(raw)  # warm caches (schema compile) and prove the messages are valid
    ja_rate = _rate(ja.parse, ja_msgs)
    ja_base = _rate(json.loads, ja_msgs)
    size = sum(map(len, ja_msgs)) // n

    fhir_msgs = _fhir_bundle_form(fhir_messages(n, rng))
    for raw in fhir_msgs[:50]:
        fhir.parse(raw)
    fhir_rate = _rate(fhir.parse, fhir_msgs)
    fhir_ref = _rate(_fhir_reference, fhir_msgs)
    fhir_json = _rate(json.loads, fhir_msgs)
    fsize = sum(map(len, fhir_msgs)) // n
    return [
        Row("adapters/jugendamt", "parse msg/s", ja_rate, "json.loads", ja_base, ">= 0.25",
            f"{n} messages, mean {size} bytes"),
        Row("adapters/provider-fhir", "parse msg/s", fhir_rate,
            "fhir.resources model_validate_json", fhir_ref, ">= 0.5",
            f"{n} messages (80% Bundle, 20% Task), mean {fsize} bytes"),
        Row("adapters/provider-fhir", "parse msg/s vs json.loads", fhir_rate, "json.loads",
            fhir_json, "report"),
    ]
