"""The consent decision point: a pure function of envelope, client, consents, policies and time.

:func:`decide` reads nothing and changes nothing (no I/O, no clock: the moment is an argument);
:func:`release` is the separate masking step that turns a decision into the minimised copy for
one recipient. Rules are those of ../shared/domain.md; docs/consent.md explains each.

How one category is decided for one recipient
---------------------------------------------
A category present in the envelope is released when ONE consent on record covers every
condition below at once; consents never combine. Each consent is checked in this order and
fails at the first condition it misses::

    stage  condition                                        reason when it fails
    1      the sender is among its disclosers               sender_not_covered
    2      the recipient is among its recipients            recipient_not_covered
    3      the message's purpose is among its purposes      purpose_not_covered
    4      it was given by someone who may consent to       entruster_not_consented (rule 5)
           this datum: for entrusted the entruster; for     guardian_required (rule 9)
           a minor's data a guardian
    5      it covers the category: ordinary ones by list    category_not_covered
           or "all ordinary"; special ones (rule 4)         special_category_not_named
           and entrusted only when named
    6      it is in force at the moment of the decision     not_yet_valid < expired < withdrawn

When no consent covers the category, the reason is that of the consent that got FURTHEST
(the highest stage; :data:`REASON_PRECEDENCE` is that table): the reason nearest to the data.
Scope (who → whom, why) is furthest from the data; then whether the grantor could consent to
this datum at all (if not, what the consent lists is irrelevant: the mother's consent never
releases what the child entrusted, whatever it names); then what the consent says about the
datum; time comes last, as a consent out of force is the closest miss. So an expired consent
that never covered ``health`` yields ``special_category_not_named`` for health (renewing it
would not help) and ``expired`` for the categories it did cover; a consent for this purpose that
does not name health beats one that names health for another purpose. Without any consent on
record: ``no_consent``; with no client in the registry: ``unknown_client``.

Status: only ``active`` grants. ``draft``/``proposed`` count as not yet valid, ``inactive`` as
expired, ``rejected`` consents are disregarded (a refusal is not a consent). A withdrawal at T
blocks decisions at T and later, not before. Who counts as grantor: for a client below
``minor_age`` at the moment of the decision only mother, father, parent or legal guardian
(a minor's self-consent yields ``guardian_required``); for older clients the client, a legal
guardian, and a parent only while the client is under 18; a consent given by an unrelated
person counts only as an entruster's consent.

Whole-transfer rules (rule 7), applied after the per-category fates: if ``identity`` is present
and not released, or a category the route requires is not released (absent or withheld), the
transfer is blocked. Categories that were withheld anyway keep their own reason (it is nearer to
the data); categories that would have been released are withheld with ``identity_not_covered``
(checked first) or ``required_category_missing``.

Statutory transfers (rule 8): when the envelope claims a legal basis with a justification and the
recipient's route admits that basis, the outcome is ``override``: everything present is released
under that legal basis and marked for DPO review; no client match or consent is needed. A claim
the route does not admit grants nothing and the consents decide as usual (``child_protection``
can therefore only ever pass this way, as nobody can consent to it).

``legal_basis`` is the statutory basis for an override and ``None`` for consent-based decisions
(the consents relied on are listed instead; a consent's own ``policyRule`` stays on the consent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from casebridge.canonical_model import (
    ORDINARY_CATEGORIES,
    SPECIAL_CATEGORIES,
    Category,
    ConsentDirective,
    ConsentStatus,
    Grantor,
    IdentityData,
    Outcome,
    PersonRelation,
    TransferEnvelope,
    WithholdReason,
)
from casebridge.consent.decision import Decision, MessageDecisions, WithheldCategory
from casebridge.consent.policy import DEFAULT_POLICY, TransferPolicy

#: The agencies' zone: the calendar day of a decision (for a client's age) is taken here.
LOCAL_ZONE = ZoneInfo("Europe/Berlin")

#: Parents speak for their child only until it comes of age (§2 BGB); a legal guardian
#: (Vormund, rechtliche Betreuung) may also represent an adult.
AGE_OF_MAJORITY = 18
PARENTS = frozenset({PersonRelation.MOTHER, PersonRelation.FATHER, PersonRelation.PARENT})

#: Who may consent for a minor (rule 9) — and whose consent a minor's entrusted data also needs.
GUARDIANS = PARENTS | {PersonRelation.LEGAL_GUARDIAN}

R = WithholdReason
#: Nearness to the data, low to high; among consents that all fail, the highest reason wins.
REASON_PRECEDENCE: tuple[WithholdReason, ...] = (
    R.NO_CONSENT,
    R.SENDER_NOT_COVERED,
    R.RECIPIENT_NOT_COVERED,
    R.PURPOSE_NOT_COVERED,
    R.ENTRUSTER_NOT_CONSENTED,
    R.GUARDIAN_REQUIRED,
    R.CATEGORY_NOT_COVERED,
    R.SPECIAL_CATEGORY_NOT_NAMED,
    R.NOT_YET_VALID,
    R.EXPIRED,
    R.WITHDRAWN,
)
_RANK = {reason: rank for rank, reason in enumerate(REASON_PRECEDENCE)}


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A consent on record with its withdrawal time, if withdrawn."""

    directive: ConsentDirective
    #: A withdrawal at T blocks decisions at T and later; what was decided before stays lawful.
    withdrawn_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ClientFacts:
    """What the registry knows of the client a message is about."""

    client_id: str
    #: From the registry or consents; without it the envelope's identity part is asked.
    birth_date: date | None = None


