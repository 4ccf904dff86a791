"""The macro gate: Fed QT status (WALCL) and the credit trend (HYG, high-yield spread).

Public surface:
    build_gate(settings, clock) -> Gate           what the engine calls once at start-up
    evaluate(snapshot, macro_settings)           the pure decision (cryptobot.macro.rules)
    load_history(macro_settings, clock)          the precomputed, point-in-time series

`clock` ages the caches of fetched series; the CLI passes it (the wall clock, as a rule).
The loaders and rules are imported when first used: a run with the gate off pays for none.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from cryptobot.engine.gate import Gate, PassThroughGate

if TYPE_CHECKING:
    from cryptobot.clock import Clock
    from cryptobot.config import Settings

_EXPORTS = {
    "MacroGate": "cryptobot.macro.rules",
    "evaluate": "cryptobot.macro.rules",
    "load_history": "cryptobot.macro.loader",
}

__all__ = sorted([*_EXPORTS, "build_gate"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cryptobot.macro' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def build_gate(settings: Settings, clock: Clock) -> Gate:
    """The macro gate of `settings`, or a pass-through gate when it is turned off.

    Loads and precomputes every series now, so that `decide()` is a binary search.
    """
    if not settings.macro.enabled:
        return PassThroughGate()
    from cryptobot.macro.loader import load_history
    from cryptobot.macro.rules import MacroGate

    return MacroGate(load_history(settings.macro, clock), settings.macro)
