"""The closed vocabularies of stored codes that are not domain words, and the column width rule.

Domain words (outcomes, withhold reasons, purposes, message types, referral statuses …) live in
:mod:`casebridge.canonical_model.vocabulary`. The words here name what happened to a record in
casebridge itself: audit event kinds and stages, delivery states, dead-letter reasons, replay
results. A stored code is always one word of a closed vocabulary -- never a word with a variable
suffix such as an exception's class name; such specifics go into a record's details.

Every code column is declared with :func:`casebridge.db.code_column`, which takes its width from
the vocabularies it holds (:func:`code_width`) and remembers them, so a test can enumerate every
word of every code column and store it in PostgreSQL, and a word that outgrows its column fails
the schema-drift test until a migration widens it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class AuditKind(StrEnum):
    """What an audit entry records."""

    DECISION = "decision"
    FORGED_SENDER = "forged_sender"
    DEAD_LETTER = "dead_letter"
    DEAD_LETTER_REPLAYED = "dead_letter_replayed"
    REPLAY_SKIPPED = "replay_skipped"
    CONSENT_RECORDED = "consent_recorded"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    DPO_REVIEW = "dpo_review"
    CHAIN_VERIFIED = "chain_verified"
    MESSAGE_REFUSED = "message_refused"
    LOGIN_LOCKED = "login_locked"
    #: an access report (Art. 15) was produced
    REPORT_ACCESSED = "report_accessed"
    #: a person seen in another client's file was linked to a client deliberately
    SUBJECT_LINKED = "subject_linked"
    #: a dry run showed what recipients would receive (nothing was sent)
    PREVIEW = "preview"
    #: a sender was told that a copy of its message was blocked at delivery or dead-lettered
    SENDER_FEEDBACK = "sender_feedback"
    #: binds the heads of all audit chains (written every N entries or T seconds)
    CHECKPOINT = "checkpoint"


class AuditStage(StrEnum):
    """Where in casebridge an audited event happened."""

    INBOUND = "inbound"
    DELIVERY = "delivery"
    REPLAY = "replay"
    GATEWAY = "gateway"
    CLI = "cli"
    DPO = "dpo"
    API = "api"
    CONSOLE = "console"
    DEMO = "demo"
    PREVIEW = "preview"


class SubjectRole(StrEnum):
    """How a person appears in a transfer (``data_subjects.role``; the access report words it)."""

    CLIENT = "client"
    GUARDIAN = "guardian"
    HOUSEHOLD_MEMBER = "household_member"
    CHILD = "child"
    ENTRUSTER = "entruster"


class EventOutcome(StrEnum):
    """The outcome of an audited event that is not a consent decision."""

    #: a message refused at the door (forged sender, no route, wrong system)
    REFUSED = "refused"
    #: an account or client address locked after failed authentication
    LOCKED = "locked"


class DeliveryState(StrEnum):
    """Where one message for one recipient stands (``routing_deliveries.state``)."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    BLOCKED = "blocked"
    DEAD = "dead"


class DeadReason(StrEnum):
    """Why a message went to the dead-letter queue (or a replay was kept or blocked)."""

    UNDECODABLE = "undecodable"
    NOT_SINGLE_RECIPIENT = "not_single_recipient"
    NO_ROUTE = "no_route"
    RENDER_FAILED = "render_failed"
    REFUSED = "refused"
    RETRIES_EXHAUSTED = "retries_exhausted"
    #: a casebridge error not caused by the recipient (its code is in the details)
    ERROR = "error"
    #: a bug: an unexpected exception (its class name is in the details)
    INTERNAL_ERROR = "internal_error"
    #: taken from the broker's own dead-lettering (``x-death``), e.g. a delivery limit
    BROKER_DELIVERY_LIMIT = "broker_delivery_limit"
    BROKER_REJECTED = "broker_rejected"
    BROKER_EXPIRED = "broker_expired"
    UNKNOWN = "unknown"
    #: a replay the consent gate blocked
    REPLAY_BLOCKED = "replay_blocked"


class ReplayResult(StrEnum):
    """What replaying one dead letter did."""

    REQUEUED = "requeued"
    BLOCKED = "blocked"
    KEPT = "kept"
    #: already delivered: nothing sent again
    SKIPPED_DELIVERED = "skipped_delivered"


class InboundState(StrEnum):
    """The gateway's idempotency record of one posted message id."""

    #: claimed by a request that has not decided yet (written only by releases before 0007)
    PENDING = "pending"
    #: decided and audited, its messages in the publish outbox, not all confirmed yet
    DECIDED = "decided"
    #: every released message confirmed by the broker (or nothing was released); the answer
    #: is stored
    DONE = "done"


class Responsibility(StrEnum):
    """Who is responsible for a measure of a delivered support plan (``routing_measures``)."""

    #: one of the plan's agencies (named by id or by its kind, e.g. "Jobcenter")
    AGENCY = "agency"
    #: the client or their family ("Kundin", "Eltern" …): followed up by the plan's owner
    CLIENT = "client"
    #: anyone else: followed up by the plan's owner
    OTHER = "other"


class ReferralEffect(StrEnum):
    """What a status update did to its referral."""

    APPLIED = "applied"
    IGNORED = "ignored"


def code_width(*vocabularies: Iterable[str], minimum: int = 16) -> int:
    """The column width for codes of ``vocabularies``: the longest word plus room to grow,
    rounded up to a multiple of 16 (so a slightly longer new word needs no migration), and
    never below ``minimum`` (the width an older revision created: columns are not narrowed)."""
    longest = max((len(str(word)) for vocabulary in vocabularies for word in vocabulary),
                  default=0)
    return max(minimum, -(-(longest + 4) // 16) * 16)