# --- the decision -------------------------------------------------------------------------------


def decide(
    envelope: TransferEnvelope,
    *,
    client: ClientFacts | None,
    consents: Sequence[ConsentState],
    at: datetime,
    policies: Mapping[str, TransferPolicy] | None = None,
    minor_age: int = 15,
) -> MessageDecisions:
    """Decide, per recipient, which categories of ``envelope`` may pass at ``at``, and why not."""
    if at.tzinfo is None:
        raise ValueError("at: the moment of a decision needs a UTC offset")
    present = [c for c in Category if c in envelope.categories]
    views = [_ConsentView.of(s, at) for s in consents]
    birth = client_birth_date(envelope, client, consents)
    age = age_on(birth, at) if birth is not None else None
    minor = age is not None and age < minor_age
    under_parental_care = age is not None and age < AGE_OF_MAJORITY
    entrusters = _unique(p.entrusted_by for p in envelope.parts if p.entrusted_by is not None)
    decisions = []
    for recipient in envelope.recipients:
        policy = (policies or {}).get(recipient, DEFAULT_POLICY)
        decisions.append(
            _decide_recipient(envelope, recipient, present, policy, client, views, minor,
                              under_parental_care, entrusters)
        )
    return MessageDecisions(message_id=envelope.message_id, decisions=decisions)


def release(envelope: TransferEnvelope, decision: Decision) -> TransferEnvelope | None:
    """The minimised copy for ``decision.recipient`` (released parts only); None if blocked."""
    if decision.outcome == Outcome.BLOCK or not decision.released:
        return None
    return envelope.for_recipient(decision.recipient).only_categories(decision.released)


def client_birth_date(
    envelope: TransferEnvelope, client: ClientFacts | None, consents: Sequence[ConsentState]
) -> date | None:
    """The client's birth date: registry, else the envelope's identity part, else the consents.

    Among consents the latest date is taken: if they disagree, the younger reading protects more.
    """
    if client is not None and client.birth_date is not None:
        return client.birth_date
    for part in envelope.parts:
        if isinstance(part.content, IdentityData) and part.content.birth_date is not None:
            return part.content.birth_date
    known = [s.directive.client_birth_date for s in consents if s.directive.client_birth_date]
    return max(known) if known else None


