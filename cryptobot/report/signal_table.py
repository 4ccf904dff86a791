"""The report's signals table as plain data: the measured numbers as columns, the rebound's
evidence as columns when the signals carry it, and the macro gate once per change.

Rows are built from the signals' JSON shape (`serialize.signal_to_dict`, the shape of
`backtest --json` and the reviews), so whatever that shape carries, e.g. `"evidence": [{"name",
"value", "holds", "detail"}, ...]`, reaches the table; runs stored before it have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptobot.clock import iso_utc
from cryptobot.model import GateAction, GateDecision
from cryptobot.report.lines import SignalLine
from cryptobot.report.serialize import signal_to_dict

# key in the signal's dict: (column heading, decimals); blank where the rule did not measure it
NUMBER_COLUMNS = {
    "body_atr": ("spike body / ATR", 2),
    "volume_ratio": ("volume / average", 2),
    "drop_from_high_pct": ("drop from high %", 2),
    "rise_from_low_pct": ("rise from low %", 2),
    "oi_change_pct": ("OI change %", 2),
    "atr": ("ATR", 1),
    "stop_price": ("stop", 1),
    "qty_base": ("size", 6),
    "risk_usdt": ("risk USDT", 2),
}
NOT_NUMBERS = {"signal_id", "symbol", "time", "decided_time", "status", "reason", "setup_events",
               "evidence"}
NOTHING_SHOWN = object()  # before the first row: its gate, even none, is a change
EVIDENCE_MARKS = {True: "✔", False: "✘", None: "?"}


@dataclass(frozen=True)
class EvidenceCell:
    mark: str  # ✔ holds, ✘ does not, ? unknown (data missing), "" not measured for this signal
    value: str
    detail: str


@dataclass(frozen=True)
class GateChange:
    """The gate as it stood at a row whose gate differs from the row before's."""

    headline: str  # "REDUCE x0.5" or the gate's first reason when it headlines itself
    reasons: tuple[str, ...]
    time: str


@dataclass(frozen=True)
class SignalRow:
    time: str  # the spike candle's open, UTC
    symbol: str
    entered: bool
    outcome: str
    numbers: list[str]  # one per `SignalTable.number_columns`
    evidence: list[EvidenceCell]  # one per `SignalTable.evidence_columns`
    gate: str  # the short form ("REDUCE x0.5"); the whole gate is in the change row
    gate_change: GateChange | None
    all_numbers: str  # every stored number of the signal, for the hover


@dataclass(frozen=True)
class SignalTable:
    number_columns: list[str]  # headings
    evidence_columns: list[str]
    rows: list[SignalRow]
    show_symbol: bool


def signal_table(lines: list[SignalLine], show_symbol: bool = False) -> SignalTable:
    return table_of([(signal_to_dict(line.signal), line.gate, line.outcome) for line in lines],
                    show_symbol)


def table_of(signals: list[tuple[dict[str, Any], GateDecision | None, str]],
             show_symbol: bool = False) -> SignalTable:
    """`signals`: (the signal's dict, its gate, what became of it) in time order."""
    numbers = [key for key in NUMBER_COLUMNS if any(d.get(key) is not None for d, _, _ in signals)]
    evidence_names: list[str] = []
    for signal, _, _ in signals:
        for item in signal.get("evidence") or []:
            if item["name"] not in evidence_names:
                evidence_names.append(item["name"])
    rows: list[SignalRow] = []
    shown_gate: object = NOTHING_SHOWN
    for signal, gate, outcome in signals:
        key = _gate_key(gate)
        change = None
        if key != shown_gate:
            change = _change(gate, signal["decided_time"])
            shown_gate = key
        rows.append(SignalRow(
            time=signal["time"], symbol=signal["symbol"], entered=signal["status"] == "entered",
            outcome=outcome, numbers=[_number(signal.get(key), key) for key in numbers],
            evidence=_evidence_cells(signal.get("evidence") or [], evidence_names),
            gate=_gate_short(gate), gate_change=change, all_numbers=_all_numbers(signal)))
    return SignalTable([NUMBER_COLUMNS[key][0] for key in numbers],
                       [name.replace("_", " ") for name in evidence_names], rows, show_symbol)


def _gate_key(gate: GateDecision | None) -> tuple[Any, ...] | None:
    """What a change of the gate is: its action, size factor or headline, not the day's
    numbers in its reasons."""
    if gate is None:
        return None
    return gate.action, gate.size_factor, gate.reasons[0] if gate.reasons else ""


def _gate_short(gate: GateDecision | None) -> str:
    if gate is None:
        return "-"
    factor = f" x{gate.size_factor:g}" if gate.action is GateAction.REDUCE else ""
    return f"{gate.action}{factor}"


def _change(gate: GateDecision | None, decided_time: str) -> GateChange:
    if gate is None:
        return GateChange("no gate decision stored", (), decided_time)
    return GateChange(_gate_short(gate), tuple(gate.reasons), iso_utc(gate.ts_ms))


def _number(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    decimals = NUMBER_COLUMNS[key][1]
    if key == "qty_base":
        return f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    signed = "+" if key.endswith("_pct") and key != "drop_from_high_pct" else ""
    return f"{value:{signed},.{decimals}f}"


def _evidence_cells(items: list[dict[str, Any]], names: list[str]) -> list[EvidenceCell]:
    by_name = {item["name"]: item for item in items}
    cells = []
    for name in names:
        item = by_name.get(name)
        if item is None:
            cells.append(EvidenceCell("", "", "not measured for this signal"))
            continue
        cells.append(EvidenceCell(EVIDENCE_MARKS.get(item.get("holds"), "?"),
                                  evidence_value(name, item.get("value")),
                                  str(item.get("detail") or "")))
    return cells


def evidence_value(name: str, value: float | None) -> str:
    """An evidence item's value in its unit, as `cryptobot signals` shows it: open interest's
    change in %, funding's last rate in %, liquidations as a multiple of their median."""
    if value is None:
        return ""
    if name == "open_interest":
        return f"{value:+.2f}%"
    if name == "funding_flushed":
        return f"{value * 100:+.4f}%"
    return f"{value:.1f}x" if name == "liquidations" else f"{value:g}"


def _all_numbers(signal: dict[str, Any]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {value:,.6g}" if isinstance(value, float)
                     else f"{key.replace('_', ' ')} {value}"
                     for key, value in signal.items()
                     if key not in NOT_NUMBERS and value is not None)
