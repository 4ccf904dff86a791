"""Review data from the store: plain rows and chart data. Renderers only render this.

Nothing here formats for a terminal or a browser; `render_*.py` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptobot.clock import iso_utc
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.model import GateAction, GateDecision, PositionSide, Signal, SignalStatus, Trade
from cryptobot.report.serialize import trade_to_dict as trade_json
from cryptobot.store import RunListing, StoreReader

CHART_CANDLES_BEFORE = 24  # signal candles shown before the spike (or the entry)
CHART_CANDLES_AFTER = 8  # ... and after the last exit


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
    as_json: dict[str, Any]  # the `backtest --json` trade

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


def run_lines(store: StoreReader) -> list[RunListing]:
    return store.runs()


def trade_lines(store: StoreReader, run_id: int, since_ms: int | None = None) -> list[TradeLine]:
    return [
        TradeLine(trade, gate, trade_json(trade))
        for trade, gate in store.trades(run_id)
        if since_ms is None or trade.entry_ms >= since_ms
    ]


def signal_lines(store: StoreReader, run_id: int, rejected_only: bool = False) -> list[SignalLine]:
    lines = []
    for signal, gate in store.signals(run_id):
        if rejected_only and signal.status is not SignalStatus.REJECTED:
            continue
        lines.append(SignalLine(signal, gate, _outcome(signal, gate)))
    return lines


def _outcome(signal: Signal, gate: GateDecision | None) -> str:
    if signal.status is SignalStatus.ENTERED:
        return "entered"
    outcome = f"rejected: {signal.reason}"
    if gate is not None and gate.action is GateAction.BLOCK:
        missing = [reason for reason in gate.reasons if reason not in signal.reason]
        if missing:
            outcome += f" (gate BLOCK: {'; '.join(missing)})"
    return outcome


# -- the HTML report's data ----------------------------------------------------------------


@dataclass(frozen=True)
class GateSpan:
    start_ms: int
    end_ms: int
    action: str
    label: str


@dataclass(frozen=True)
class Marker:
    ts_ms: int
    price: float
    kind: str  # spike, new_low/new_high, candidate, confirmed, expired, entry, exit, rejected ...
    label: str


@dataclass(frozen=True)
class TradeChart:
    number: int
    line: TradeLine
    candles: list[tuple[int, float, float, float, float, float]]  # ts, o, h, l, c, volume
    oi: list[tuple[int, float]]
    markers: list[Marker]
    levels: list[tuple[str, float, int, int]]  # label, price, from ms, to ms
    gate_spans: list[GateSpan]

    @property
    def side(self) -> PositionSide:
        return self.line.side


@dataclass(frozen=True)
class ReportData:
    run_id: int
    title: str
    run_rows: list[tuple[str, str]]
    summary_rows: list[tuple[str, str]]
    equity: list[tuple[int, float]]
    drawdown_pct: list[tuple[int, float]]
    oi_synthetic: bool
    trades: list[TradeChart] = field(default_factory=list)
    signals: list[SignalLine] = field(default_factory=list)


def report_data(store: StoreReader, run_id: int) -> ReportData:
    run = store.load_run(run_id)
    synthetic = store.oi_synthetic(run_id)
    info = run.info
    assert info is not None
    title = f"cryptobot run {run_id}: {info.mode} {info.symbol} on {info.exchange}"
    run_rows = [
        ("mode", info.mode),
        ("exchange", info.exchange),
        ("symbol", info.symbol),
        ("span", _span(info.start_ms, info.end_ms)),
        ("data", info.data_source),
        ("open interest", "SYNTHETIC (hand-built, labelled)" if synthetic else "as recorded"),
    ]
    signals = [SignalLine(s, g, _outcome(s, g)) for s, g in run.signals]
    charts = [
        _trade_chart(number, TradeLine(trade, gate, trade_json(trade)), run, signals)
        for number, (trade, gate) in enumerate(run.trades, start=1)
    ]
    return ReportData(
        run_id=run_id,
        title=title,
        run_rows=run_rows,
        summary_rows=_summary_rows(run),
        equity=list(run.equity_points),
        drawdown_pct=_drawdown_pct(run.equity_points),
        oi_synthetic=synthetic,
        trades=charts,
        signals=signals,
    )


def _span(start_ms: int | None, end_ms: int | None) -> str:
    start = iso_utc(start_ms) if start_ms is not None else "?"
    end = iso_utc(end_ms) if end_ms is not None else "open"
    return f"{start} .. {end}"


def _summary_rows(run: MemoryRecorder) -> list[tuple[str, str]]:
    if run.summary is None:
        pnl = sum(trade.pnl_usdt for trade, _ in run.trades)
        return [
            ("summary", "not stored (the run did not finish)"),
            ("trades", str(len(run.trades))),
            ("PnL USDT (from stored trades)", f"{pnl:.2f}"),
        ]
    return [(str(key).replace("_", " "), _plain(value, str(key)))
            for key, value in run.summary.items()]


def _plain(value: Any, key: str = "") -> str:
    """A summary value as a trader reads it: units from the key's suffix (`_pct`, `_usdt`)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{name}: {_plain(item)}" for name, item in value.items()) or "-"
    if isinstance(value, float):
        if key.endswith("_pct"):
            return f"{value:+,.2f}%" if "pnl" in key or "hold" in key else f"{value:,.2f}%"
        if key.endswith("_usdt"):
            return f"{value:,.2f} USDT"
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return str(value)


