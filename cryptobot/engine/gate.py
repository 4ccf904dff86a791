"""The gate the engine asks before every entry (and once per UTC day).

The macro gate (`cryptobot.macro.rules`) is the real one; `PassThroughGate` always allows, for
settings with `macro.enabled = false` and for the cross-check profile.
"""

from __future__ import annotations

from typing import Protocol

from cryptobot.model import GateAction, GateDecision


class Gate(Protocol):
    def decide(self, now_ms: int) -> GateDecision:
        """A decision using only what was published by `now_ms`."""
        ...


class PassThroughGate:
    def decide(self, now_ms: int) -> GateDecision:
        return GateDecision(
            ts_ms=now_ms,
            action=GateAction.ALLOW,
            size_factor=1.0,
            reasons=("macro gate disabled in config: every entry allowed",),
        )
