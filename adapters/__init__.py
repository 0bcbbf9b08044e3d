"""Adapters: each agency system's native format to the canonical model and back.

``get_adapter(system)`` returns the adapter for a system name; routing picks the recipient's
adapter by its system and nothing else, so a fifth system is one new subpackage plus one line in
:mod:`casebridge.adapters.registry`.
"""

from casebridge.adapters.base import Adapter
from casebridge.adapters.registry import get_adapter, systems

__all__ = ["Adapter", "get_adapter", "systems"]
