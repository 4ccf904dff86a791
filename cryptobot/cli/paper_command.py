"""`cryptobot paper`: the engine on a live stream (or a replayed one) with the paper broker.

The composition root for paper trading: which venue stream, which clock, which broker. Live:
the venue's websocket and ccxt REST, LiveClock. Replay: the same adapter against a loopback
websocket and REST on 127.0.0.1 serving stored data, with SimClocks moved by the stream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cryptobot.brokers.market_rules import load_market_rules
from cryptobot.brokers.paper import PaperBroker
from cryptobot.cli.app import app
from cryptobot.cli.paper_console import ConsoleRecorder
from cryptobot.clock import DAY_MS, Clock, LiveClock, SimClock, iso_utc, parse_utc
from cryptobot.config import Settings, load_settings
from cryptobot.data.timeframes import timeframe_to_ms
from cryptobot.engine import Engine
from cryptobot.errors import ConfigError
from cryptobot.exchange.backfill import load_warm_up
from cryptobot.exchange.binance import BINANCE_MARKET_WS, BinanceUsdmStream
from cryptobot.exchange.bybit import BYBIT_LINEAR_WS, BybitLinearStream
from cryptobot.exchange.bybit_rest import BybitHistoryPages
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.feed import ignore_exchange_time
from cryptobot.exchange.replay import ReplayVenue, replay_span
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.model import Candle
from cryptobot.recorder import RunInfo
from cryptobot.strategy import load_strategy
from cryptobot.trading_session import (
    TradingSession,
    advance_sim_clock,
    wall_clock_moves_itself,
    warm_up_engine,
)

DEFAULT_CONFIG = "config/paper.toml"


@dataclass
class PaperRun:
    """What the run built, kept outside the event loop so Ctrl-C can still close it properly."""

    settings: Settings
    symbol: str
    recorder: ConsoleRecorder
    db_url: str
    engine: Engine | None = None
    session: TradingSession | None = None
    oi_synthetic: bool = False
    prices: list[float] = field(default_factory=list)  # first open, last close traded
    start_ms: int | None = None


def _venue_stream(settings: Settings, symbol: str, interval_ms: int, ws_url: str | None):
    if settings.market.exchange == "bybit":
        # Bybit streams open interest in its ticker: sample it at the Binance polling cadence.
        return BybitLinearStream(symbol, interval_ms, base_url=ws_url or BYBIT_LINEAR_WS,
                                 oi_min_interval_ms=int(settings.feed.oi_poll_seconds * 1000))
    return BinanceUsdmStream(symbol, interval_ms, base_url=ws_url or BINANCE_MARKET_WS)


def _venue_rest(settings: Settings) -> Any:
    rest = make_exchange(settings.market.exchange, rest_url=settings.feed.rest_url,
                         async_client=True)
    # Bybit pages history differently from Binance: keep each request inside one Bybit page.
    return BybitHistoryPages(rest) if settings.market.exchange == "bybit" else rest


def _engine(run: PaperRun, clock: Clock) -> Engine:
    from cryptobot.macro import build_gate

    settings = run.settings
    strategy = load_strategy(settings.strategy.path, settings, run.symbol)
    rules = load_market_rules(run.symbol) if settings.market.exchange == "binanceusdm" else None
    return Engine(settings, strategy, PaperBroker(settings.costs, clock), build_gate(settings),
                  run.recorder, clock, rules)


class _PriceTracker:
    def __init__(self, run: PaperRun) -> None:
        self.run = run

    def on_event(self, event) -> None:
        self.run.recorder.on_event(event)
        if isinstance(event, Candle):
            if not self.run.prices:
                self.run.prices.append(event.open)
            self.run.prices[1:] = [event.close]


async def _live(run: PaperRun) -> None:
    settings, clock = run.settings, LiveClock()
    interval_ms = timeframe_to_ms(settings.market.base_timeframe)
    rest = _venue_rest(settings)
    try:
        run.engine = _engine(run, clock)
        run.start_ms = clock.now_ms()
        warm = await load_warm_up(rest, run.symbol, interval_ms, run.start_ms,
                                  settings.feed.warmup_days)
        loaded = warm_up_engine(run.engine, warm,
                                timeframe_to_ms(settings.market.signal_timeframe))
        run.recorder.console.print(f"warm-up: {loaded} base candles, "
                                   f"{len(warm.open_interest)} OI samples; streaming")
        feed = StreamingFeed(_venue_stream(settings, run.symbol, interval_ms,
                                           settings.feed.ws_url),
                             rest, clock, settings.feed, ignore_exchange_time,
                             last_closed_open_ms=warm.last_closed_open_ms,
                             last_oi_ms=warm.open_interest[-1].ts_ms if warm.open_interest
                             else None)
        run.session = TradingSession(run.engine, feed, wall_clock_moves_itself,
                                     _PriceTracker(run))
        await run.session.run()
    finally:
        await rest.close()


async def _replay(run: PaperRun, market, start_ms: int | None, end_ms: int | None,
                  speed: float) -> None:
    settings = run.settings
    run.oi_synthetic = market.oi_synthetic
    signal_ms = timeframe_to_ms(settings.market.signal_timeframe)
    ts = market.candles["ts_open_ms"]
    start, end = replay_span(int(ts.iloc[0]), int(ts.iloc[-1]), market.base_interval_ms,
                             signal_ms, start_ms, end_ms)
    run.start_ms = start
    engine_clock = SimClock(start)
    async with ReplayVenue(market, start, end, speed) as venue:
        rest = make_exchange("binanceusdm", rest_url=venue.rest_url, async_client=True)
        rest.enableRateLimit = False  # our own loopback server: no venue limits to respect
        try:
            run.engine = _engine(run, engine_clock)
            warm = await load_warm_up(rest, run.symbol, market.base_interval_ms, start,
                                      settings.feed.warmup_days)
            loaded = warm_up_engine(run.engine, warm, signal_ms)
            run.recorder.console.print(
                f"replay {market.describe()}\nstreaming {venue.streamed_candles} candles from "
                f"{venue.ws_url} (REST {venue.rest_url}); warm-up {loaded} candles")
            feed = StreamingFeed(
                BinanceUsdmStream(run.symbol, market.base_interval_ms, base_url=venue.ws_url),
                rest, venue.clock, settings.feed, venue.time_driver(),
                last_closed_open_ms=warm.last_closed_open_ms or start - market.base_interval_ms,
                last_oi_ms=warm.open_interest[-1].ts_ms if warm.open_interest else None)
            run.session = TradingSession(run.engine, feed, advance_sim_clock(engine_clock),
                                         _PriceTracker(run))
            await run.session.run(until_ms=end)
            engine_clock.advance_to(max(engine_clock.now_ms(), end))
            stats = feed.stats
            run.recorder.console.print(
                f"stream: {stats.messages} messages, {stats.candles} candles "
                f"({stats.repaired_candles} repaired), {stats.oi_samples} OI samples, "
                f"{stats.connects} connections, {stats.rotations} rotations, "
                f"{stats.malformed + stats.unexpected} bad messages")
        finally:
            await rest.close()


def finish_run(run: PaperRun) -> dict[str, Any]:
    """Summarise, store (open position included) and return the summary."""
    from cryptobot.report.summary import summarize

    engine = run.engine
    assert engine is not None
    engine.finish()
    now_ms = engine.clock.now_ms()
    summary = summarize(
        engine.trades, engine.signals, run.settings.risk.starting_equity_usdt,
        first_price=run.prices[0] if run.prices else None,
        last_price=run.prices[-1] if run.prices else None,
        span_ms=now_ms - (run.start_ms or now_ms), exposure_ms=engine.exposure_ms,
        funding_charged=run.settings.costs.funding and engine.funding_seen,
        oi_synthetic=run.oi_synthetic, oi_samples=len(engine.open_interest._ts),
        open_position=not engine.is_idle())
    summary["open_position_detail"] = run.recorder.position_text()
    run.recorder.finish_run(summary)
    return summary


def _print_end(console: Console, run: PaperRun, summary: dict[str, Any]) -> None:
    engine = run.engine
    assert engine is not None
    console.print(f"\n[bold]paper run finished[/]: {len(engine.signals)} signals, "
                  f"{summary['trades']} trades, PnL {summary['total_pnl_usdt']:+,.2f} USDT, "
                  f"position {summary['open_position_detail']}")
    for trade in engine.trades:
        console.print(f"  {iso_utc(trade.entry_ms)} -> {iso_utc(trade.exit_ms)}  qty "
                      f"{trade.qty_base:.6f}  entry {trade.entry_price:,.2f}  exit "
                      f"{trade.exit_price:,.2f}  PnL {trade.pnl_usdt:+,.2f}  "
                      f"{trade.r_multiple:+.2f}R  {trade.exit_reason}")
    run_id = getattr(run.recorder.inner, "run_id", None)
    console.print(f"stored in {run.db_url} (run {run_id}); "
                  f"`cryptobot report --db {run.db_url}` shows it")


def _time(text: str | None, option: str, whole_day: bool = False) -> int | None:
    if text is None:
        return None
    try:
        ts_ms = parse_utc(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a UTC date like 2024-08-01") from None
    return ts_ms + DAY_MS if whole_day and len(text.strip()) <= 10 else ts_ms


@app.command()
def paper(
    config: Path = typer.Option(Path(DEFAULT_CONFIG), "--config", help="Settings TOML."),
    replay: Path | None = typer.Option(None, "--replay",
                                       help="Serve this stored data as a Binance stream."),
    symbol: str | None = typer.Option(None, "--symbol", help="ccxt symbol, e.g. BTC/USDT:USDT."),
    start: str | None = typer.Option(None, "--from", help="Replay: first UTC day traded."),
    end: str | None = typer.Option(None, "--to", help="Replay: last UTC day traded (inclusive)."),
    speed: float = typer.Option(0.0, "--speed", min=0,
                                help="Replay: simulated seconds per second; 0 = flat out."),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL of the store."),
    heartbeat: bool = typer.Option(True, "--heartbeat/--no-heartbeat",
                                   help="One line per closed signal candle."),
) -> None:
    """Paper trading on the live stream, or on stored data replayed as one (--replay)."""
    from cryptobot.store import SqlRecorder

    settings = load_settings(config)
    symbol = symbol or settings.market.symbol
    settings = settings.model_copy(update={"market": settings.market.model_copy(
        update={"symbol": symbol})})
    if replay is None and (start or end):
        raise ConfigError("--from and --to only apply to --replay")
    start_ms, end_ms = _time(start, "--from"), _time(end, "--to", whole_day=True)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise ConfigError(f"--to {end} is not after --from {start}")
    db_url = db or settings.store.url
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    console = Console()
    recorder = ConsoleRecorder(SqlRecorder(db_url), console, heartbeat)
    run = PaperRun(settings, symbol, recorder, db_url)
    market = None
    source = f"{settings.market.exchange} live stream"
    if replay is not None:
        from cryptobot.data import load_market_data

        warmup_ms = settings.feed.warmup_days * DAY_MS
        market = load_market_data(replay, symbol,
                                  None if start_ms is None else start_ms - warmup_ms, end_ms,
                                  exchange="binanceusdm")
        source = f"{replay} ({', '.join(market.sources)}) replayed over 127.0.0.1"
    recorder.start_run(RunInfo("paper", settings.market.exchange, symbol, start_ms, end_ms,
                               source, settings.model_dump(mode="json")))
    try:
        if market is not None:
            asyncio.run(_replay(run, market, start_ms, end_ms, speed))
        else:
            asyncio.run(_live(run))
    except KeyboardInterrupt:
        console.print("stopping (Ctrl-C)")
    if run.engine is None:
        return
    summary = finish_run(run)
    _print_end(console, run, summary)
