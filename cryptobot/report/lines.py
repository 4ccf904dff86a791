"""One trade or one signal as the reviews show it: the model object, its gate and its words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptobot.model import GateAction, GateDecision, PositionSide, Signal, SignalStatus, Trade
from cryptobot.report.serialize import gate_to_dict, signal_to_dict
from cryptobot.report.serialize import trade_to_dict as trade_json


def gate_text(gate: GateDecision | None, short: bool = False) -> str:
    """ "REDUCE x0.5: QT active; ..." (`short`: the first reason only, the gate's headline)."""
    if gate is None:
        return "-"
    reasons = gate.reasons[0] if short and gate.reasons else "; ".join(gate.reasons)
    if reasons.startswith(str(gate.action)):
        return reasons  # the gate already headlines its action
    factor = f" x{gate.size_factor:g}" if gate.action is GateAction.REDUCE else ""
    return f"{gate.action}{factor}: {reasons}" if reasons else f"{gate.action}{factor}"


@dataclass(frozen=True)
class TradeLine:
    trade: Trade
    gate: GateDecision | None
    as_json: dict[str, Any]  # the `backtest --json` trade (it names the symbol)

    @classmethod
    def of(cls, trade: Trade, gate: GateDecision | None) -> TradeLine:
        return cls(trade, gate, trade_json(trade))

    @property
    def side(self) -> PositionSide:
        return PositionSide.of(self.trade.side)

    def csv_row(self) -> dict[str, Any]:
        row = {key: value for key, value in self.as_json.items() if key != "legs"}
        row["legs"] = len(self.trade.legs)
        row["gate_action"] = str(self.gate.action) if self.gate else ""
        row["gate_size_factor"] = self.gate.size_factor if self.gate else ""
        row["gate_reasons"] = "; ".join(self.gate.reasons) if self.gate else ""
        return row


@dataclass(frozen=True)
class SignalLine:
    signal: Signal
    gate: GateDecision | None
    outcome: str  # "entered" or "rejected: <reason>", with the gate's reasons on a BLOCK

    @classmethod
    def of(cls, signal: Signal, gate: GateDecision | None) -> SignalLine:
        return cls(signal, gate, _outcome(signal, gate))

    @property
    def as_json(self) -> dict[str, Any]:
        """The `backtest --json` signal (evidence included), with the gate that judged it."""
        return {**signal_to_dict(self.signal), "gate": gate_to_dict(self.gate)}

    def csv_row(self) -> dict[str, Any]:
        """One flat row: the measured numbers, then per evidence item whether it holds
        (yes, no, unknown) and its value."""
        row = {key: value for key, value in self.as_json.items()
               if key not in ("setup_events", "evidence", "gate")}
        for item in self.signal.evidence:
            row[f"evidence_{item.name}"] = ("unknown" if item.holds is None
                                            else "yes" if item.holds else "no")
            row[f"evidence_{item.name}_value"] = item.as_dict()["value"]
        row["gate_action"] = str(self.gate.action) if self.gate else ""
        row["gate_reasons"] = "; ".join(self.gate.reasons) if self.gate else ""
        return row


def _outcome(signal: Signal, gate: GateDecision | None) -> str:
    if signal.status is SignalStatus.ENTERED:
        return "entered"
    outcome = f"rejected: {signal.reason}"
    if gate is not None and gate.action is GateAction.BLOCK:
        missing = [reason for reason in gate.reasons if reason not in signal.reason]
        if missing:
            outcome += f" (gate BLOCK: {'; '.join(missing)})"
    return outcome
