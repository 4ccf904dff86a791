"""The gate the engine asks before every entry (and once per UTC day).

The macro gate (`cryptobot.macro.rules`) is the real one; `PassThroughGate` always allows, for
settings with `macro.enabled = false` and for the cross-check profile. A signal's decision is
made at its candle's close (engine/loop.py), a moment known before the candle's frame comes:
live, `DecisionsAhead` makes it between events, so that no entry waits on it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from cryptobot.model import GateAction, GateDecision


class Gate(Protocol):
    def decide(self, now_ms: int) -> GateDecision:
        """A decision using only what was published by `now_ms`: the same one whenever it is
        asked (a gate's inputs are fixed when it is built)."""
        ...


class PassThroughGate:
    def decide(self, now_ms: int) -> GateDecision:
        return GateDecision(
            ts_ms=now_ms,
            action=GateAction.ALLOW,
            size_factor=1.0,
            reasons=("macro gate disabled in config: every entry allowed",),
        )


class DecisionsAhead:
    """A gate whose decision for a coming moment can be made before it is asked (live: the
    next signal candle's close, between events); asked then, it hands that decision over.
    The same decision the gate makes when asked: its decisions depend on the moment alone (the
    macro gate's history is read once, when it is built; a gate that read new data during a
    run would have to drop the decisions made ahead of it)."""

    KEEP = 8  # decisions made ahead, kept (a portfolio's engines share one signal close)

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._ahead: OrderedDict[int, GateDecision] = OrderedDict()

    def decide(self, now_ms: int) -> GateDecision:
        found = self._ahead.get(now_ms)
        return self.gate.decide(now_ms) if found is None else found

    def decide_ahead(self, ts_ms: int) -> None:
        """Make the decision for `ts_ms` now, unless it was made already."""
        if ts_ms in self._ahead:
            return
        self._ahead[ts_ms] = self.gate.decide(ts_ms)
        while len(self._ahead) > self.KEEP:
            self._ahead.popitem(last=False)
