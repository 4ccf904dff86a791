"""The macro gate: Fed QT status (WALCL) and the credit trend (HYG, high-yield spread).

Public surface:
    build_gate(settings, clock) -> Gate           what the engine calls once at start-up
    evaluate(snapshot, macro_settings)           the pure decision (cryptobot.macro.rules)
    load_history(macro_settings, clock)          the precomputed, point-in-time series

`clock` ages the caches of fetched series; the CLI passes it (the wall clock, as a rule).
"""

from __future__ import annotations

from cryptobot.clock import Clock
from cryptobot.config import Settings
from cryptobot.engine.gate import Gate, PassThroughGate
from cryptobot.macro.loader import load_history
from cryptobot.macro.rules import MacroGate, evaluate

__all__ = ["MacroGate", "build_gate", "evaluate", "load_history"]


def build_gate(settings: Settings, clock: Clock) -> Gate:
    """The macro gate of `settings`, or a pass-through gate when it is turned off.

    Loads and precomputes every series now, so that `decide()` is a binary search.
    """
    if not settings.macro.enabled:
        return PassThroughGate()
    return MacroGate(load_history(settings.macro, clock), settings.macro)
