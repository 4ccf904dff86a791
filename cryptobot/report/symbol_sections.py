"""One section per symbol of a several-symbol run's report: the symbol's own figures, its price
over the whole run with its trades' entries and exits, its OI, its signals and its trades.

The run's price chart is the signal candles, merged into wider candles when the run is long
(a 14-month run of 15m candles is drawn as 8h candles), so that a report of twenty symbols
stays a file a browser opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Any

from cryptobot.model import Candle, PositionSide
from cryptobot.report.charts import CandleRow, Marker, SymbolMarket, TradeChart, candle_row
from cryptobot.report.figure_words import figure_rows
from cryptobot.report.lines import SignalLine
from cryptobot.report.signal_table import SignalTable, signal_table
from cryptobot.report.summary import symbol_figures

MAX_OVERVIEW_CANDLES = 1500
MAX_OVERVIEW_OI = 3000
BUCKET_MINUTES = (1, 5, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 10080)
FROM_STORED_SUMMARY = ("buy_and_hold_pct", "exposure_pct")


@dataclass(frozen=True)
class PriceChart:
    title: str  # "15m candles", or "8h candles (merged from 15m)"
    candles: list[CandleRow]
    oi: list[tuple[int, float]]
    markers: list[Marker]  # each trade's entry ("entry" or "short_entry") and exits ("exit")


@dataclass(frozen=True)
class SymbolSection:
    symbol: str
    figure_rows: list[tuple[str, str]]
    price: PriceChart
    signals: list[SignalLine]
    trades: list[TradeChart]
    signal_table: SignalTable

    @property
    def anchor(self) -> str:
        """An HTML id for the section: "BTC-USDT-USDT"."""
        return "".join(ch if ch.isalnum() else "-" for ch in self.symbol)


def symbol_section(market: SymbolMarket, charts: list[TradeChart],
                   stored_summary: dict[str, Any] | None) -> SymbolSection:
    """`stored_summary`: the run summary's own part for this symbol, when the run stored one."""
    figures = symbol_figures([line.trade for _, line in market.trades],
                             [line.signal for line in market.signals])
    for key in FROM_STORED_SUMMARY:
        if stored_summary and key in stored_summary:
            figures[key] = stored_summary[key]
    title, candles = overview_candles(market.candles)
    step = max(1, ceil(len(market.oi) / MAX_OVERVIEW_OI))
    oi = [(sample.ts_ms, sample.oi_contracts) for sample in market.oi[::step]]
    markers = []
    for _, line in market.trades:
        trade = line.trade
        entry = "short_entry" if line.side is PositionSide.SHORT else "entry"
        markers.append(Marker(trade.entry_ms, trade.entry_price, entry,
                              f"{line.side} entry {trade.entry_price:,.2f} x {trade.qty_base:g}"))
        markers += [Marker(leg.ts_ms, leg.price, "exit",
                           f"{leg.reason} {leg.price:,.2f} x {leg.qty_base:g}")
                    for leg in trade.legs]
    return SymbolSection(market.symbol, figure_rows(figures),
                         PriceChart(title, candles, oi, markers), market.signals, charts,
                         signal_table(market.signals))


def overview_candles(candles: list[Candle]) -> tuple[str, list[CandleRow]]:
    """The run's candles, merged into the narrowest bucket that keeps at most
    MAX_OVERVIEW_CANDLES of them; (chart title, rows)."""
    if not candles:
        return "candles", []
    interval_ms = candles[0].interval_ms
    span_ms = candles[-1].ts_open_ms - candles[0].ts_open_ms + interval_ms
    bucket_ms = interval_ms
    if span_ms / interval_ms > MAX_OVERVIEW_CANDLES:
        fitting = [minutes * 60_000 for minutes in BUCKET_MINUTES
                   if minutes * 60_000 % interval_ms == 0
                   and span_ms / (minutes * 60_000) <= MAX_OVERVIEW_CANDLES]
        bucket_ms = fitting[0] if fitting else (
            ceil(span_ms / MAX_OVERVIEW_CANDLES / interval_ms) * interval_ms)
    if bucket_ms == interval_ms:
        return f"{timeframe_label(interval_ms)} candles", [candle_row(c) for c in candles]
    merged: dict[int, list[float]] = {}
    for c in candles:
        start = c.ts_open_ms - c.ts_open_ms % bucket_ms
        row = merged.get(start)
        if row is None:
            merged[start] = [c.open, c.high, c.low, c.close, c.volume]
        else:
            row[1], row[2] = max(row[1], c.high), min(row[2], c.low)
            row[3], row[4] = c.close, row[4] + c.volume
    title = f"{timeframe_label(bucket_ms)} candles (merged from {timeframe_label(interval_ms)})"
    return title, [(start, o, h, lo, c, v) for start, (o, h, lo, c, v) in merged.items()]


def timeframe_label(interval_ms: int) -> str:
    minutes = interval_ms // 60_000
    for unit, size in (("w", 10080), ("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"