def age_on(birth: date, at: datetime) -> int:
    """Completed years of life on the local calendar day of ``at``."""
    today = at.astimezone(LOCAL_ZONE).date()
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _decide_recipient(
    envelope: TransferEnvelope,
    recipient: str,
    present: list[Category],
    policy: TransferPolicy,
    client: ClientFacts | None,
    views: list[_ConsentView],
    minor: bool,
    under_parental_care: bool,
    entrusters: list[Grantor],
) -> Decision:
    claim = envelope.statutory
    if claim is not None and claim.legal_basis in policy.statutory_bases:
        if policy.required_categories - set(present):
            return _finish(recipient, present, {}, R.REQUIRED_CATEGORY_MISSING, set())
        return Decision(
            recipient=recipient, outcome=Outcome.OVERRIDE, released=present,
            legal_basis=claim.legal_basis, review_required=True,
        )
    if client is None:
        return _finish(recipient, present, {}, R.UNKNOWN_CLIENT, set())

    scope = _Scope(envelope.sender, recipient, envelope.purpose)
    # The scope does not depend on the category: check it once per consent and recipient.
    scoped = [(v, v.scope_reason(scope)) for v in views if not v.rejected]
    for_data = [(v, r) for v, r in scoped if _counts_for_data(v, minor, under_parental_care)]
    released: list[Category] = []
    withheld: dict[Category, WithholdReason] = {}
    relied: set[str] = set()
    for category in present:
        if category == Category.ENTRUSTED:
            ids, reason = _entrusted_fate(scoped, minor, entrusters)
        else:
            ids, reason = _best(
                for_data, partial(_ordinary_check, category=category, minor=minor)
            )
        if reason is None:
            released.append(category)
            relied |= ids
        else:
            withheld[category] = reason

    block: WithholdReason | None = None
    if Category.IDENTITY in present and Category.IDENTITY not in released:
        block = R.IDENTITY_NOT_COVERED
    elif policy.required_categories - set(released):
        block = R.REQUIRED_CATEGORY_MISSING
    return _finish(recipient, released, withheld, block, relied)


def _finish(
    recipient: str,
    released: list[Category],
    withheld: dict[Category, WithholdReason],
    block: WithholdReason | None,
    relied: set[str],
) -> Decision:
    if block is not None:
        # Rule 7: what would have passed is held back for the whole transfer's sake; what was
        # withheld anyway keeps the reason nearer to its data.
        withheld = {**{c: block for c in released}, **withheld}
        released, relied = [], set()
    order = list(Category)
    held = [
        WithheldCategory(category=c, reason=r)
        for c, r in sorted(withheld.items(), key=lambda item: order.index(item[0]))
    ]
    if not released:
        # Nothing to send: a message without personal data passes, anything else is blocked.
        outcome = Outcome.PERMIT if not held and block is None else Outcome.BLOCK
    else:
        outcome = Outcome.PARTIAL if held else Outcome.PERMIT
    return Decision(
        recipient=recipient, outcome=outcome, released=released, withheld=held,
        consents=sorted(relied),
    )


# --- per-consent checks -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scope:
    sender: str
    recipient: str
    purpose: str


@dataclass(frozen=True, slots=True)
class _ConsentView:
    """A consent prepared for one decision: sets for look-ups, its standing at the moment."""

    consent_id: str
    rejected: bool
    disclosers: frozenset[str]
    recipients: frozenset[str]
    purposes: frozenset[str]
    named: frozenset[Category]
    all_ordinary: bool
    grantor: Grantor
    time_reason: WithholdReason | None

    @classmethod
    def of(cls, state: ConsentState, at: datetime) -> _ConsentView:
        d = state.directive
        return cls(
            consent_id=d.consent_id,
            rejected=d.status == ConsentStatus.REJECTED,
            disclosers=frozenset(d.disclosers),
            recipients=frozenset(d.recipients),
            purposes=frozenset(str(p) for p in d.purposes),
            named=frozenset(d.categories or ()),
            all_ordinary=d.categories is None,
            grantor=d.grantor,
            time_reason=_time_reason(state, at),
        )

    def scope_reason(self, scope: _Scope) -> WithholdReason | None:
        if scope.sender not in self.disclosers:
            return R.SENDER_NOT_COVERED
        if scope.recipient not in self.recipients:
            return R.RECIPIENT_NOT_COVERED
        if scope.purpose not in self.purposes:
            return R.PURPOSE_NOT_COVERED
        return None

    def category_reason(self, category: Category) -> WithholdReason | None:
        if category in self.named:
            return None
        if category in SPECIAL_CATEGORIES:
            return R.SPECIAL_CATEGORY_NOT_NAMED
        if self.all_ordinary and category in ORDINARY_CATEGORIES:
            return None
        return R.CATEGORY_NOT_COVERED


def _time_reason(state: ConsentState, at: datetime) -> WithholdReason | None:
    d = state.directive
    withdrawn = state.withdrawn_at
    if withdrawn is not None and withdrawn <= at and (
        d.valid_until is None or withdrawn <= d.valid_until
    ):
        return R.WITHDRAWN
    if d.status in (ConsentStatus.DRAFT, ConsentStatus.PROPOSED):
        return R.NOT_YET_VALID
    if d.status == ConsentStatus.INACTIVE:
        return R.EXPIRED
    if at < d.effective_from:
        return R.NOT_YET_VALID
    if d.valid_until is not None and at > d.valid_until:
        return R.EXPIRED  # also when it was withdrawn only after it had run out
    return None


