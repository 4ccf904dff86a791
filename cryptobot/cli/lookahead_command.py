"""`cryptobot lookahead`: does any decision change when later data is added?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cryptobot.cli.app import app

if TYPE_CHECKING:
    from rich.console import Console

    from cryptobot.runners.lookahead import Difference, LookaheadReport

DEFAULT_CONFIG = "config/default.toml"
_TABLE_ROWS = 60  # more are counted, not shown (--json lists all)
_ORDER = ("signal", "trade", "fill", "order", "gate decision")


@app.command()
def lookahead(
    data: Path = typer.Option(..., "--data", help="Folder (or file) of candles, OI and funding."),
    config: Path = typer.Option(Path(DEFAULT_CONFIG), "--config", help="Settings TOML."),
    cuts: int = typer.Option(12, "--cuts", help="How many points to cut the data at."),
    symbol: str | None = typer.Option(None, "--symbol", help="ccxt symbol, e.g. BTC/USDT:USDT."),
    start: str | None = typer.Option(None, "--from", help="First UTC day traded (inclusive)."),
    end: str | None = typer.Option(None, "--to", help="Last UTC day traded (inclusive)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout, nothing else."),
    allow_gaps: bool = typer.Option(False, "--allow-gaps", help="Run across holes > 1h."),
) -> None:
    """Backtest on the data cut at N points and list every decision (signal, order, fill,
    trade, gate) that changes when the later data is added; exit code 1 if any does."""
    import json
    import sys
    import time

    from rich.console import Console

    from cryptobot.cli.run_setup import trading_span, with_symbols
    from cryptobot.clock import DAY_MS, LiveClock
    from cryptobot.config import load_settings
    from cryptobot.data import load_market_data
    from cryptobot.engine.market_rules import load_market_rules
    from cryptobot.errors import ConfigError
    from cryptobot.macro import build_gate
    from cryptobot.runners.lookahead import find_lookahead
    from cryptobot.strategy.loading import load_strategy

    started = time.perf_counter()
    settings = with_symbols(load_settings(config), symbol)
    if len(settings.market.symbols) != 1:
        raise ConfigError("lookahead checks one symbol at a time: give --symbol SYMBOL (the "
                          f"config watches {', '.join(settings.market.symbols)})")
    symbol = settings.market.symbol
    start_ms, end_ms = trading_span(start, end)
    load_strategy(settings, symbol)  # a config or strategy error before any data is read
    market = load_market_data(data, symbol, start_ms, end_ms, allow_gaps=allow_gaps,
                              exchange=settings.market.exchange,
                              warmup_ms=settings.feed.warmup_days * DAY_MS)
    rules = load_market_rules(symbol) if settings.market.exchange == "binanceusdm" else None
    gate = build_gate(settings, LiveClock())  # the macro caches age by the wall clock
    report = find_lookahead(settings, market, cuts, start_ms, end_ms, gate=gate,
                            market_rules=rules)
    elapsed = time.perf_counter() - started
    if as_json:
        sys.stdout.write(json.dumps(_as_dict(report, elapsed)) + "\n")
    else:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
        _print_report(console, report, elapsed)
    if not report.clean:
        raise typer.Exit(1)


def _as_dict(report: LookaheadReport, elapsed: float) -> dict:
    from dataclasses import asdict

    from cryptobot.clock import iso_utc

    return {"clean": report.clean, "cuts": [iso_utc(t) for t in report.cuts_ms],
            "compared": report.compared,
            "differences": [asdict(d) for d in report.differences],
            "causal": [asdict(d) for d in report.causal], "elapsed_s": round(elapsed, 3)}


def _compared_text(report: LookaheadReport) -> str:
    counts = ", ".join(f"{count} {kind}s" for kind, count in report.compared.items())
    return f"{len(report.cuts_ms)} cuts, {counts} compared"


def _print_report(console: Console, report: LookaheadReport, elapsed: float) -> None:
    from rich.table import Table

    if report.clean:
        console.print(f"no look-ahead: {_compared_text(report)}; indicators and trigger causal",
                      highlight=False, soft_wrap=True)
        return
    changed = len({d.where for d in report.differences})
    console.print(f"look-ahead: {len(report.differences)} decisions differ at {changed} of "
                  f"{len(report.cuts_ms)} cuts, {len(report.causal)} mismatches in the "
                  f"indicators and trigger ({_compared_text(report)}; {elapsed:.1f}s)",
                  highlight=False, soft_wrap=True)
    # Causes first (indicators, trigger), then decisions, the weightiest kinds first.
    rows: list[Difference] = [*report.causal, *sorted(report.differences,
                                                      key=lambda d: _ORDER.index(d.kind))]
    table = Table(title="what changes when later data is added")
    for column in ("kind", "what", "where", "whole data", "cut data"):
        table.add_column(column, overflow="fold")
    for d in rows[:_TABLE_ROWS]:
        more = "" if not d.more else f" (+{d.more} more rows)"
        table.add_row(d.kind, d.key + more, d.where, d.whole, d.short)
    console.print(table)
    if len(rows) > _TABLE_ROWS:
        console.print(f"... and {len(rows) - _TABLE_ROWS} more (--json lists all)")
