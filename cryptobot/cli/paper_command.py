"""`cryptobot paper`: the engine on a live stream (or a replayed one) with the paper broker.

The composition root for paper trading: which venue stream, which clock, which broker. Live:
the venue's websocket and ccxt REST, LiveClock. Replay: the same adapter against a loopback
websocket and REST on 127.0.0.1 serving stored data, with SimClocks moved by the stream. One
kill switch (the configured file) is built here and handed to the engines and the session.
Every symbol of the run (`market.symbols`, or `--symbol A,B`) gets its own engine, strategy
state and paper broker, over one account (equity, day, kill switch, portfolio caps) and one
macro gate: a Portfolio (engine/portfolio.py), which the session drives. All symbols stream on
one connection (more only past the venue's limit) and are summarised one by one and together.
Each base candle's rows are committed together before the next candle (a crash keeps the
journal whole); Ctrl-C, SIGTERM and SIGHUP stop the session between two events, and the run is
summarised. `--resume` goes on with an interrupted run (cli/paper_resume.py).

Heavy dependencies (ccxt, pandas, SQLAlchemy) are imported when the command runs, not when the
CLI starts.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cryptobot.cli.app import app
from cryptobot.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from cryptobot.cli.paper_resume import StoredRun
    from cryptobot.clock import Clock, SimClock
    from cryptobot.config import Settings
    from cryptobot.data import MarketData
    from cryptobot.engine.portfolio import Portfolio
    from cryptobot.runners.stream_session import SessionRun

DEFAULT_CONFIG = "config/paper.toml"


def _venue_stream(settings: Settings, symbols: str | Sequence[str], interval_ms: int,
                  ws_url: str | None):
    """The venue stream of one connection carrying `symbols` (one symbol, or several)."""
    from cryptobot.exchange.binance import BINANCE_MARKET_WS, BinanceUsdmStream
    from cryptobot.exchange.bybit import BYBIT_LINEAR_WS, BybitLinearStream

    symbols = (symbols,) if isinstance(symbols, str) else tuple(symbols)
    if settings.market.exchange == "bybit":
        # Bybit streams open interest in its ticker: sample it at the Binance polling cadence.
        return BybitLinearStream(symbols, interval_ms, base_url=ws_url or BYBIT_LINEAR_WS,
                                 oi_min_interval_ms=int(settings.feed.oi_poll_seconds * 1000))
    return BinanceUsdmStream(symbols, interval_ms, base_url=ws_url or BINANCE_MARKET_WS)


def _venue_streams(settings: Settings, interval_ms: int, ws_url: str | None) -> list:
    """One venue stream per connection: all the run's symbols on one while the venue's limit
    allows (Binance: 1024 streams, Bybit: 21,000 characters of args), more beyond."""
    from cryptobot.exchange import binance, bybit

    symbols = settings.market.symbols
    groups = (bybit.stream_groups(symbols, interval_ms) if settings.market.exchange == "bybit"
              else binance.stream_groups(symbols))
    return [_venue_stream(settings, group, interval_ms, ws_url) for group in groups]


def _venue_rest(settings: Settings) -> Any:
    # The warm-up and gap repair keep each request inside the venue's documented page.
    from cryptobot.exchange.ccxt_factory import make_exchange

    return make_exchange(settings.market.exchange, rest_url=settings.feed.rest_url,
                         async_client=True)


def _portfolio(run: SessionRun, clock: Clock) -> Portfolio:
    """An engine per symbol (its own strategy, paper broker and market rules) over one
    account and one macro gate."""
    from cryptobot.brokers.paper import PaperBroker
    from cryptobot.clock import LiveClock
    from cryptobot.engine.account import Account
    from cryptobot.engine.loop import Engine
    from cryptobot.engine.market_rules import load_market_rules
    from cryptobot.engine.portfolio import Portfolio
    from cryptobot.macro import build_gate
    from cryptobot.strategy.loading import load_strategy

    settings = run.settings
    gate = build_gate(settings, LiveClock())  # the macro caches age by the wall clock, in a
    account = Account(settings, gate, run.recorder, run.kill_switch)  # replay too
    engines = []
    for symbol in settings.market.symbols:
        one = settings.for_symbol(symbol)
        rules = load_market_rules(symbol) if settings.market.exchange == "binanceusdm" else None
        engines.append(Engine(one, load_strategy(one, symbol), PaperBroker(settings.costs, clock),
                              gate, run.recorder, clock, rules, kill_switch=run.kill_switch,
                              account=account))
    return Portfolio(engines)


def _session(run: SessionRun, feed, advance_clock, *, streams_liquidations: bool):
    """The trading loop; like live, it stops when the kill switch is engaged. A replay's data
    holds no liquidations: its liquidation evidence stays unknown."""
    from cryptobot.runners.stream_session import PriceTracker, TradingSession

    assert run.engine is not None
    return TradingSession(run.engine, feed, advance_clock, PriceTracker(run),
                          stop_when=run.kill_switch.engaged, interrupted=run.stop_requested,
                          streams_liquidations=streams_liquidations)


async def _live(run: SessionRun, clock: Clock, resume: StoredRun | None = None) -> None:
    from cryptobot.cli.paper_resume import prime_engine
    from cryptobot.data.timeframes import timeframe_to_ms
    from cryptobot.exchange.feed import ignore_exchange_time
    from cryptobot.exchange.merged_feed import build_feed
    from cryptobot.runners.stream_session import wall_clock_moves_itself

    settings = run.settings
    interval_ms = timeframe_to_ms(settings.market.base_timeframe)
    rest = _venue_rest(settings)
    try:
        run.engine = run.engine or _portfolio(run, clock)
        run.start_ms = resume.info.start_ms if resume is not None else clock.now_ms()
        primed = await prime_engine(run, rest, interval_ms,
                                    timeframe_to_ms(settings.market.signal_timeframe), resume,
                                    wall_clock_moves_itself)
        run.recorder.commit()
        run.recorder.console.print(f"{primed.note}; streaming")
        feed = build_feed(_venue_streams(settings, interval_ms, settings.feed.ws_url), rest,
                          clock, settings.feed, ignore_exchange_time,
                          last_closed_open_ms=primed.last_closed_open_ms,
                          last_oi_ms=primed.last_oi_ms, last_funding_ms=primed.last_funding_ms)
        run.session = _session(run, feed, wall_clock_moves_itself, streams_liquidations=True)
        await run.session.run()
    finally:
        await rest.close()


async def _replay(run: SessionRun,
                  markets: MarketData | Sequence[MarketData] | Mapping[str, MarketData],
                  start_ms: int | None, end_ms: int | None, speed: float,
                  engine_clock: SimClock | None = None, resume: StoredRun | None = None) -> None:
    """Stream the data (every symbol's, on one connection) from the window's start, or a
    resumed run's from the candle after the last one it handled (it gets its history and
    positions back first)."""
    from cryptobot.cli.paper_replay import (
        in_run_order,
        last_closes,
        one_base_interval,
        replay_window,
    )
    from cryptobot.cli.paper_resume import prime_engine
    from cryptobot.clock import SimClock
    from cryptobot.data.timeframes import timeframe_to_ms
    from cryptobot.exchange.binance import BinanceUsdmStream
    from cryptobot.exchange.ccxt_factory import make_exchange
    from cryptobot.exchange.replay import ReplayVenue
    from cryptobot.exchange.streaming_feed import StreamingFeed
    from cryptobot.runners.stream_session import advance_sim_clock

    settings = run.settings
    ordered = in_run_order(settings, markets)
    interval_ms = one_base_interval(ordered)
    run.oi_synthetic_by_symbol = {market.symbol: market.oi_synthetic for market in ordered}
    run.oi_synthetic = any(run.oi_synthetic_by_symbol.values())
    signal_ms = timeframe_to_ms(settings.market.signal_timeframe)
    start, end = replay_window(settings, ordered, start_ms, end_ms)
    run.start_ms = start
    engine_clock = engine_clock or SimClock(start)
    handled = ({} if resume is None
               else resume.handled(settings.market.symbols, interval_ms))
    stream_from = min(max(start, min(handled.values(), default=start)), end)
    async with ReplayVenue(ordered, stream_from, end, speed,
                           clock_ms=max(handled.values(), default=None)) as venue:
        # our own loopback server: no venue limits to respect
        rest = make_exchange("binanceusdm", rest_url=venue.rest_url, async_client=True,
                             rate_limit=False)
        try:
            run.engine = run.engine or _portfolio(run, engine_clock)
            primed = await prime_engine(run, rest, interval_ms, signal_ms, resume,
                                        advance_sim_clock(engine_clock))
            run.recorder.commit()
            described = "\n".join(f"replay {market.describe()}" for market in ordered)
            run.recorder.console.print(
                f"{described}\nstreaming {venue.streamed_candles} candles from "
                f"{venue.ws_url} (REST {venue.rest_url}); {primed.note}")
            if stream_from >= end:  # a resumed run that had handled its last candle
                engine_clock.advance_to(max(engine_clock.now_ms(), end))
                return
            feed = StreamingFeed(
                BinanceUsdmStream(settings.market.symbols, interval_ms, base_url=venue.ws_url),
                rest, venue.clock, settings.feed, venue.time_driver(),
                last_closed_open_ms={s: last or stream_from - interval_ms
                                     for s, last in primed.last_closed_open_ms.items()},
                last_oi_ms=primed.last_oi_ms, last_funding_ms=primed.last_funding_ms)
            run.session = _session(run, feed, advance_sim_clock(engine_clock),
                                   streams_liquidations=False)
            await run.session.run(until_ms=last_closes(ordered, stream_from, end,
                                                        primed.last_closed_open_ms))
            if not run.session.stopped_early and run.stop_reason is None:
                engine_clock.advance_to(max(engine_clock.now_ms(), end))
            stats = feed.stats
            run.recorder.console.print(
                f"stream: {stats.messages} messages, {stats.candles} candles "
                f"({stats.repaired_candles} repaired), {stats.oi_samples} OI samples, "
                f"{stats.connects} connections, {stats.rotations} rotations, "
                f"{stats.bad_messages} bad messages ({stats.rejected} refused by the checks)")
        finally:
            await rest.close()


@app.command()
def paper(
    config: Path = typer.Option(Path(DEFAULT_CONFIG), "--config", help="Settings TOML."),
    replay: Path | None = typer.Option(None, "--replay",
                                       help="Serve this stored data as a Binance stream."),
    symbol: str | None = typer.Option(None, "--symbol",
                                      help="ccxt symbol, e.g. BTC/USDT:USDT, or several, "
                                           "comma-separated (one engine each, one account)."),
    start: str | None = typer.Option(None, "--from", help="Replay: first UTC day traded."),
    end: str | None = typer.Option(None, "--to", help="Replay: last UTC day traded (inclusive)."),
    speed: float = typer.Option(0.0, "--speed", min=0,
                                help="Replay: simulated seconds per second; 0 = flat out."),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL of the store."),
    heartbeat: bool = typer.Option(True, "--heartbeat/--no-heartbeat",
                                   help="One line per closed signal candle."),
    resume: bool = typer.Option(False, "--resume",
                                help="Go on with an interrupted paper run, in the same run: "
                                     "its position, pending setup, daily loss and (a replay) "
                                     "its place in the data. Give the same --config (and "
                                     "--replay) it started with."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Every order event (else a stop's moves are one line "
                                      "a trade)."),
    run_id: str | None = typer.Argument(None, metavar="RUN_ID",
                                        help="With --resume: the run to go on with (default: "
                                             "the last unfinished paper run)."),
) -> None:
    """Paper trading on the live stream, or on stored data replayed as one (--replay).
    SIGTERM and SIGHUP stop it as Ctrl-C does; --resume goes on with an interrupted run."""
    from cryptobot.cli.paper_console import ConsoleRecorder, run_console
    from cryptobot.cli.paper_replay import replay_markets
    from cryptobot.cli.run_setup import (
        start_logging,
        store_url,
        trading_span,
        with_symbols,
    )
    from cryptobot.clock import LiveClock, SimClock
    from cryptobot.config import load_settings
    from cryptobot.engine.recorder import RunInfo
    from cryptobot.engine.risk import KillSwitch
    from cryptobot.heartbeat import Heartbeat
    from cryptobot.notify.run_notices import run_notifications, with_notices
    from cryptobot.runners.event_log import EventLogRecorder
    from cryptobot.runners.stream_session import SessionRun
    from cryptobot.store import SqlRecorder

    settings = load_settings(config)
    settings = with_symbols(settings, symbol)
    symbols = settings.market.symbols
    if replay is None and (start or end):
        raise ConfigError("--from and --to only apply to --replay")
    start_ms, end_ms = trading_span(start, end)
    db_url = store_url(settings, db)
    resumed = _stored_run(db_url, resume, run_id, settings, replay)
    if resumed is not None and not (start or end):  # it keeps its span
        start_ms, end_ms = resumed.info.start_ms, resumed.info.end_ms
    console = run_console()
    markets = sim_clock = None
    clock: Clock = LiveClock()
    source = f"{settings.market.exchange} live stream"
    run_span: tuple[int | None, int | None] = (clock.now_ms(), None)  # live: from now, open
    if replay is not None:
        markets, source, run_span = replay_markets(settings, replay, start_ms, end_ms, resumed,
                                                   console)
        clock = sim_clock = SimClock(run_span[0])
    log_path = start_logging(settings, clock, simulated=markets is not None)
    # the wall time stamps runs; each candle's rows are committed together
    stored = (SqlRecorder(db_url, clock=LiveClock()) if resumed is None
              else _continued(db_url, resumed, LiveClock()))
    with run_notifications(LiveClock(), "paper run") as notifier:
        recorder = ConsoleRecorder(with_notices(EventLogRecorder(stored), notifier), console,
                                   heartbeat, commit_per_event=True, verbose=verbose,
                                   alive=Heartbeat(settings.logging.dir, LiveClock(), "paper",
                                                   symbols), clock=clock)
        run = SessionRun(settings, symbols[0] if len(symbols) == 1 else "", recorder, db_url,
                         KillSwitch(settings.risk.kill_switch_file))
        run.engine = _portfolio(run, clock)  # a bad strategy or gate fails here, before the
        recorder.start_run(RunInfo("paper", settings.market.exchange, symbols,  # run row
                                   *run_span, source, settings.model_dump(mode="json")))
        _run_until_stopped(run, _replay(run, markets, start_ms, end_ms, speed, sim_clock,
                                        resumed)
                           if markets is not None else _live(run, clock, resumed), console,
                           log_path)


def _run_until_stopped(run: SessionRun, main: Coroutine[Any, Any, None], console: Console,
                       log_path: Path) -> None:
    """Run `main` until it ends, or Ctrl-C, SIGTERM or SIGHUP stop it between two events; then
    summarise and store the run (not a resumed one stopped before its state was back)."""
    import asyncio

    from cryptobot.runners.stream_session import stop_on_signals, stop_signals_interrupt

    with stop_signals_interrupt():  # SIGTERM, SIGHUP: as Ctrl-C
        try:
            run.stop_reason = asyncio.run(stop_on_signals(main, run.request_stop))
        except KeyboardInterrupt as interrupt:
            run.stop_reason = str(interrupt) or "Ctrl-C"
        finally:
            if run.stop_reason:
                console.print(f"stopping ({run.stop_reason})")
            if run.restoring:
                console.print(f"stopped before run {run.run_id} was restored: it is left as "
                              "it was; --resume goes on with it")
            elif run.engine is not None:
                _end_run(console, run, log_path)


def _stored_run(db_url: str, resume: bool, run_id: str | None, settings: Settings,
                replay: Path | None) -> StoredRun | None:
    """The run --resume goes on with (checked), or None."""
    from cryptobot.cli.paper_resume import read_stored_run

    if not resume:
        if run_id is not None:
            raise ConfigError(f"unexpected argument {run_id!r} (a run id goes with --resume)")
        return None
    return read_stored_run(db_url, run_id, settings, replay is not None)


def _continued(db_url: str, resumed: StoredRun, clock: Clock):
    from cryptobot.cli.paper_resume import ContinuedRecorder

    return ContinuedRecorder(db_url, resumed, clock=clock)


def _end_run(console: Console, run: SessionRun, log_path: Path) -> None:
    """Summarise and store the run so far, even after an error (logged by the session)."""
    from cryptobot.cli.paper_console import print_session_end
    from cryptobot.runners.stream_session import finish_session

    if run.session is not None and run.session.stopped_early:
        console.print(f"kill switch file {run.kill_switch.path} found: "
                      "paper session stopped", markup=False, soft_wrap=True)
    summary = finish_session(run)
    print_session_end(console, run, summary, "paper run finished")
    console.print(f"log: {log_path}", highlight=False, soft_wrap=True)

