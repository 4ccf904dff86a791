"""`cryptobot backtest`: wire data, strategy, gate, paper broker and store; run; report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cryptobot.cli.app import app

if TYPE_CHECKING:
    from rich.console import Console

    from cryptobot.config import Settings
    from cryptobot.engine.gate import Gate

DEFAULT_CONFIG = "config/default.toml"


def _gate(settings: Settings) -> Gate:
    from cryptobot.clock import LiveClock
    from cryptobot.macro import build_gate

    return build_gate(settings, LiveClock())  # the macro caches age by the wall clock


@app.command()
def backtest(
    data: Path = typer.Option(..., "--data", help="Folder (or file) of candles, OI and funding."),
    config: Path = typer.Option(Path(DEFAULT_CONFIG), "--config", help="Settings TOML."),
    symbol: str | None = typer.Option(None, "--symbol", help="ccxt symbol, e.g. BTC/USDT:USDT, "
                                      "or several, comma-separated (default: the config's)."),
    start: str | None = typer.Option(None, "--from", help="First UTC day traded (inclusive)."),
    end: str | None = typer.Option(None, "--to", help="Last UTC day traded (inclusive)."),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL of the store."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout, nothing else."),
    allow_gaps: bool = typer.Option(False, "--allow-gaps", help="Run across holes > 1h."),
    every_candle: bool = typer.Option(False, "--every-candle",
                                      help="Feed every base candle (slower; same results)."),
) -> None:
    """Backtest the strategy on stored market data with the paper fill simulator."""
    import json
    import sys
    import time

    from cryptobot.brokers.paper import PaperBroker
    from cryptobot.cli.run_setup import (
        heap_frozen,
        start_logging,
        store_url,
        trading_span,
        warmup_shortfall,
        with_symbols,
    )
    from cryptobot.clock import DAY_MS, LiveClock, SimClock, iso_utc
    from cryptobot.config import load_settings
    from cryptobot.data import load_market_data
    from cryptobot.data.liquidation_files import load_liquidations
    from cryptobot.engine.market_rules import load_market_rules
    from cryptobot.engine.recorder import RunInfo
    from cryptobot.report.serialize import signal_to_dict, trade_to_dict
    from cryptobot.runners.backtest import SymbolInputs, run_portfolio_backtest, traded_span
    from cryptobot.runners.event_log import EventLogRecorder
    from cryptobot.store import SqlRecorder, masked_url
    from cryptobot.strategy.loading import load_strategy

    started = time.perf_counter()
    settings = with_symbols(load_settings(config), symbol)
    symbols = settings.market.symbols
    start_ms, end_ms = trading_span(start, end)
    strategies = {s: load_strategy(settings.for_symbol(s), s) for s in symbols}
    warmup_days = settings.feed.warmup_days
    markets = {s: load_market_data(data, s, start_ms, end_ms, allow_gaps=allow_gaps,
                                   exchange=settings.market.exchange,
                                   warmup_ms=warmup_days * DAY_MS) for s in symbols}
    warmup_notes = [note for m in markets.values()
                    if (note := warmup_shortfall(m, start_ms, warmup_days))]
    gate = _gate(settings)
    db_url = store_url(settings, db)
    # The run's simulated time, shared with the log; the runner moves it on from here.
    first_open_ms = min(int(m.candles["ts_open_ms"][0]) for m in markets.values())
    clock = SimClock(start_ms if start_ms is not None else first_open_ms)
    gap_ms = int(settings.evidence.liquidation_gap_minutes * 60_000)
    liquidations = {s: load_liquidations(settings.evidence.liquidations_dir, s, gap_ms)
                    for s in symbols}
    inputs = {s: SymbolInputs(markets[s], strategies[s], PaperBroker(settings.costs, clock),
                              load_market_rules(s) if settings.market.exchange == "binanceusdm"
                              else None, liquidations[s]) for s in symbols}
    # Every row of the run in one transaction at its end (a backtest is written whole or not).
    # Its log lines are held and written when the run ends (or fails), stamped as they happen.
    recorder = EventLogRecorder(SqlRecorder(db_url, clock=LiveClock(), flush_every=None),
                                held_clock_ms=clock.now_ms)
    log_path = start_logging(settings, clock, simulated=True)
    source = "; ".join(f"{data} ({', '.join(m.sources)})" for m in markets.values())
    # The span actually traded (not the options, which may be absent): `runs` and the report.
    spans = [traded_span(settings, m, start_ms, end_ms) for m in markets.values()]
    span = (min(a for a, _ in spans), max(b for _, b in spans))
    try:
        run_id = recorder.start_run(RunInfo("backtest", settings.market.exchange, symbols,
                                            *span, source, settings.model_dump(mode="json")))
        loaded = time.perf_counter()
        with heap_frozen(), _progress_bar(hidden=as_json) as progress:
            result = run_portfolio_backtest(
                settings, inputs, gate, recorder, clock, skip_quiet=not every_candle,
                start_ms=start_ms, end_ms=end_ms, progress=progress)
    finally:
        recorder.write_held_lines()  # a failed run's lines too (a finished run's are written)
    # The run: the engine over the candles and every row written to the store (not reading
    # the data and opening the store before it: `load_s`).
    elapsed = time.perf_counter() - loaded
    trades = [trade_to_dict(t) for t in result.portfolio.trades]
    signals = [signal_to_dict(s) for s in result.portfolio.signals]
    summary = {**result.summary, "symbol": ", ".join(symbols),
               "from": iso_utc(result.start_ms), "to": iso_utc(result.end_ms),
               "data": "; ".join(m.describe() for m in markets.values()), "run_id": run_id,
               "liquidations": "; ".join(
                   records.describe() if records else f"{s}: none in "
                   f"{settings.evidence.liquidations_dir} (liquidation evidence unknown)"
                   for s, records in liquidations.items()),
               "warmup": _warmup_text("; ".join(warmup_notes) or None, warmup_days, start_ms)}
    outcome = {"summary": summary, "trades": trades, "signals": signals,
               "candles_processed": result.candles_processed, "elapsed_s": round(elapsed, 3),
               "load_s": round(loaded - started, 3),
               "run_id": run_id, "db": masked_url(db_url), "log": str(log_path)}
    if as_json:
        sys.stdout.write(json.dumps(outcome, allow_nan=False) + "\n")
        return
    _print_outcome(outcome, elapsed)


@contextmanager
def _progress_bar(hidden: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Candles done of all, on stderr, only on a terminal; beside --json none, and rich is not
    even imported (a tenth of a second of the command)."""
    if hidden:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)
    with Progress(TextColumn("backtest"), BarColumn(), TextColumn("{task.completed:,}/"
                  "{task.total:,} candles"), TimeRemainingColumn(), console=err,
                  disable=not err.is_terminal, transient=True) as bar:
        task = bar.add_task("backtest", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _print_outcome(outcome: dict, elapsed: float) -> None:
    from cryptobot.cli.paper_console import print_where_stored
    from cryptobot.cli.run_setup import table_console

    console = table_console()  # piped or narrow, no price cut to an ellipsis
    _print_report(console, outcome["summary"], outcome["trades"], outcome["candles_processed"],
                  elapsed)
    print_where_stored(console, outcome["db"], outcome["run_id"])
    console.print(f"log: {outcome['log']}", highlight=False, soft_wrap=True)


def _warmup_text(shortfall: str | None, warmup_days: int, start_ms: int | None) -> str:
    if start_ms is None:
        return "none (no --from: trading starts with the data)"
    return shortfall.removeprefix("warm-up ") if shortfall else f"{warmup_days}d before --from"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _open_position_rows(held: dict | None) -> list[tuple[str, str]]:
    if held is None:
        return []
    if "positions" in held:  # a several-symbol run
        return [row for symbol, one in held["positions"].items()
                for row in _open_position_rows({**one, "side": f"{symbol} {one['side']}"})]
    unrealised = ("-" if held["unrealised_pnl_usdt"] is None
                  else f"{held['unrealised_pnl_usdt']:+,.2f} USDT at the last close "
                       f"{held['last_price']:,.1f}")
    return [("open at end", f"{held['side']} {held['qty']:.6f} @ {held['entry_price']:,.1f} since "
                            f"{held['entry_time']}, stop {held['stop_price']:,.1f}"),
            ("unrealised", f"{unrealised} (not in PnL; entry fee "
                           f"{held['entry_fee_usdt']:,.2f} USDT paid, in fees and PnL)")]


def _open_at_end(held: dict | None) -> str:
    count = 0 if held is None else len(held.get("positions", (held,)))
    return f" + {count} open at the end" if count else ""


def _print_report(console: Console, s: dict, trades: list[dict], candles: int,
                  elapsed: float) -> None:
    from rich.table import Table

    table = Table(title=f"backtest {s['symbol']} {s['from']} .. {s['to']}", show_header=False)
    pf = "-" if s["profit_factor"] is None else f"{s['profit_factor']:.2f}"
    bh = "-" if s["buy_and_hold_pct"] is None else f"{s['buy_and_hold_pct']:+.2f}%"
    rows = [
        ("trades", f"{s['trades']} closed{_open_at_end(s['open_position'])}"
                   f" ({s['signals']} signals, {s['signals_entered']} entered)"),
        *_open_position_rows(s["open_position"]),
        ("win rate", f"{s['win_rate_pct']:.1f}%"),
        ("total PnL", f"{_money(s['total_pnl_usdt'])} USDT ({s['total_pnl_pct']:+.2f}%)"),
        ("max drawdown", f"{_money(s['max_drawdown_usdt'])} USDT ({s['max_drawdown_pct']:.2f}%)"),
        ("profit factor", pf),
        ("average R", f"{s['average_r']:+.2f}"),
        ("exposure", f"{s['exposure_pct']:.1f}% of the time"),
        ("fees", f"{_money(s['fees_usdt'])} USDT"),
        ("funding", f"{_money(s['funding_usdt'])} USDT"
         + (f", {s['funding_note']}" if "funding_note" in s else "")
         if s["funding_charged"] else s.get("funding_note", "not charged")),
        *([("stops", s["stop_trigger_note"])] if "stop_trigger_note" in s else []),
        ("buy and hold", bh),
        ("open interest", "SYNTHETIC (labelled synthetic data)" if s["oi_synthetic"]
         else ("real" if s["oi_samples"] else "none")),
        ("data", s["data"]),
        *([("liquidations", s["liquidations"])] if "liquidations" in s else []),
        ("warm-up", s["warmup"]),
        ("speed", f"{candles:,} base candles in {elapsed:.2f}s"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if s["rejections"]:
        console.print("rejected signals: " + ", ".join(
            f"{reason} x{count}" for reason, count in s["rejections"].items()))
    several = "symbols" in s  # each symbol's own summary, in a several-symbol run
    if several:
        by_symbol = Table(title="by symbol")
        for column in ("symbol", "trades", "win rate", "PnL USDT", "signals", "entered"):
            by_symbol.add_column(column)
        for symbol, one in s["symbols"].items():
            by_symbol.add_row(symbol, str(one["trades"]), f"{one['win_rate_pct']:.1f}%",
                              f"{one['total_pnl_usdt']:+,.2f}", str(one["signals"]),
                              str(one["signals_entered"]))
        console.print(by_symbol)
    if trades:
        listing = Table(title="trades")
        if several:
            listing.add_column("symbol")
        for column in ("side", "entry", "exit", "qty", "entry price", "exit price", "PnL USDT",
                       "R", "exit reason"):
            listing.add_column(column)
        for t in trades:
            listing.add_row(*([t["symbol"]] if several else []), t["side"], t["entry_time"],
                            t["exit_time"], f"{t['qty']:.4f}", f"{t['entry_price']:.1f}",
                            f"{t['exit_price']:.1f}",
                            f"{t['pnl_usdt']:+.2f}", f"{t['r_multiple']:+.2f}", t["exit_reason"])
        console.print(listing)
