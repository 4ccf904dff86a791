"""Chart data of the HTML report: one symbol's market, and each trade's window of it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from cryptobot.engine.recorder import MemoryRecorder, OrderEvent
from cryptobot.model import (
    Candle,
    GateDecision,
    OpenInterest,
    OrderPurpose,
    PositionSide,
    SignalStatus,
)
from cryptobot.report.lines import SignalLine, TradeLine, gate_text

CHART_CANDLES_BEFORE = 24  # signal candles shown before the spike (or the entry)
CHART_CANDLES_AFTER = 8  # ... and after the last exit

TARGETS = (OrderPurpose.TP1, OrderPurpose.TP2)
WORKING = ("submitted", "open")  # an order event that places an order (the others end one)
CandleRow = tuple[int, float, float, float, float, float]  # ts_open_ms, o, h, l, c, volume


@dataclass(frozen=True)
class SymbolMarket:
    """What the run saw of one symbol's market, and did there."""

    symbol: str
    candles: list[Candle] = field(default_factory=list)
    oi: list[OpenInterest] = field(default_factory=list)
    signals: list[SignalLine] = field(default_factory=list)
    trades: list[tuple[int, TradeLine]] = field(default_factory=list)  # numbered in the run
    orders: list[OrderEvent] = field(default_factory=list)

    @cached_property
    def _by_open_ms(self) -> dict[int, Candle]:
        return {candle.ts_open_ms: candle for candle in self.candles}

    def spike_price(self, ts_ms: int, side: PositionSide) -> float:
        """Where a spike candle is marked: its low for a long's setup, its high for a short's."""
        candle = self._by_open_ms.get(ts_ms)
        if candle is None:
            return float("nan")
        return candle.low if side is PositionSide.LONG else candle.high


def markets_by_symbol(run: MemoryRecorder, symbols: tuple[str, ...], signals: list[SignalLine],
                      trades: list[TradeLine]) -> dict[str, SymbolMarket]:
    """Each of `symbols`' rows of the run, in the run's order (trades numbered as in `trades`).
    With one symbol, every row is its own, whatever its tag says."""
    markets = {symbol: SymbolMarket(symbol) for symbol in symbols}

    def of(symbol: str) -> SymbolMarket | None:
        return markets[symbols[0]] if len(symbols) == 1 else markets.get(symbol)

    for candle in run.candles:
        if (market := of(candle.symbol)) is not None:
            market.candles.append(candle)
    for sample in run.oi_samples:
        if (market := of(sample.symbol)) is not None:
            market.oi.append(sample)
    for line in signals:
        if (market := of(line.signal.symbol)) is not None:
            market.signals.append(line)
    for number, trade in enumerate(trades, start=1):
        if (market := of(trade.trade.symbol)) is not None:
            market.trades.append((number, trade))
    for event in run.orders:
        if (market := of(event.intent.symbol)) is not None:
            market.orders.append(event)
    return markets


@dataclass(frozen=True)
class GateSpan:
    start_ms: int
    end_ms: int
    action: str
    label: str  # the action and every reason on one line
    reasons: tuple[str, ...] = ()


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
    candles: list[CandleRow]
    oi: list[tuple[int, float]]
    markers: list[Marker]
    stop_steps: list[tuple[int, float]]  # (from ms, stop price): initial, each move, the exit
    levels: list[tuple[str, float, int, int]]  # each target: label, price, from ms, to ms
    gate_spans: list[GateSpan]

    @property
    def side(self) -> PositionSide:
        return self.line.side


