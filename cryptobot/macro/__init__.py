"""The macro gate: Fed QT status (WALCL) and the credit trend (HYG, high-yield spread).

Public surface:
    build_gate(settings, clock=None) -> Gate      what the engine calls once at start-up
    evaluate(snapshot, macro_settings)           the pure decision (cryptobot.macro.rules)
    load_history(macro_settings, clock=None)     the precomputed, point-in-time series
"""

from __future__ import annotations

from cryptobot.clock import Clock
from cryptobot.config import Settings
from cryptobot.engine.gate import Gate, PassThroughGate
from cryptobot.macro.loader import load_history
from cryptobot.macro.rules import MacroGate, evaluate

__all__ = ["MacroGate", "build_gate", "evaluate", "load_history"]


def build_gate(settings: Settings, clock: Clock | None = None) -> Gate:
    """The macro gate of `settings`, or a pass-through gate when it is turned off.

    Loads and precomputes every series now, so that `decide()` is a binary search.
    """
    if not settings.macro.enabled:
        return PassThroughGate()
    return MacroGate(load_history(settings.macro, clock), settings.macro)
