"""`cryptobot sweep` (a parameter grid, or a walk-forward, on Dask) and `cryptobot sweeps`
(what the store holds). Dask, pandas and SQLAlchemy are imported when a command runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cryptobot.cli.app import app
from cryptobot.cli.run_setup import table_console

if TYPE_CHECKING:
    from rich.progress import Progress

DEFAULT_CONFIG = Path("config/default.toml")


@app.command()
def sweep(
    data: Path = typer.Option(..., "--data", help="Folder (or file) of candles, OI and funding."),
    grid: Path = typer.Option(..., "--grid", help="Grid TOML: [grid] of dotted config keys -> "
                              "lists; optional samples and seed."),
    config: Path = typer.Option(DEFAULT_CONFIG, "--config", help="Settings TOML."),
    symbol: str | None = typer.Option(None, "--symbol", help="ccxt symbol(s), comma-separated "
                                      "(default: the config's)."),
    start: str | None = typer.Option(None, "--from", help="First UTC day traded (inclusive)."),
    end: str | None = typer.Option(None, "--to", help="Last UTC day traded (inclusive)."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers",
                                help="Worker processes of the local Dask cluster."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="A running Dask scheduler, "
                                         "tcp://HOST:PORT (instead of a local cluster)."),
    walk_forward: str | None = typer.Option(None, "--walk-forward", help="TRAIN/TEST windows, "
                                            "e.g. 90d/30d: choose on each training window, "
                                            "report the test window after it."),
    metric: str = typer.Option("total_pnl_usdt", "--metric", help="What --walk-forward "
                               "chooses by (best first; max_drawdown_pct: lowest)."),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL of the store."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout, nothing else."),
    signals: bool = typer.Option(False, "--signals", help="Also keep each combination's "
                                 "signals and trades (bigger rows)."),
    allow_gaps: bool = typer.Option(False, "--allow-gaps", help="Run across holes > 1h."),
) -> None:
    """Backtest every combination of a parameter grid on a Dask cluster; store each result."""
    import json
    import sys

    from cryptobot.cli.run_setup import store_url, trading_span, with_symbols
    from cryptobot.clock import DAY_MS, LiveClock
    from cryptobot.config import load_settings
    from cryptobot.heartbeat import Heartbeat, beating
    from cryptobot.runners.stream_session import stop_signals_interrupt
    from cryptobot.store import masked_url
    from cryptobot.store.sweeps import SweepInfo, SweepWriter
    from cryptobot.sweep.cluster import check_workers, dask_client
    from cryptobot.sweep.grid import read_grid, settings_for_grid
    from cryptobot.sweep.job import Span
    from cryptobot.sweep.metrics import check_metric
    from cryptobot.sweep.runner import SweepPlan, load_pack
    from cryptobot.sweep.windows import parse_walk_forward

    settings = with_symbols(load_settings(config), symbol)
    the_grid = read_grid(grid)
    combinations = settings_for_grid(settings, the_grid, str(grid))  # all checked, or exit 2
    asked = Span(*trading_span(start, end))
    walk = parse_walk_forward(walk_forward) if walk_forward else None
    check_metric(metric, "--metric")
    if scheduler is None:
        check_workers(workers)
    warmup_ms = settings.feed.warmup_days * DAY_MS
    pack = load_pack(combinations, data, asked, allow_gaps, warmup_ms)
    plan = SweepPlan(the_grid.combinations(), combinations, pack, asked,
                     _traded_span(settings, pack, asked), warmup_ms, signals)
    db_url = store_url(settings, db)
    where = scheduler or f"local, {workers} worker process{'es' if workers > 1 else ''}"
    info = SweepInfo(the_grid.as_json(), the_grid.seed, where, str(config),
                     "; ".join(f"{data} ({', '.join(m.sources)})" for m in pack.markets.values()),
                     settings.market.symbols, *plan.traded, walk_forward,
                     metric if walk else None)
    # SIGTERM and SIGHUP as Ctrl-C: what finished stays stored, the sweep `interrupted`
    with stop_signals_interrupt(), dask_client(workers, scheduler) as client:
        writer = SweepWriter(db_url, info, LiveClock())  # a cluster out of reach stores nothing
        alive = Heartbeat(settings.logging.dir, LiveClock(), "sweep", settings.market.symbols)
        with _finishing(writer, alive), beating(alive, str(writer.sweep_id)):
            outcome = _run(client, plan, walk, metric, writer, as_json)
    if as_json:
        sys.stdout.write(json.dumps(outcome, allow_nan=False) + "\n")
        return
    _print_outcome(outcome, db_url, writer.sweep_id, masked_url)


@contextmanager
def _finishing(writer, alive) -> Iterator[None]:
    """The sweep's status when the block ends: finished, interrupted (Ctrl-C, SIGTERM, SIGHUP:
    what finished is stored) or failed; its heartbeat says the same. A sweep killed (-9, a
    crash) cannot say so: `cryptobot sweeps` finds its heartbeat silent."""
    from cryptobot.errors import StoreError

    status = "failed"
    try:
        yield
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        alive.finish(status)
        try:
            with suppress(StoreError) if status == "failed" else nullcontext():
                writer.finish(status)  # (failed: the error that ended the sweep is the one shown)
        finally:
            writer.close()


def _run(client, plan, walk, metric: str, writer, quiet: bool) -> dict:
    from cryptobot.cli.sweep_view import rows_json
    from cryptobot.sweep.runner import run_tasks

    with _progress(quiet) as bar:
        task_id = bar.add_task("sweep", total=None if walk else len(plan.params))

        def advance(_result) -> None:
            bar.advance(task_id)

        if walk is None:
            return rows_json(writer.sweep_id, run_tasks(client, plan.pack, plan.tasks(), writer,
                                                         plan.detail, advance))
        from cryptobot.sweep.walk_forward import run_walk_forward

        return run_walk_forward(client, plan, walk, metric, writer, advance,
                                lambda total: bar.update(task_id, total=total))


def _traded_span(settings, pack, asked) -> tuple[int, int]:
    """What the backtests trade of the asked span (as `cryptobot backtest` stores it)."""
    from cryptobot.runners.backtest import traded_span

    spans = [traded_span(settings, m, asked.start_ms, asked.end_ms)
             for m in pack.markets.values()]
    return min(a for a, _ in spans), max(b for _, b in spans)


def _progress(hidden: bool) -> Progress:
    """Combinations done of all, on stderr, only on a terminal (never beside --json)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    err = Console(stderr=True)
    return Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("combinations"), TimeRemainingColumn(), console=err,
                    disable=hidden or not err.is_terminal, transient=True)


