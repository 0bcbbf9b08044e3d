"""The adapter registry: system name → adapter class, read from the ``casebridge.adapters``
entry-point group and imported only when asked for.

casebridge's own four adapters are registered in its ``pyproject.toml`` exactly like a plugin's
(``[project.entry-points."casebridge.adapters"]``), so a fifth agency system is a separate
distribution that declares ``mysystem = "mypackage.adapter:MyAdapter"`` in the same group; see
docs/adapters.md for the contract. Entry points come from the installed metadata (plain and
editable installs alike), so a change of the group takes effect on the next ``pip install``.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from casebridge.adapters.base import Adapter
from casebridge.errors import ConfigError, UnknownSystem

#: The entry-point group every adapter (casebridge's own included) is registered in.
GROUP = "casebridge.adapters"


def _distribution(entry: EntryPoint) -> str:
    return entry.dist.name if entry.dist is not None else "?"


@cache
def _entries() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=GROUP):
        known = found.get(entry.name)
        if known is not None and known.value != entry.value:
            # A second distribution claiming a system name would silently decide which code reads
            # and writes that agency's data; refuse instead of picking one.
            raise ConfigError(
                f"adapter system '{entry.name}' is registered twice: by "
                f"{_distribution(known)} ({known.value}) and {_distribution(entry)} "
                f"({entry.value}); uninstall one of them"
            )
        found[entry.name] = entry
    return found


def systems() -> list[str]:
    """Every system name an installed adapter is registered for."""
    return sorted(_entries())


def installed() -> str:
    """The installed systems for messages, e.g. ``jobcenter, jugendamt, …``."""
    names = systems()
    if not names:
        return (
            "none (the installed casebridge metadata lists no adapters: reinstall casebridge "
            "with pip so its entry points are registered)"
        )
    return ", ".join(names)


def _unknown(system: str) -> UnknownSystem:
    close = difflib.get_close_matches(system, systems(), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; installed: {installed()}"
    return UnknownSystem(f"unknown system '{system}'{hint}")


@cache
def adapter_class(system: str) -> type[Adapter]:
    """The adapter class for ``system``; UnknownSystem with a suggestion if there is none.

    ConfigError if the registered object cannot be imported or breaks the contract (not an
    :class:`Adapter` subclass, or its ``system`` differs from the name it is registered under).
    """
    entry = _entries().get(system)
    if entry is None:
        raise _unknown(system)
    where = f"adapter '{system}' ({entry.value} from {_distribution(entry)})"
    try:
        cls = entry.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin is a configuration problem
        raise ConfigError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ConfigError(f"{where} is not a casebridge.adapters.Adapter subclass")
    if getattr(cls, "system", None) != system:
        raise ConfigError(f"{where} declares system '{getattr(cls, 'system', None)}'")
    return cls


def get_adapter(system: str, *, max_bytes: int | None = None) -> Adapter:
    """An adapter instance for ``system`` (size bound from the argument or the default)."""
    cls = adapter_class(system)
    return cls() if max_bytes is None else cls(max_bytes=max_bytes)


def reload() -> None:
    """Forget what was read from the installed metadata (after installing or removing a plugin
    in a running process)."""
    _entries.cache_clear()
    adapter_class.cache_clear()