def trade_chart(number: int, line: TradeLine, market: SymbolMarket,
                gate_decisions: list[GateDecision]) -> TradeChart:
    """The trade's window of its symbol's candles and OI, its setup, entry and exits, the
    signals rejected meanwhile, its stop and targets, and the macro gate behind it."""
    trade = line.trade
    own = next((s for s in market.signals if s.signal.signal_id == trade.signal_id), None)
    candles = market.candles
    interval_ms = candles[0].interval_ms if candles else 15 * 60_000
    first_ms = min(trade.entry_ms, own.signal.spike_ms if own else trade.entry_ms)
    start_ms = first_ms - CHART_CANDLES_BEFORE * interval_ms
    end_ms = trade.exit_ms + CHART_CANDLES_AFTER * interval_ms
    window = [candle_row(c) for c in candles if start_ms <= c.ts_open_ms <= end_ms]
    oi = [(s.ts_ms, s.oi_contracts) for s in market.oi if start_ms <= s.ts_ms <= end_ms]
    markers: list[Marker] = []
    if own is not None:
        markers += [
            Marker(e.ts_ms, e.price, e.kind, f"{e.kind} {e.price:,.1f}")
            for e in own.signal.setup_events
        ]
    markers.append(Marker(trade.entry_ms, trade.entry_price, "entry",
                          f"entry {trade.entry_price:,.1f} x {trade.qty_base:g}"))
    markers += [
        Marker(leg.ts_ms, leg.price, "exit", f"{leg.reason} {leg.price:,.1f} x {leg.qty_base:g}")
        for leg in trade.legs
    ]
    markers += [
        Marker(s.signal.spike_ms, market.spike_price(s.signal.spike_ms, line.side), "rejected",
               s.outcome)
        for s in market.signals
        if s.signal.status is SignalStatus.REJECTED and start_ms <= s.signal.spike_ms <= end_ms
    ]
    orders = [event for event in market.orders
              if event.intent.price is not None
              and event.intent.client_id.startswith(trade.signal_id)
              and trade.entry_ms <= event.ts_ms <= trade.exit_ms]
    return TradeChart(number, line, window, oi, markers, stop_steps(line, orders),
                      target_levels(line, orders), gate_spans(gate_decisions, start_ms, end_ms))


def stop_steps(line: TradeLine, orders: list[OrderEvent]) -> list[tuple[int, float]]:
    """The stop as one stepped line: the initial stop from the entry, each price it was moved
    to from the order that moved it (a re-placed order at the same price is no step), held to
    the exit."""
    trade = line.trade
    steps = [(trade.entry_ms, trade.initial_stop)]
    for event in sorted(orders, key=lambda e: e.ts_ms):
        price = event.intent.price
        if event.intent.purpose is OrderPurpose.STOP and event.status in WORKING \
                and price is not None and not math.isclose(price, steps[-1][1], rel_tol=1e-9):
            steps.append((event.ts_ms, price))
    return [*steps, (trade.exit_ms, steps[-1][1])]


def target_levels(line: TradeLine, orders: list[OrderEvent]) -> list[tuple[str, float, int, int]]:
    """Each take-profit price once: from its first placement until the last order at that
    price filled or was cancelled (the exit, while one still works)."""
    placed: dict[tuple[str, float], int] = {}
    closed: dict[tuple[str, float], int] = {}
    for event in sorted(orders, key=lambda e: e.ts_ms):
        price = event.intent.price
        if event.intent.purpose not in TARGETS or price is None:
            continue
        key = (str(event.intent.purpose), price)
        if event.status in WORKING:
            placed.setdefault(key, event.ts_ms)
            closed.pop(key, None)
        elif key in placed:
            closed[key] = event.ts_ms
    return [(label, price, from_ms, closed.get((label, price), line.trade.exit_ms))
            for (label, price), from_ms in sorted(placed.items(), key=lambda item: item[1])]


def candle_row(candle: Candle) -> CandleRow:
    return candle.ts_open_ms, candle.open, candle.high, candle.low, candle.close, candle.volume


def gate_spans(decisions: list[GateDecision], start_ms: int, end_ms: int) -> list[GateSpan]:
    """Each stored decision holds until the next one; clipped to the chart window."""
    ordered = sorted(decisions, key=lambda d: d.ts_ms)
    spans = []
    for i, decision in enumerate(ordered):
        until = ordered[i + 1].ts_ms if i + 1 < len(ordered) else end_ms
        lo, hi = max(decision.ts_ms, start_ms), min(until, end_ms)
        if lo < hi:
            spans.append(GateSpan(lo, hi, str(decision.action), gate_text(decision),
                                  tuple(decision.reasons)))
    return spans
