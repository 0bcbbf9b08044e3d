"""No personal data in log lines: the redaction processor and the configured pipeline."""

from __future__ import annotations

import json

import structlog

from casebridge.logging import REDACTED, configure_logging, redact_personal_data, scrub_text


def test_metadata_fields_keep_their_values() -> None:
    out = redact_personal_data(None, "info", {
        "event": "decision", "message_id": "JC-DU-2026-000123", "sender": "jobcenter-duisburg",
        "released": ["identity", "addiction"], "count": 3, "outcome": "partial",
    })
    assert out["message_id"] == "JC-DU-2026-000123"
    assert out["released"] == ["identity", "addiction"]
    assert out["count"] == 3


def test_unknown_fields_are_redacted_whatever_their_name() -> None:
    out = redact_personal_data(None, "info", {
        "event": "x", "name": "Yılmaz, Ayşe", "birth_date": "1988-04-12",
        "address": {"street": "Musterstraße"}, "note": "Alkoholproblematik", "whatever": "Ayşe",
    })
    for key in ("name", "birth_date", "address", "note", "whatever"):
        assert out[key] == REDACTED


def test_event_text_is_scrubbed_of_data_patterns() -> None:
    text = "mail a.yilmaz@example.org tel 0203 555 0142 born 12.04.1988 / 1988-04-12"
    scrubbed = scrub_text(text)
    for secret in ("a.yilmaz@example.org", "0203 555 0142", "12.04.1988", "1988-04-12"):
        assert secret not in scrubbed


def test_configured_json_logger_redacts_and_drops_exception_text(capsys) -> None:
    configure_logging(fmt="json", level="info", force=True)
    log = structlog.get_logger()
    try:
        raise ValueError("input_value='Yılmaz, Ayşe'")
    except ValueError:
        log.error("translate failed", message_id="M-1", family_name="Yılmaz", exc_info=True)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message_id"] == "M-1"
    assert record["family_name"] == REDACTED
    assert record["exc_type"] == "ValueError"
    assert "Yılmaz" not in line and "Ayşe" not in line
