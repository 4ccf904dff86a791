"""Review data from the store: plain rows and chart data. Renderers only render this.

Nothing here formats for a terminal or a browser; `render_*.py` do. A run of several symbols
is reviewed whole or for some of its symbols (`chosen_symbols`, from a command's --symbol); its
report has the portfolio's equity and a section per symbol (`symbol_sections.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptobot.clock import iso_utc
from cryptobot.engine.recorder import MemoryRecorder, RunInfo
from cryptobot.errors import ConfigError
from cryptobot.model import GateDecision, SignalStatus
from cryptobot.report.charts import GateSpan, TradeChart, gate_spans, markets_by_symbol, trade_chart
from cryptobot.report.figure_words import figure_rows
from cryptobot.report.lines import SignalLine, TradeLine, gate_text
from cryptobot.report.marked_equity import MarkedEquity, marked_equity
from cryptobot.report.signal_table import SignalTable, signal_table
from cryptobot.report.symbol_sections import SymbolSection, symbol_section
from cryptobot.store import RunListing, StoreReader

__all__ = ["ReportData", "SignalLine", "SymbolSection", "TradeChart", "TradeLine", "chosen_symbols",
           "gate_text", "report_data", "run_lines", "signal_lines", "trade_lines"]


def run_lines(store: StoreReader) -> list[RunListing]:
    return store.runs()


def chosen_symbols(store: StoreReader, run_id: int, option: str | None) -> tuple[str, ...] | None:
    """The run's symbols a --symbol list names (comma-separated; "ETHUSDT" or "eth/usdt:usdt"
    name "ETH/USDT:USDT" too), in the run's order; None (no filter) without the option or when
    it names them all. A symbol the run does not hold is a ConfigError naming the ones it does."""
    if option is None:
        return None
    held = store.run_symbols(run_id)
    wanted = [part.strip() for part in option.split(",")]
    if not all(wanted):
        raise ConfigError(f"--symbol {option!r}: an empty symbol in the list")
    chosen = set()
    for name in wanted:
        matches = [s for s in held if s == name] or [
            s for s in held if _compact(s) == _compact(name)]
        if len(matches) != 1:
            raise ConfigError(f"--symbol {name}: run {run_id} holds {', '.join(held)}")
        chosen.add(matches[0])
    return None if len(chosen) == len(held) else tuple(s for s in held if s in chosen)


def _compact(symbol: str) -> str:
    """BTC/USDT:USDT, BTC/USDT and btcusdt alike: BTCUSDT."""
    return symbol.split(":")[0].replace("/", "").replace("-", "").upper()


def trade_lines(store: StoreReader, run_id: int, since_ms: int | None = None,
                symbols: tuple[str, ...] | None = None) -> list[TradeLine]:
    return [
        TradeLine.of(trade, gate)
        for trade, gate in store.trades(run_id, symbols=symbols)
        if since_ms is None or trade.entry_ms >= since_ms
    ]


def signal_lines(store: StoreReader, run_id: int, rejected_only: bool = False,
                 symbols: tuple[str, ...] | None = None) -> list[SignalLine]:
    lines = []
    for signal, gate in store.signals(run_id, symbols=symbols):
        if rejected_only and signal.status is not SignalStatus.REJECTED:
            continue
        lines.append(SignalLine.of(signal, gate))
    return lines


# -- the HTML report's data ----------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    """`sections`: one per symbol shown, for a run of several symbols; a one-symbol run's
    report has none (its signals and trades are the run's)."""

    run_id: int
    title: str
    run_rows: list[tuple[str, str]]
    summary_rows: list[tuple[str, str]]
    equity: list[tuple[int, float]]  # stored, realised: the whole run's, also when filtered
    marked: MarkedEquity | None  # marked to market each candle: the whole run's, also filtered
    drawdown_pct: list[tuple[int, float]]  # the marked curve's, or the realised one's without
    gate_timeline: list[GateSpan]  # the macro gate over the whole run
    oi_synthetic: bool
    trades: list[TradeChart] = field(default_factory=list)  # every shown symbol's, run order
    signals: list[SignalLine] = field(default_factory=list)
    signal_table: SignalTable | None = None  # a one-symbol run's; sections hold their own
    sections: list[SymbolSection] = field(default_factory=list)


def report_data(store: StoreReader, run_id: int,
                symbols: tuple[str, ...] | None = None) -> ReportData:
    """The report of the run, or of some of its symbols (`chosen_symbols`)."""
    run = store.load_run(run_id, symbols=symbols)
    synthetic = store.oi_synthetic(run_id)
    info = run.info
    assert info is not None
    shown = info.symbols if symbols is None else symbols
    several = len(info.symbols) > 1
    signals = [SignalLine.of(s, g) for s, g in run.signals]
    lines = [TradeLine.of(trade, gate) for trade, gate in run.trades]
    markets = markets_by_symbol(run, shown, signals, lines)
    gates = [decision for decision, _ in run.gate_decisions]
    charts = sorted((trade_chart(number, line, market, gates)
                     for market in markets.values() for number, line in market.trades),
                    key=lambda chart: chart.number)
    marked = _marked_equity(store, run_id, run if symbols is None else None)
    stored_by_symbol = (run.summary or {}).get("symbols") or {}
    sections = [
        symbol_section(market, [c for c in charts if c.line.trade.symbol == symbol],
                       stored_by_symbol.get(symbol))
        for symbol, market in markets.items()
    ] if several else []
    return ReportData(
        run_id=run_id,
        title=f"cryptobot run {run_id}: {info.mode} {_symbols_text(info.symbols)} "
              f"on {info.exchange}",
        run_rows=_run_rows(info, synthetic, shown if symbols is not None and several else None),
        summary_rows=_summary_rows(run, marked),
        equity=list(run.equity_points),
        marked=marked,
        drawdown_pct=marked.drawdown_pct if marked else _drawdown_pct(run.equity_points),
        gate_timeline=gate_spans(gates, _first_ms(gates, info), _last_ms(run, info)),
        oi_synthetic=synthetic,
        trades=charts,
        signals=signals,
        signal_table=None if several else signal_table(signals),
        sections=sections,
    )


def _symbols_text(symbols: tuple[str, ...]) -> str:
    return ", ".join(symbols) if len(symbols) <= 3 else f"{len(symbols)} symbols"


def _run_rows(info: RunInfo, synthetic: bool, shown: tuple[str, ...] | None
              ) -> list[tuple[str, str]]:
    rows = [
        ("mode", info.mode),
        ("exchange", info.exchange),
        ("symbol" if len(info.symbols) == 1 else "symbols", ", ".join(info.symbols)),
    ]
    if shown is not None:
        rows.append(("shown here", ", ".join(shown)))
    return rows + [
        ("span", _span(info.start_ms, info.end_ms)),
        ("data", info.data_source),
        ("open interest", "SYNTHETIC (hand-built, labelled)" if synthetic else "as recorded"),
    ]


def _span(start_ms: int | None, end_ms: int | None) -> str:
    start = iso_utc(start_ms) if start_ms is not None else "?"
    end = iso_utc(end_ms) if end_ms is not None else "open"
    return f"{start} .. {end}"


def _marked_equity(store: StoreReader, run_id: int, run: MemoryRecorder | None
                   ) -> MarkedEquity | None:
    """The whole run's equity marked to market (`run`: the run as loaded, when it is whole)."""
    whole = run or store.load_run(run_id)
    starting = (whole.summary or {}).get("starting_equity_usdt")
    if starting is None and whole.equity_points:
        starting = whole.equity_points[0][1]
    if starting is None:
        return None
    return marked_equity(starting, whole.candles, whole.fills, [t for t, _ in whole.trades])


def _first_ms(gates: list[GateDecision], info: RunInfo) -> int:
    return info.start_ms if info.start_ms is not None else min((g.ts_ms for g in gates), default=0)


def _last_ms(run: MemoryRecorder, info: RunInfo) -> int:
    """The run's end, or its last candle's close while it runs."""
    if info.end_ms is not None:
        return info.end_ms
    return max((c.ts_close_ms for c in run.candles), default=info.start_ms or 0)


def _summary_rows(run: MemoryRecorder, marked: MarkedEquity | None) -> list[tuple[str, str]]:
    """The run's stored summary (each symbol's own part is in its section), and the drawdown
    with open trades marked to market."""
    rows = _stored_summary_rows(run)
    if marked is not None:
        at = next((i + 1 for i, (label, _) in enumerate(rows)
                   if label.startswith("Max drawdown")), len(rows))
        rows.insert(at, ("Max drawdown, open trades marked to market each candle",
                         f"{marked.max_drawdown_usdt:,.2f} USDT ({marked.max_drawdown_pct:.2f}%)"))
    return rows


def _stored_summary_rows(run: MemoryRecorder) -> list[tuple[str, str]]:
    if run.summary is None:
        pnl = sum(trade.pnl_usdt for trade, _ in run.trades)
        return [
            ("Summary", "not stored (the run did not finish)"),
            ("Trades", str(len(run.trades))),
            ("Net PnL of the closed trades stored", f"{pnl:+,.2f} USDT"),
        ]
    summary: dict[str, Any] = {k: v for k, v in run.summary.items() if k != "symbols"}
    return figure_rows(summary)


def _drawdown_pct(equity: list[tuple[int, float]]) -> list[tuple[int, float]]:
    peak = float("-inf")
    points = []
    for ts_ms, value in equity:
        peak = max(peak, value)
        points.append((ts_ms, (value / peak - 1.0) * 100.0 if peak > 0 else 0.0))
    return points
