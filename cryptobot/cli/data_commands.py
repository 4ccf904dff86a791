"""`cryptobot data ...`: download, import and inspect stored market data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cryptobot.cli.app import app
from cryptobot.clock import LiveClock, iso_utc, parse_utc
from cryptobot.data.defaults import DEFAULT_STORE_DIR, MAX_SILENT_GAP_MS
from cryptobot.data.timeframes import format_duration, ms_to_timeframe
from cryptobot.errors import DataError

if TYPE_CHECKING:
    from rich.table import Table

    from cryptobot.data.importer import ImportResult

# pandas, pyarrow and ccxt are imported inside the functions so `--help` stays fast.

data_app = typer.Typer(help="Download, import and inspect stored market data.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

_console = Console()
FilesArg = typer.Argument(..., help="Dump files or folders, any supported layout (by content).")
ExchangeOpt = typer.Option("binanceusdm", "--exchange", help="ccxt exchange id.")
SymbolOpt = typer.Option("BTC/USDT:USDT", "--symbol", help="ccxt unified symbol.")
StoreOpt = typer.Option(Path(DEFAULT_STORE_DIR), "--store", help="Store folder.")


def _gap_text(gaps: tuple[tuple[int, int], ...]) -> str:
    if not gaps:
        return "none"
    longest = max(gaps, key=lambda g: g[1] - g[0])
    flag = " > 1h" if longest[1] - longest[0] > MAX_SILENT_GAP_MS else ""
    return f"{len(gaps)} (max {format_duration(longest[1] - longest[0])}{flag})"


def _short(ts_ms: int) -> str:
    return iso_utc(ts_ms)[:16].replace("T", " ")


def _print_gaps(gaps: tuple[tuple[int, int], ...], limit: int = 10) -> None:
    for start_ms, end_ms in gaps[:limit]:
        _console.print(f"  gap {iso_utc(start_ms)} .. {iso_utc(end_ms)} "
                       f"({format_duration(end_ms - start_ms)} missing)")
    if len(gaps) > limit:
        _console.print(f"  ... and {len(gaps) - limit} more gaps")


def _results_table(title: str, results: list[ImportResult]) -> Table:
    from rich.table import Table

    from cryptobot.data.readers import CANDLES

    table = Table(title=title)
    for column in ("series", "tf", "read", "added", "stored from", "stored to", "rows", "gaps"):
        table.add_column(column)
    for result in results:
        series = result.series
        ts = series.frame.time()
        table.add_row(series.kind, ms_to_timeframe(series.interval_ms) if series.interval_ms
                      else "-", str(result.rows_read), str(result.rows_added),
                      _short(int(ts[0])), _short(int(ts[-1])), str(len(ts)),
                      _gap_text(result.gaps) if series.kind == CANDLES else "-")
    return table


def _print_results(title: str, results: list[ImportResult]) -> None:
    _console.print(_results_table(title, results))
    for result in results:
        _print_gaps(result.gaps)


@data_app.command("import")
def import_command(
    files: list[Path] = FilesArg,
    exchange: str = ExchangeOpt, symbol: str = SymbolOpt, store: Path = StoreOpt,
) -> None:
    """Import kline / metrics / openInterestHist / funding / feather files (or the files of a
    folder) into the store; notes such as README.md are skipped."""
    from cryptobot.data.importer import data_files, import_files
    from cryptobot.data.market_store import MarketStore

    files, skipped = data_files(files)
    for path, reason in skipped:
        _console.print(f"[yellow]note:[/yellow] skipped {path}: {reason}", soft_wrap=True,
                       highlight=False)
    results = import_files(MarketStore(store), exchange, symbol, files)
    _print_results(f"imported into {store} ({exchange} {symbol})", results)
    synthetic = [f.name for f in files if "SYNTHETIC" in f.name]
    if synthetic:
        _console.print(f"[yellow]SYNTHETIC data imported: {', '.join(synthetic)}[/yellow]")


@data_app.command("info")
def info_command(store: Path = StoreOpt) -> None:
    """List what is stored: ranges, row counts and gaps."""
    from rich.table import Table

    from cryptobot.data.frames import find_gaps
    from cryptobot.data.market_store import MarketStore
    from cryptobot.data.readers import CANDLES

    if not MarketStore.is_store(store):
        raise DataError(f"{store}: no market-data store here (create one with `cryptobot data "
                        "import` or `cryptobot data download`)")
    table = Table(title=f"market data in {store}")
    for column in ("market", "series", "tf", "from", "to", "rows", "gaps"):
        table.add_column(column)
    all_series = MarketStore(store).all_series()
    for series in all_series:
        ts = series.frame.time()
        gaps = find_gaps(ts, series.interval_ms) if series.interval_ms else ()
        synthetic = any("SYNTHETIC" in source for source in series.sources)
        table.add_row(f"{series.exchange} {series.symbol}",
                      series.kind + (" [yellow]SYNTHETIC[/yellow]" if synthetic else ""),
                      ms_to_timeframe(series.interval_ms) if series.interval_ms else "-",
                      _short(int(ts[0])) if len(ts) else "-",
                      _short(int(ts[-1])) if len(ts) else "-", str(len(ts)),
                      _gap_text(gaps) if series.kind == CANDLES else "-")
    _console.print(table)
    for series in all_series:
        timeframe = f" {ms_to_timeframe(series.interval_ms)}" if series.interval_ms else ""
        _console.print(f"{series.exchange} {series.symbol} {series.kind}{timeframe} sources: "
                       f"{', '.join(series.sources)}", soft_wrap=True)
        if series.interval_ms:
            _print_gaps(find_gaps(series.frame["ts_open_ms"], series.interval_ms))


@data_app.command("download")
def download_command(
    exchange: str = ExchangeOpt,
    symbol: str = typer.Option("BTC/USDT:USDT", "--symbol",
                               help="ccxt unified symbol, or several comma-separated."),
    timeframe: str = typer.Option("1m", "--timeframe", help="Candle size, e.g. 1m, 5m, 15m."),
    since: str = typer.Option(..., "--since", help="UTC start, e.g. 2024-08-01."),
    until: str = typer.Option(None, "--until", help="UTC end (exclusive); default now."),
    store: Path = StoreOpt,
    rest_url: str = typer.Option(None, "--rest-url", help="Other REST host (loopback, replay)."),
) -> None:
    """Download candles (paginated) and 5m OI history via ccxt, one symbol after the other
    under one progress bar; resumes from what is stored."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cryptobot.cli.run_setup import symbol_list
    from cryptobot.data.download import (
        Downloader,
        check_exchange_timeframe,
        download_interval_ms,
    )
    from cryptobot.data.market_store import MarketStore
    from cryptobot.exchange.ccxt_factory import make_exchange

    symbols = symbol_list(symbol)
    since_ms, until_ms = _parse_time("--since", since), None
    download_interval_ms(timeframe)  # a bad --timeframe fails before the progress bar shows
    clock = LiveClock()
    until_ms = _parse_time("--until", until) if until else clock.now_ms()
    client = make_exchange(exchange, rest_url=rest_url)
    check_exchange_timeframe(client, timeframe)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[at]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=_console, transient=False) as bar:
        what = symbols[0] if len(symbols) == 1 else f"{len(symbols)} symbols"
        task = bar.add_task(f"download {what}", total=1.0, at="")

        def progress(share_done: float, doing: str) -> None:
            bar.update(task, completed=share_done, at=doing)

        downloader = Downloader(client, MarketStore(store), clock, exchange_id=exchange,
                                progress=progress)
        results = downloader.run_all(symbols, timeframe, since_ms, until_ms)
    for name, result in results.items():
        done = [r for r in (result.candles, result.open_interest) if r is not None]
        if done:
            _print_results(f"downloaded into {store} ({exchange} {name})", done)
        else:
            _console.print(f"{name}: nothing new to download")
    # A note that holds for every symbol (Binance's 30 days of OI) is said once.
    for note in dict.fromkeys(n for result in results.values() for n in result.notes):
        _console.print(f"[yellow]note:[/yellow] {note}")
    requests = sum(r.requests for r in results.values())
    retries = sum(r.retries for r in results.values())
    _console.print(f"{requests} requests, {retries} retried")


def _parse_time(option: str, text: str) -> int:
    try:
        return parse_utc(text)
    except ValueError:
        raise DataError(f"{option} {text!r} is not a date (expected e.g. 2024-08-01 or "
                        "2024-08-01T12:00)") from None