def _drawdown_pct(equity: list[tuple[int, float]]) -> list[tuple[int, float]]:
    peak = float("-inf")
    points = []
    for ts_ms, value in equity:
        peak = max(peak, value)
        points.append((ts_ms, (value / peak - 1.0) * 100.0 if peak > 0 else 0.0))
    return points


def _trade_chart(
    number: int, line: TradeLine, run: MemoryRecorder, signals: list[SignalLine]
) -> TradeChart:
    trade = line.trade
    own = next((s for s in signals if s.signal.signal_id == trade.signal_id), None)
    candles = run.candles
    interval_ms = candles[0].interval_ms if candles else 15 * 60_000
    first_ms = min(trade.entry_ms, own.signal.spike_ms if own else trade.entry_ms)
    start_ms = first_ms - CHART_CANDLES_BEFORE * interval_ms
    end_ms = trade.exit_ms + CHART_CANDLES_AFTER * interval_ms
    window = [
        (c.ts_open_ms, c.open, c.high, c.low, c.close, c.volume)
        for c in candles
        if start_ms <= c.ts_open_ms <= end_ms
    ]
    oi = [(s.ts_ms, s.oi_contracts) for s in run.oi_samples if start_ms <= s.ts_ms <= end_ms]
    markers: list[Marker] = []
    if own is not None:
        markers += [
            Marker(e.ts_ms, e.price, e.kind, f"{e.kind} {e.price:,.1f}")
            for e in own.signal.setup_events
        ]
    markers.append(
        Marker(
            trade.entry_ms,
            trade.entry_price,
            "entry",
            f"entry {trade.entry_price:,.1f} x {trade.qty_base:g}",
        )
    )
    markers += [
        Marker(leg.ts_ms, leg.price, "exit", f"{leg.reason} {leg.price:,.1f} x {leg.qty_base:g}")
        for leg in trade.legs
    ]
    markers += [
        Marker(
            s.signal.spike_ms,
            _spike_price(run, s.signal.spike_ms, line.side),
            "rejected",
            s.outcome,
        )
        for s in signals
        if s.signal.status is SignalStatus.REJECTED and start_ms <= s.signal.spike_ms <= end_ms
    ]
    levels = [("stop", trade.initial_stop, trade.entry_ms, trade.exit_ms)]
    for event in run.orders:
        intent = event.intent
        if (
            intent.price is not None
            and intent.client_id.startswith(trade.signal_id)
            and event.status in ("submitted", "open")
            and trade.entry_ms <= event.ts_ms <= trade.exit_ms
        ):
            levels.append((str(intent.purpose), intent.price, event.ts_ms, trade.exit_ms))
    return TradeChart(number, line, window, oi, markers, levels, _gate_spans(run, start_ms, end_ms))


def _spike_price(run: MemoryRecorder, ts_ms: int, side: PositionSide) -> float:
    """Where a spike candle is marked: its low for a long's setup, its high for a short's."""
    for candle in run.candles:
        if candle.ts_open_ms == ts_ms:
            return candle.low if side is PositionSide.LONG else candle.high
    return float("nan")


def _gate_spans(run: MemoryRecorder, start_ms: int, end_ms: int) -> list[GateSpan]:
    """Each stored decision holds until the next one; clipped to the chart window."""
    decisions = sorted((d for d, _ in run.gate_decisions), key=lambda d: d.ts_ms)
    spans = []
    for i, decision in enumerate(decisions):
        until = decisions[i + 1].ts_ms if i + 1 < len(decisions) else end_ms
        lo, hi = max(decision.ts_ms, start_ms), min(until, end_ms)
        if lo < hi:
            spans.append(GateSpan(lo, hi, str(decision.action), gate_text(decision)))
    return spans
