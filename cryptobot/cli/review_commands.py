"""`cryptobot runs, trades, signals, report and logs tail`: reviewing what a run did and why.

The store and report libraries (SQLAlchemy, plotly) are imported when a command runs, not when
the CLI starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cryptobot.cli.app import app
from cryptobot.cli.run_setup import table_console
from cryptobot.clock import parse_utc
from cryptobot.errors import ConfigError

if TYPE_CHECKING:
    from cryptobot.config import Settings
    from cryptobot.store import StoreReader

DbOption = Annotated[
    str | None, typer.Option("--db", help="SQLAlchemy URL of the store (default: the config's).")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Config file (default: config/default.toml).")
]
RunOption = Annotated[str | None, typer.Option("--run", help="Run id (default: the latest run).")]
SymbolOption = Annotated[
    str | None,
    typer.Option("--symbol", help="Only these of the run's symbols (comma-separated, e.g. "
                 "BTC/USDT:USDT,ETH/USDT:USDT; default: all)."),
]


def _settings(config: Path | None) -> Settings:
    from cryptobot.cli.run_setup import settings_or_defaults

    return settings_or_defaults(config)


def _store(db: str | None, config: Path | None) -> StoreReader:
    from cryptobot.store import open_store

    return open_store(db or _settings(config).store.url)


@app.command("runs")
def runs_command(db: DbOption = None, config: ConfigOption = None) -> None:
    """List stored runs: mode, symbols, span, trades and PnL."""
    from cryptobot.report import build, render_terminal

    store = _store(db, config)
    runs = build.run_lines(store)
    if not runs:
        table_console().print(f"No runs stored in {store.name} yet.")
        return
    table_console().print(render_terminal.runs_table(runs, store.name))


def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    try:
        return parse_utc(since)
    except ValueError:
        raise ConfigError(
            f"--since {since!r}: not a date (e.g. 2024-08-05 or 2024-08-05T06:15)"
        ) from None


@app.command("trades")
def trades_command(
    run: RunOption = None,
    since: Annotated[
        str | None, typer.Option(help="Only trades entered at/after this UTC date.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"trades": [...]}.')] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the trades as CSV.")] = False,
    symbol: SymbolOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """The trade journal: entry/exit, size, PnL in USDT and R, fees, exit reason, gate at entry."""
    from cryptobot.report import build, render_files, render_terminal

    if as_json and as_csv:
        raise ConfigError("--json and --csv: choose one")
    store = _store(db, config)
    run_id = store.resolve_run(run)
    symbols = build.chosen_symbols(store, run_id, symbol)
    lines = build.trade_lines(store, run_id, _since_ms(since), symbols)
    if as_json:
        typer.echo(render_files.trades_json(lines))
    elif as_csv:
        typer.echo(render_files.trades_csv(lines), nl=False)
    else:
        table_console().print(render_terminal.trades_table(
            lines, run_id, show_symbol=_several(store, run_id), symbols=symbols))


def _several(store: StoreReader, run_id: int) -> bool:
    """Does the run hold several symbols (then each row names its own)?"""
    return len(store.run_symbols(run_id)) > 1


@app.command("signals")
def signals_command(
    run: RunOption = None,
    rejected: Annotated[bool, typer.Option("--rejected", help="Only the rejected ones.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"signals": [...]}.')] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the signals as CSV.")] = False,
    symbol: SymbolOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Every candidate the strategy saw and what became of it: why it did (not) trade, and
    the rebound's evidence (yes, no, ? unknown; with the value measured)."""
    from cryptobot.report import build, render_files, render_terminal

    if as_json and as_csv:
        raise ConfigError("--json and --csv: choose one")
    store = _store(db, config)
    run_id = store.resolve_run(run)
    symbols = build.chosen_symbols(store, run_id, symbol)
    lines = build.signal_lines(store, run_id, rejected_only=rejected, symbols=symbols)
    if as_json or as_csv:
        typer.echo(render_files.signals_json(lines) if as_json
                   else render_files.signals_csv(lines), nl=as_json)
        return
    if not lines:
        of = f" of {', '.join(symbols)}" if symbols else ""
        table_console().print(f"Run {run_id} has no {'rejected ' if rejected else ''}signals{of}.")
        return
    table_console().print(render_terminal.signals_table(
        lines, run_id, show_symbol=_several(store, run_id), symbols=symbols))


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    run: RunOption = None,
    symbol: SymbolOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """One self-contained HTML report: summary, equity, drawdown, a chart per trade; for a run
    of several symbols the portfolio's equity, then a section per symbol (--symbol: those)."""
    from cryptobot.report import build, render_html

    store = _store(db, config)
    run_id = store.resolve_run(run)
    data = build.report_data(store, run_id, build.chosen_symbols(store, run_id, symbol))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html.report_html(data), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{out}: cannot write the report: {exc.strerror}") from None
    typer.echo(
        f"wrote {out} (run {run_id}: {len(data.trades)} trades, {len(data.signals)} signals)"
    )


logs_app = typer.Typer(help="The bot's JSON-lines logs (one file per process).",
                       no_args_is_help=True)
app.add_typer(logs_app, name="logs")


@logs_app.command("tail")
def logs_tail_command(
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many events.")] = 20,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    log_dir: Annotated[
        Path | None, typer.Option("--dir", help="Log folder (default: the config's).")
    ] = None,
    level: Annotated[str, typer.Option(
        "--level", help="Only this level and worse: DEBUG, INFO, WARNING, ERROR.")] = "DEBUG",
    run: Annotated[str | None, typer.Option(
        "--run", help="Only the lines of this run (its id, as `cryptobot runs` lists it).")
    ] = None,
    event: Annotated[str | None, typer.Option(
        "--event", help="Only these events, comma-separated (e.g. order,fill,trade or "
                        "protection,kill_switch,error).")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Nested fields (a signal's, a gate's, a trade's) in full.")] = False,
    config: ConfigOption = None,
) -> None:
    """Pretty-print the last events of every process's log in logs/, merged in time order;
    --level, --run and --event choose which."""
    from cryptobot.report.logs_view import LogFilter, follow_log, tail_log

    events = frozenset(name.strip() for name in event.split(",") if name.strip()) \
        if event is not None else None
    wanted = LogFilter(level, run, events)
    directory = log_dir or Path(_settings(config).logging.dir)
    console = table_console()
    tail_log(directory, lines, console, wanted, full)
    if follow:
        follow_log(directory, console, wanted=wanted, full=full)