def _print_outcome(outcome: dict, db_url: str, sweep_id: int, masked_url) -> None:

    from cryptobot.cli.sweep_view import print_results
    from cryptobot.store.sweeps import read_sweep

    console = table_console()
    info, results = read_sweep(db_url, sweep_id)
    if info.walk_forward:
        from cryptobot.cli.walk_forward_view import print_walk_forward

        print_walk_forward(console, outcome)
    else:
        print_results(console, info, results)
    url = masked_url(db_url)
    console.print(f"stored in {url} (sweep {sweep_id}); review it with "
                  f"`cryptobot sweeps {sweep_id} --db {url} --sort total_pnl_usdt`",
                  markup=False, highlight=False, soft_wrap=True)


@app.command()
def sweeps(
    sweep_id: int | None = typer.Argument(None, help="A sweep's id (default: list them all)."),
    sort: str | None = typer.Option(None, "--sort", help="Best first by this summary figure."),
    heatmap: str | None = typer.Option(None, "--heatmap", help="X,Y: two grid keys for an HTML "
                                       "heatmap (with --html)."),
    html: Path | None = typer.Option(None, "--html", help="Where the heatmap goes."),
    heat_metric: str = typer.Option("total_pnl_usdt", "--heat-metric",
                                    help="What the heatmap colours."),
    config: Path | None = typer.Option(None, "--config", help="Config, for its store and log "
                                       "folder (default: config/default.toml)."),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL of the store."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
) -> None:
    """List the stored sweeps, or show one (best first with --sort; a heatmap with --heatmap)."""
    import json
    import sys

    from rich.console import Console

    from cryptobot.cli.run_setup import settings_or_defaults
    from cryptobot.cli.sweep_view import print_listing, print_results, rows_json, shown_status
    from cryptobot.clock import LiveClock
    from cryptobot.errors import ConfigError
    from cryptobot.heartbeat import read_heartbeats
    from cryptobot.store.sweeps import list_sweeps, read_sweep
    from cryptobot.sweep.metrics import check_metric

    settings = settings_or_defaults(config)
    url = db or settings.store.url
    if sort is not None:
        check_metric(sort, "--sort")
    if (heatmap is None) != (html is None):
        raise ConfigError("--heatmap X,Y and --html PATH go together")
    if sweep_id is None:
        if heatmap is not None:
            raise ConfigError("--heatmap needs a sweep id")
        listings = list_sweeps(url)
        heartbeats, now_ms = read_heartbeats(settings.logging.dir), LiveClock().now_ms()
        statuses = [shown_status(x.info, heartbeats, now_ms) for x in listings]
        if as_json:
            sys.stdout.write(json.dumps({"sweeps": [_listing_json(x, status) for x, status
                                                    in zip(listings, statuses, strict=True)]})
                             + "\n")
            return
        print_listing(table_console(), listings, statuses)
        return
    info, results = read_sweep(url, sweep_id)
    if heatmap is not None:
        from cryptobot.report.sweep_heatmap import write_heatmap

        check_metric(heat_metric, "--heat-metric")
        write_heatmap(info, results, heatmap, heat_metric, html)
        Console(stderr=True).print(f"heatmap: {html}", highlight=False, markup=False)
        return
    if as_json:
        sys.stdout.write(json.dumps(rows_json(sweep_id, results), allow_nan=False) + "\n")
        return
    print_results(table_console(), info, results, sort)


def _listing_json(listing, status: str) -> dict:
    info = listing.info
    # status: as stored; shown_status: what the table shows (a killed sweep's, from its
    # heartbeat: "stopped (process N silent since T)")
    return {"sweep_id": info.sweep_id, "status": info.status, "shown_status": status,
            "created_ms": info.created_ms,
            "symbols": list(info.symbols), "grid": info.grid, "rows": listing.combinations,
            "errors": listing.errors, "walk_forward": info.walk_forward,
            "metric": info.metric, "scheduler": info.scheduler}