#: A consent with the reason its scope (sender, recipient, purpose) fails, or None if it fits.
Scoped = tuple[_ConsentView, WithholdReason | None]


def _best(
    scoped: Iterable[Scoped], check: Callable[[_ConsentView], WithholdReason | None]
) -> tuple[set[str], WithholdReason | None]:
    """The consents that cover, or — if none does — the reason nearest to the data."""
    covering: set[str] = set()
    best: WithholdReason | None = None
    for view, scope_reason in scoped:
        reason = scope_reason or check(view)
        if reason is None:
            covering.add(view.consent_id)
        elif best is None or _RANK[reason] > _RANK[best]:
            best = reason
    if covering:
        return covering, None
    return covering, best or R.NO_CONSENT


def _counts_for_data(view: _ConsentView, minor: bool, under_parental_care: bool) -> bool:
    # Below minor_age every consent is looked at, so a non-guardian's yields guardian_required.
    # Above it, someone unrelated cannot consent for the client's data (only for what they
    # entrusted), and a parent only while the client is under 18 (or of unknown age: no).
    if minor:
        return True
    relation = view.grantor.relation
    if relation in PARENTS:
        return under_parental_care
    return relation != PersonRelation.OTHER


def _ordinary_check(
    view: _ConsentView, *, category: Category, minor: bool
) -> WithholdReason | None:
    return (
        (R.GUARDIAN_REQUIRED if minor and view.grantor.relation not in GUARDIANS else None)
        or view.category_reason(category)
        or view.time_reason
    )


def _entruster_check(view: _ConsentView, *, entruster: Grantor) -> WithholdReason | None:
    return (
        (None if same_person(view.grantor, entruster) else R.ENTRUSTER_NOT_CONSENTED)
        or view.category_reason(Category.ENTRUSTED)
        or view.time_reason
    )


def _guardian_entrusted_check(view: _ConsentView) -> WithholdReason | None:
    return (
        (None if view.grantor.relation in GUARDIANS else R.GUARDIAN_REQUIRED)
        or view.category_reason(Category.ENTRUSTED)
        or view.time_reason
    )


def _entrusted_fate(
    scoped: list[Scoped], minor: bool, entrusters: list[Grantor]
) -> tuple[set[str], WithholdReason | None]:
    """Rule 5 with rule 9: every entruster's own consent, and a guardian's for a minor.

    One fate per category and recipient: if the message holds parts entrusted by several people,
    ``entrusted`` passes only when every one of them consented; otherwise the nearest reason
    among those missing is given.
    """
    relied: set[str] = set()
    reasons: list[WithholdReason] = []
    for entruster in entrusters:
        ids, reason = _best(scoped, partial(_entruster_check, entruster=entruster))
        if reason is None:
            relied |= ids
        else:
            reasons.append(reason)
    if reasons:
        return set(), max(reasons, key=_RANK.__getitem__)
    if minor:
        ids, reason = _best(scoped, _guardian_entrusted_check)
        if reason is not None:
            return set(), reason
        relied |= ids
    return relied, None


def same_person(grantor: Grantor, entruster: Grantor) -> bool:
    """Whether a consent's grantor is the person who entrusted a datum.

    The relation must be the same; for someone who is neither the client nor a parent or
    guardian, the normalised names must match as well.
    """
    if grantor.relation != entruster.relation:
        return False
    if grantor.relation != PersonRelation.OTHER:
        return True
    return (
        grantor.name is not None
        and entruster.name is not None
        and grantor.name.normalised() == entruster.name.normalised()
    )


def _unique(grantors: Iterable[Grantor]) -> list[Grantor]:
    seen: list[Grantor] = []
    for grantor in grantors:
        if grantor not in seen:
            seen.append(grantor)
    return seen


__all__ = [
    "GUARDIANS",
    "LOCAL_ZONE",
    "REASON_PRECEDENCE",
    "ClientFacts",
    "ConsentState",
    "age_on",
    "client_birth_date",
    "decide",
    "release",
    "same_person",
]
