"""The one exceptions module of casebridge.

Every error casebridge raises on purpose derives from :class:`CasebridgeError` and carries a
machine-readable ``code``. Families group errors by layer so callers can catch a family without
knowing a driver's or parser's own exceptions. Lower-layer exceptions are translated into these
at the layer boundary; the gateway maps them to problem documents and the CLI to exit codes, each
in exactly one place.

Messages never quote personal data: they name the field or position that is wrong, not its value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where it is (line, JSON pointer or field) and what."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class CasebridgeError(Exception):
    """Root of every deliberate casebridge error."""

    code = "casebridge_error"

    def __init__(self, message: str, *, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: list[Problem] = list(problems or [])

    def lines(self) -> list[str]:
        """One human-readable line per problem (or the message if there are none)."""
        return [str(p) for p in self.problems] or [self.message]


# --- bad input from outside (native messages, files, requests) -------------------------------


class InputError(CasebridgeError):
    """Raised when input from outside casebridge is malformed or not acceptable."""

    code = "invalid_input"


class ModelValidationError(InputError):
    """Raised when data does not satisfy the canonical model (names the offending fields)."""

    code = "invalid_canonical_data"


class UnsupportedMediaType(InputError):
    """Raised when a request's Content-Type is not one the target format accepts."""

    code = "unsupported_media_type"


class ConfigError(CasebridgeError):
    """Raised when settings or a configuration file (route table, keys) is invalid."""

    code = "invalid_configuration"


# --- adapters ---------------------------------------------------------------------------------


class StoreUnreachable(ConfigError):
    """The database named by the settings does not answer (it may come back: a worker waits)."""

    code = "database_unavailable"


class AdapterError(InputError):
    """Raised when a native message cannot be read or written by its adapter."""

    code = "adapter_error"


class InputTooLarge(AdapterError):
    """Raised before parsing when a native message exceeds the configured size bound."""

    code = "input_too_large"


class ParseError(AdapterError):
    """Raised when the bytes are not well-formed XML/JSON or not in the declared encoding."""

    code = "parse_error"


class SchemaError(AdapterError):
    """Raised when a well-formed native message violates the system's schema."""

    code = "schema_violation"


class MappingError(AdapterError):
    """Raised when a schema-valid message cannot be mapped (e.g. unknown purpose code)."""

    code = "mapping_error"


class RenderError(AdapterError):
    """Raised when a canonical envelope cannot be expressed in the recipient's native format."""

    code = "render_error"


class UnknownSystem(AdapterError):
    """Raised when no adapter is registered under the requested system name."""

    code = "unknown_system"


# --- consent and audit ------------------------------------------------------------------------


class ConsentError(CasebridgeError):
    """Raised for consent-store and consent-decision failures."""

    code = "consent_error"


class ConsentImportError(ConsentError, InputError):
    """Raised when a FHIR Consent file breaks the casebridge consent profile."""

    code = "consent_import_rejected"


class NothingSent(ConsentError):
    """Raised when the consent gate released nothing of a posted message to any recipient.

    Its problems name, per message, recipient and withheld category, the reason code
    (``location`` ``{message_id}/{recipient}/{category}``, ``message`` the reason) -- never data.
    """

    code = "nothing_sent"


class NotFound(CasebridgeError):
    """Raised when a named object (consent, client, referral, message) does not exist."""

    code = "not_found"


class ConflictError(CasebridgeError):
    """Raised when an operation contradicts the current state (e.g. withdrawing twice)."""

    code = "conflict"


class AuditError(CasebridgeError):
    """Raised for audit-trail failures (a broken chain is a verification result, not this)."""

    code = "audit_error"


# --- routing ----------------------------------------------------------------------------------


class RoutingError(CasebridgeError):
    """Raised when a message cannot be routed or delivered."""

    code = "routing_error"


class NoRoute(RoutingError, InputError):
    """Raised at the door when no route admits the sender, purpose and recipients."""

    code = "no_route"


class StatutoryNotAdmitted(NoRoute):
    """Raised at the door for a statutory transfer (rule 8) its route does not admit: no legal
    basis or justification, or a basis the route table does not list for that route."""

    code = "statutory_not_admitted"


class BrokerUnavailable(RoutingError):
    """Raised when the message broker cannot be reached or did not confirm a publish."""

    code = "broker_unavailable"


class DeliveryError(RoutingError):
    """Raised when a recipient endpoint did not accept a delivery."""

    code = "delivery_failed"


class RetryableDeliveryError(DeliveryError):
    """Raised for failures worth retrying: 5xx answers, timeouts, connection errors."""

    code = "delivery_retryable"


class PermanentDeliveryError(DeliveryError):
    """Raised for failures that retrying cannot fix: a 4xx answer, an unrenderable message."""

    code = "delivery_permanent"


class RecipientRefused(PermanentDeliveryError):
    """Raised when a recipient endpoint answered 4xx; keeps its status and answer excerpt."""

    code = "delivery_refused"

    def __init__(self, status_code: int, answer: str) -> None:
        super().__init__(f"HTTP {status_code}: the recipient refused the message")
        self.status_code = status_code
        #: The recipient's own words (bounded); stored with the dead letter, never logged.
        self.answer = answer


# --- access -----------------------------------------------------------------------------------


class AuthError(CasebridgeError):
    """Raised when a caller is not authenticated."""

    code = "unauthenticated"


class TooManyAttempts(AuthError):
    """Raised when an account or an address failed to authenticate too often (locked a while)."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class Forbidden(CasebridgeError):
    """Raised when an authenticated caller may not do what it asked (e.g. a forged sender)."""

    code = "forbidden"
