"""Adapters: each agency system's native format to the canonical model and back.

``get_adapter(system)`` returns the adapter for a system name; routing picks the recipient's
adapter by its system and nothing else. Adapters are found through the ``casebridge.adapters``
entry-point group (:mod:`casebridge.adapters.registry`), so a fifth system is a distribution of
its own; docs/adapters.md states the contract.
"""

from casebridge.adapters.base import Adapter
from casebridge.adapters.registry import get_adapter, systems

__all__ = ["Adapter", "get_adapter", "systems"]
