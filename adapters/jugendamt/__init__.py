"""Youth office (Jugendamt) adapter: ``jugendamt-fallakte/3`` JSON case exports."""

from casebridge.adapters.jugendamt.adapter import JugendamtAdapter

__all__ = ["JugendamtAdapter"]
