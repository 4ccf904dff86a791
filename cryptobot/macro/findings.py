"""What the judges of the macro inputs write down while the gate decides one moment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptobot.clock import DAY_MS
from cryptobot.macro.publication import date_start_ms

UNKNOWN = "unknown"  # a state or trend without the data to tell it
STALE_STATE = "stale"  # a state or trend from data too old to be current
UNUSED = "unused"  # an optional input (TGA, repo) the gate cannot use now: it decides without


@dataclass
class Findings:
    """Reasons in order, core inputs too old or missing (`stale`: they BLOCK), optional inputs
    left out (`unused`: they never block alone), and every input for `GateDecision.inputs`."""

    now_ms: int
    reasons: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)

    def leave_out(self, name: str, why: str) -> None:
        """An optional input the gate decides without; the reason names it and says why."""
        self.unused.append(name)
        self.reasons.append(f"{name} unused: {why}")

    def age_days(self, observation_date: str) -> float:
        return round((self.now_ms - date_start_ms(observation_date)) / DAY_MS, 2)
