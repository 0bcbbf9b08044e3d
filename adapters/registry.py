"""The alias table of adapters: system name → adapter class, imported only when asked for."""

from __future__ import annotations

import difflib
import importlib
from functools import cache

from casebridge.adapters.base import Adapter
from casebridge.errors import UnknownSystem

#: System name → "module:Class". Adding a system is one line here plus its subpackage.
ADAPTERS: dict[str, str] = {
    "jobcenter": "casebridge.adapters.jobcenter:JobcenterAdapter",
    "sozialamt": "casebridge.adapters.sozialamt:SozialamtAdapter",
    "jugendamt": "casebridge.adapters.jugendamt:JugendamtAdapter",
    "provider-fhir": "casebridge.adapters.provider_fhir:ProviderFhirAdapter",
}


def systems() -> list[str]:
    """Every system name an adapter is registered for."""
    return sorted(ADAPTERS)


def _unknown(system: str) -> UnknownSystem:
    close = difflib.get_close_matches(system, ADAPTERS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(systems())}"
    return UnknownSystem(f"unknown system '{system}'{hint}")


@cache
def adapter_class(system: str) -> type[Adapter]:
    """The adapter class for ``system``; UnknownSystem with a suggestion if there is none."""
    target = ADAPTERS.get(system)
    if target is None:
        raise _unknown(system)
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target} is not an Adapter")
    return cls


def get_adapter(system: str, *, max_bytes: int | None = None) -> Adapter:
    """An adapter instance for ``system`` (size bound from the argument or the default)."""
    cls = adapter_class(system)
    return cls() if max_bytes is None else cls(max_bytes=max_bytes)
