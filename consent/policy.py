"""What a route asks of a transfer beyond consent: required categories and statutory bases.

The route table (routing) produces one :class:`TransferPolicy` per sender → recipient → purpose;
the consent engine only reads it. Keeping the type here lets the engine stay free of routing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from casebridge.canonical_model import Category


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """Rules of one route for one recipient."""

    #: Categories without which the transfer is pointless; missing one blocks it (rule 7).
    required_categories: frozenset[Category] = field(default_factory=frozenset)
    #: Legal-basis codes this route admits for transfers without consent (rule 8); empty: none.
    statutory_bases: frozenset[str] = field(default_factory=frozenset)


#: The policy of a transfer that no route configured anything special for.
DEFAULT_POLICY = TransferPolicy()
