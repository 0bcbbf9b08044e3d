"""German and English: complete label tables, vocabulary coverage, language choice."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from casebridge.canonical_model import (
    AgencyKind,
    Category,
    ConsentForm,
    ConsentStatus,
    MessageType,
    Outcome,
    PersonRelation,
    Purpose,
    WithholdReason,
)
from casebridge.gateway.console.data import INCIDENT_KINDS, presets
from casebridge.gateway.console.i18n import (
    LABELS,
    VOCABULARY,
    WordedInputError,
    from_accept_language,
    term,
    translate,
)
from casebridge.gateway.console.ops import STATES
from tests.console.conftest import SignIn
from tests.console.html import page, text

VOCABULARIES = {
    "outcome": Outcome, "outcome_short": Outcome, "purpose": Purpose, "category": Category,
    "reason": WithholdReason,
    "relation": PersonRelation, "agency_kind": AgencyKind, "status": ConsentStatus,
    "form": ConsentForm, "message_type": MessageType,
}


def test_both_languages_have_every_label_with_the_same_placeholders() -> None:
    assert set(LABELS["de"]) == set(LABELS["en"])
    for key in LABELS["en"]:
        fields = [set(re.findall(r"{(\w+)}", LABELS[lang][key])) for lang in ("de", "en")]
        assert fields[0] == fields[1], key


def test_every_vocabulary_code_is_worded_in_both_languages() -> None:
    for name, enum in VOCABULARIES.items():
        for lang in ("de", "en"):
            assert set(VOCABULARY[name][lang]) == {str(m) for m in enum}, (name, lang)
    assert term("de", "reason", "withdrawn") == "die Einwilligung wurde widerrufen"
    assert term("en", "reason", "withdrawn") == "the consent was withdrawn"
    assert term("en", "reason", "not-a-code") == "not-a-code"


def test_the_console_vocabularies_are_worded_in_both_languages() -> None:
    from casebridge.consent.audit import STAGES

    for name in ("stage", "entry_kind", "incident", "refusal", "legal_basis", "dead_reason"):
        assert set(VOCABULARY[name]["de"]) == set(VOCABULARY[name]["en"]), name
    assert set(STAGES) <= set(VOCABULARY["stage"]["de"])
    assert set(INCIDENT_KINDS) <= set(VOCABULARY["incident"]["de"])
    # every statutory basis of the shipped route tables is explained in words
    from casebridge.routing.routes import demo_route_table

    bases = {b for r in demo_route_table().config.routes for b in r.statutory_bases}
    assert bases and bases <= set(VOCABULARY["legal_basis"]["de"])
    assert term("de", "legal_basis", "kkg-4").startswith("§ 4 KKG – Mitteilung an das Jugendamt")
    # a worded error is English in its message (logs, API) and worded per reader on a page
    error = WordedInputError("error.too_long", name="agency", limit=64)
    assert error.message == "agency: at most 64 characters."


def test_every_label_used_by_a_template_exists() -> None:
    from importlib.resources import files

    used = set()
    for item in files("casebridge.gateway.console").joinpath("templates").iterdir():
        used |= set(re.findall(r"""\bt\(['"]([\w.]+)['"]""", item.read_text(encoding="utf-8")))
    static = {k for k in used if not k.endswith(".")}
    assert static - set(LABELS["en"]) == set()
    # keys composed in templates: prefix + a code
    dynamic = {"state.": STATES, "event.": ("given", "recorded", "withdrawn"),
               "overrides.": ("done", "already"), "preset.": tuple(presets())}
    assert {k for k in used if k.endswith(".")} == set(dynamic)
    for prefix, codes in dynamic.items():
        assert {prefix + c for c in codes} <= set(LABELS["en"]), prefix


def test_accept_language_is_honoured() -> None:
    assert from_accept_language("en-GB,en;q=0.9,de;q=0.8") == "en"
    assert from_accept_language("fr-FR, de;q=0.5, en;q=0.4") == "de"
    assert from_accept_language("fr, es") is None
    assert from_accept_language("en;q=0, de;q=0.1") == "de"
    assert translate("en", "no.such.key") == "no.such.key"


def test_login_page_follows_the_browser_then_the_switch(app_client: TestClient) -> None:
    english = app_client.get("/console/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert page(english.text).get("lang") == "en"
    assert "Sign in" in text(english.text)
    german = app_client.get("/console/login", headers={"Accept-Language": "fr"})
    assert page(german.text).get("lang") == "de"
    assert "Anmelden" in text(german.text)
    switched = app_client.get("/console/login?lang=en", headers={"Accept-Language": "de"})
    assert page(switched.text).get("lang") == "en"


def test_the_choice_is_remembered_in_the_session(signed_in: SignIn) -> None:
    client = signed_in("dana-dpo", lang="de")
    assert "Übermittlungen zwischen Stellen" in text(client.get("/console/flows").text)
    assert "Flows between agencies" in text(client.get("/console/flows?lang=en").text)
    later = client.get("/console/withheld")  # no ?lang: the session remembers English
    assert page(later.text).get("lang") == "en"
    assert "Blocked and partial transfers" in text(later.text)
    back = client.get("/console/overrides?lang=de")
    assert "Gesetzliche Übermittlungen ohne Einwilligung" in text(back.text)


def test_german_reasons_on_the_withheld_page(signed_in: SignIn) -> None:
    shown = text(signed_in("dana-dpo", lang="de").get("/console/withheld?reason=withdrawn").text)
    assert "die Einwilligung wurde widerrufen" in shown
