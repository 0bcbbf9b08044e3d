"""structlog, configured once, with personal data redacted from every log line.

Redaction works by allow-list, not by deny-list: only fields whose names are known to carry
metadata (ids, agency names, categories, outcomes, counts, timings) keep their values; every other
string value is replaced by ``[redacted]``. A new field someone logs tomorrow is therefore hidden
until it is deliberately allowed. The event text itself is scrubbed for patterns that look like
e-mail addresses, phone numbers and dates, because a message string can be built from data.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"

# Field names whose values are metadata, never personal data.
SAFE_KEYS = frozenset(
    {
        "event", "level", "timestamp", "logger", "exc_type", "error_code", "code",
        "message_id", "correlation_id", "referral_id", "consent_id", "consent_ids", "client_id",
        "agency", "sender", "recipient", "recipients", "system", "purpose", "category",
        "categories", "released", "withheld", "reason", "reasons", "outcome", "status",
        "legal_basis", "queue", "exchange", "routing_key", "attempt", "attempts", "count",
        "duration_ms", "elapsed_ms", "size", "bytes", "method", "path", "status_code",
        "request_id", "role", "entry", "seq", "position", "total", "transport", "worker",
        "delivery_tag", "redelivered", "schema_version", "message_type", "source", "kind",
        "stage",
    }
)

_SCRUB_PATTERNS = [
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail
    re.compile(r"(?<!\w)\+?\d[\d /-]{6,}\d(?!\w)"),  # phone-like digit runs
    re.compile(r"\b\d{1,2}\.\d{1,2}\.\d{2,4}\b"),  # DD.MM.YYYY
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),  # ISO date (birth dates look like this)
]


def scrub_text(text: str) -> str:
    """Replace data-looking substrings (e-mail, phone, dates) of a free text."""
    for pattern in _SCRUB_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key in SAFE_KEYS:
        if isinstance(value, str):
            return scrub_text(value) if key == "event" else value
        if isinstance(value, (list, tuple, set, frozenset)):
            return [v if isinstance(v, (str, int, float, bool)) else REDACTED for v in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return value
    return REDACTED


def redact_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> Mapping[str, Any]:
    """structlog processor: keep metadata fields, redact everything else."""
    return {key: _redact_value(key, value) for key, value in event_dict.items()}


def _exception_summary(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Exception texts (pydantic's especially) quote input values, so only the type and our own
    # error code are logged; the traceback stays out of the log line.
    exc_info = event_dict.pop("exc_info", None)
    if exc_info:
        exc = exc_info[1] if isinstance(exc_info, tuple) else sys.exc_info()[1]
        if isinstance(exc, BaseException):
            event_dict["exc_type"] = type(exc).__name__
            code = getattr(exc, "code", None)
            if isinstance(code, str):
                event_dict["error_code"] = code
    event_dict.pop("exception", None)
    event_dict.pop("stack", None)
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing.

    structlog's print logger keeps the file it was given; holding the stream that was current at
    configuration time breaks when stderr is later replaced (test capture, daemonising).
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_configured = False


def configure_logging(*, fmt: str = "auto", level: str = "info", force: bool = False) -> None:
    """Configure structlog once per process: JSON in production or when piped, else console."""
    global _configured
    if _configured and not force:
        return
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_summary,
            redact_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; configures logging with defaults if nobody did yet."""
    configure_logging()
    return structlog.get_logger(name)
