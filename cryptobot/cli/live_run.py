"""The composition root of live trading: paper's runner with the live broker swapped in.

The same SessionRun, TradingSession, StreamingFeed (Binance adapter), warm-up, console and event
log as `cryptobot paper`; what changes is the broker (LiveBroker on the account, reconciled before
anything else) and the equity (the account's, not the configured starting equity). The
recorder's rows, event-log lines and console lines wait until the orders they go with are out:
what a candle, a user-stream event or a timer tick caused is logged, stored in one transaction
and printed right after it was handled, never between a trigger and its order (the live state,
written before each send, is what a restart trusts; fills the run store missed at a crash are
booked again from it at restore). Every symbol of `market.symbols` is
traded in this one process: an engine per symbol over one account (cli/live_portfolio.py), each
on its own view of the one LiveBroker (one REST client, one live state, one user stream, one
reconciliation for the account), all symbols' candles on one combined market stream. Fills come
from Binance's user data stream when its listenKey can be had (`open_user_stream`), else by
REST once per candle. A restart takes every symbol's open position over from the broker's
reconciled state (runners/restore.py, the same restore a resumed paper run uses, reading the
live state through brokers/live/restore.py). SIGTERM and SIGHUP stop it as Ctrl-C does. One
kill switch (the configured file) is built here and handed to the broker's rails, the engines
and the session: engaged, it stops the session flat, every symbol.

`LiveVenue` holds what a loopback test swaps: the clock and how it moves, and the URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from cryptobot.brokers.live.broker import LiveBroker, StepHook
from cryptobot.brokers.live.reconcile import ReconcileReport
from cryptobot.brokers.live.restore import trades_closed_away
from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.cli.live_portfolio import (
    build_portfolio,
    refuse_unwatched_symbols,
    restore_portfolio,
    warm_up_portfolio,
)
from cryptobot.cli.paper_console import ConsoleRecorder, print_session_end
from cryptobot.cli.run_setup import heap_frozen
from cryptobot.clock import Clock, LiveClock
from cryptobot.config import Settings
from cryptobot.data.timeframes import timeframe_to_ms
from cryptobot.engine.portfolio import Portfolio
from cryptobot.engine.recorder import RunInfo
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import CryptobotError
from cryptobot.exchange.binance import BINANCE_MARKET_WS, BinanceUsdmStream, stream_groups
from cryptobot.exchange.binance_user_stream import (
    BINANCE_DEMO_PRIVATE_WS,
    BINANCE_PRIVATE_WS,
    BinanceUserStream,
)
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.feed import ExchangeTimeHook, ignore_exchange_time
from cryptobot.exchange.merged_feed import build_feed
from cryptobot.heartbeat import Heartbeat
from cryptobot.notify.notifier import Notifier
from cryptobot.notify.run_notices import run_notifications, with_notices
from cryptobot.runners.between_events_gc import CollectBetweenEvents
from cryptobot.runners.deferred_recorder import CallTime, DeferredRecorder
from cryptobot.runners.event_log import EventLogRecorder
from cryptobot.runners.stream_session import (
    ClockAdvance,
    PriceTracker,
    SessionRun,
    TradingSession,
    finish_session,
    stop_on_signals,
    wall_clock_moves_itself,
)
from cryptobot.secrets import ApiKeys

log = logging.getLogger("cryptobot.live.run")


@dataclass
class LiveVenue:
    """How a live run reaches the world. The CLI: the wall clock and the configured hosts."""

    clock: Clock  # the engine's and the broker's
    advance_clock: ClockAdvance = wall_clock_moves_itself
    feed_clock: Clock | None = None  # None: `clock` (a replayed stream keeps its own)
    exchange_time: ExchangeTimeHook = ignore_exchange_time
    market_rest_url: str | None = None  # None: feed.rest_url (None: the venue's own hosts)
    ws_url: str | None = None  # None: feed.ws_url, else Binance's market stream
    orders_rest_url: str | None = None  # None: feed.rest_url
    user_stream_url: str | None = None  # None: Binance's private stream (demo host if demo)
    rate_limit: bool = True
    sleep: Callable[[float], None] = time.sleep
    wait_clock: Clock | None = None  # the time `sleep` moves (None: `clock`): the venue's waits
    kill_check_s: float = 1.0  # the timer: kill switch, fills, reconciliation, protection
    on_tick: Callable[[], None] = lambda: None  # before each timer tick (a simulated clock)
    until_ms: int | None = None  # stop once every symbol's candle closed here (tests); None: run on
    on_step: StepHook | None = None  # the broker's named steps (fault runs kill the bot there)


@dataclass
class LiveOutcome:
    """`run.engine` is the run's Portfolio (an engine per symbol, the same event API)."""

    broker: LiveBroker
    report: ReconcileReport
    run: SessionRun | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    restored: str | None = None  # the signal id of the (first) position taken over at start
    restored_all: list[str] = field(default_factory=list)  # every symbol's, in symbol order
    stopped_by: str = "end of stream"

    @property
    def portfolio(self) -> Portfolio | None:
        return None if self.run is None else self.run.engine


def summary_table(settings: Settings, equity_usdt: float | None,
                  report: ReconcileReport) -> Table:
    from cryptobot.store import masked_url

    table = Table(title="LIVE TRADING" + (" (exchange demo account)"
                                          if settings.live.demo_trading else " (REAL MONEY)"))
    table.add_column("setting")
    table.add_column("value")
    risk = settings.risk
    rows = [
        ("account", f"{settings.market.exchange}, equity {equity_usdt or 0:,.2f} USDT"),
        ("symbols" if len(settings.market.symbols) > 1 else "symbol",
         ", ".join(settings.market.symbols)),
        ("margin / leverage", f"{settings.live.margin_mode}, {settings.live.leverage}x"
                              + (" on each symbol" if len(settings.market.symbols) > 1 else "")),
        ("max notional", f"{risk.max_notional_usdt:,.0f} USDT"),
        ("risk per trade", f"{risk.risk_per_trade:.2%} of equity"),
        ("max daily loss", f"{risk.max_daily_loss:.2%} of equity"),
        ("max open positions", str(settings.portfolio.max_open_positions)),
        ("stop trigger", settings.costs.stop_trigger),
        ("kill switch file", risk.kill_switch_file),
        ("store (runs, live state)", masked_url(settings.store.url)),
        ("reconciliation", f"{len(report.unknown_positions)} unknown position(s), "
                           f"{len(report.stops_placed)} stop(s) re-placed, "
                           f"{report.fills_recorded} fill(s) caught up"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def connect(settings: Settings, keys: ApiKeys, venue: LiveVenue, console: Console,
            kill_switch: KillSwitch) -> tuple[LiveBroker, ReconcileReport]:
    """Connect, set margin and leverage, reconcile, and print what is about to be traded."""
    broker, report = build_live_broker(settings, keys, venue.clock, kill_switch,
                                       rest_url=venue.orders_rest_url, sleep=venue.sleep,
                                       rate_limit=venue.rate_limit, on_step=venue.on_step,
                                       wait_clock=venue.wait_clock)
    console.print(summary_table(settings, broker.equity_usdt, report))
    for symbol, qty in report.unknown_positions:
        console.print(f"[yellow]unknown position on the exchange: {symbol} {qty:g} "
                      "(left alone; live.adopt_unknown_positions is off)[/yellow]")
    return broker, report


async def run_live_session(settings: Settings, keys: ApiKeys, venue: LiveVenue,
                           console: Console, db_url: str, heartbeat: bool = True,
                           verbose: bool = False) -> LiveOutcome:
    """Connect and trade until the stream ends, `until_ms`, Ctrl-C, SIGTERM, SIGHUP or the kill
    switch; notifications (if URLs are set) from the connection on."""
    with run_notifications(LiveClock(), "live run") as notifier:
        return await _live_session(settings, keys, venue, console, db_url, heartbeat, verbose,
                                   notifier)


async def _live_session(settings: Settings, keys: ApiKeys, venue: LiveVenue, console: Console,
                        db_url: str, heartbeat: bool, verbose: bool,
                        notifier: Notifier | None) -> LiveOutcome:
    from cryptobot.store import SqlRecorder

    kill_switch = KillSwitch(settings.risk.kill_switch_file)
    broker, report = connect(settings, keys, venue, console, kill_switch)
    outcome = LiveOutcome(broker, report)
    if kill_switch.engaged():
        broker.flatten_all("kill switch file found at start")
        outcome.stopped_by = "kill switch"
        log.warning("kill switch %s present at start: flattened, not trading",
                    kill_switch.path, extra={"event": "kill_switch", "_file_only": True})
        console.print(f"kill switch {kill_switch.path} is present: orders "
                      "cancelled, positions closed; not trading")
        return outcome
    refuse_unwatched_symbols(broker, settings.market.symbols)
    if broker.equity_usdt:  # size on the account's equity, not the configured starting one;
        # trades that closed while the bot was away are in the balance already: the run starts
        # from the equity before them, so that booking them (at restore) ends at the balance
        away_usdt = sum(trade.pnl_usdt for trade, _ in trades_closed_away(broker.state))
        settings = settings.model_copy(update={"risk": settings.risk.model_copy(
            update={"starting_equity_usdt": broker.equity_usdt - away_usdt})})
    # committed (then printed) once what a candle, user event or tick caused is handled
    stored = SqlRecorder(db_url, clock=LiveClock(), flush_every=None)
    # event-log lines held (stamped when their event happened) until the commit, too
    call_time = CallTime(venue.clock.now_ms)
    events = EventLogRecorder(stored, held_clock_ms=call_time.now_ms)
    # and all of it recorded only then, once the orders the event caused are out
    deferred = DeferredRecorder(with_notices(events, notifier), call_time)
    recorder = ConsoleRecorder(deferred, console,
                               heartbeat, commit_per_event=True, verbose=verbose,
                               alive=Heartbeat(settings.logging.dir, LiveClock(), "live",
                                               settings.market.symbols), clock=venue.clock)
    symbols = settings.market.symbols
    run = outcome.run = SessionRun(settings, symbols[0] if len(symbols) == 1 else "", recorder,
                                   db_url, kill_switch)
    # a bad strategy fails here, before the run row
    portfolio = run.engine = build_portfolio(settings, broker, recorder, venue.clock,
                                             kill_switch)
    recorder.start_run(RunInfo("live", settings.market.exchange, symbols, None, None,
                               f"{settings.market.exchange} account"
                               + (" (demo)" if settings.live.demo_trading else ""),
                               settings.model_dump(mode="json")))
    def commit() -> None:  # what the event just handled caused: logged, stored, printed
        deferred.play()
        events.write_held_lines()
        recorder.commit()

    def commit_before_wait() -> None:  # held rows are not held through a wait, but the
        try:  # order waiting matters more than its record: a failure to record is logged
            commit()
        except Exception:
            log.exception("recording what the event caused failed before a wait; the order "
                          "goes on (the next commit tries the calls kept after the failing one)",
                          extra={"event": "error"})

    broker.before_waits(commit_before_wait)
    stream = await open_user_stream(settings, keys, venue, broker, console, commit)
    try:
        signalled = await stop_on_signals(_trade(run, portfolio, broker, venue, outcome,
                                                 commit),
                                          run.request_stop)
        outcome.stopped_by = signalled or outcome.stopped_by
        if stream is not None:  # what the stream had not delivered yet, by REST
            await close_user_stream(stream, broker)
            broker.catch_up()
    finally:
        if stream is not None:
            await close_user_stream(stream, broker)
        outcome.summary = finish_session(run)
        print_session_end(console, run, outcome.summary,
                          f"live run stopped ({outcome.stopped_by})")
    return outcome


async def open_user_stream(settings: Settings, keys: ApiKeys, venue: LiveVenue,
                           broker: LiveBroker, console: Console,
                           after_event: Callable[[], None] = lambda: None,
                           ) -> BinanceUserStream | None:
    """Start the user data stream as the broker's fill source; None (REST polling) when the
    venue has none or refuses the listenKey (said once on the console). `after_event`: once
    an event is handled (the orders it caused are out): the recorder's commit."""
    if settings.market.exchange != "binanceusdm":
        console.print(f"no user data stream for {settings.market.exchange}: fills are read by "
                      "REST once per candle")
        return None
    rest = make_exchange(settings.market.exchange,
                         rest_url=venue.orders_rest_url or settings.feed.rest_url,
                         api_keys=keys, demo_trading=settings.live.demo_trading,
                         async_client=True, timeout_ms=settings.live.request_timeout_ms,
                         rate_limit=venue.rate_limit, options={"fetchCurrencies": False})
    url = venue.user_stream_url or (BINANCE_DEMO_PRIVATE_WS if settings.live.demo_trading
                                    else BINANCE_PRIVATE_WS)
    def on_user_event(event: object) -> None:
        try:
            broker.on_user_event(event)
        finally:
            after_event()

    stream = BinanceUserStream(rest, venue.clock, on_user_event, broker.after_reconnect, url,
                               min_backoff_s=settings.feed.reconnect_min_backoff_s,
                               max_backoff_s=settings.feed.reconnect_max_backoff_s)
    try:
        await stream.start()
    except CryptobotError as exc:
        await rest.close()
        log.warning("user data stream unavailable, fills by REST polling: %s", exc)
        console.print(f"[yellow]user data stream unavailable ({exc}); fills are read by REST "
                      "once per candle[/yellow]")
        return None
    broker.fill_source = stream
    console.print("user data stream connected: fills arrive as they happen")
    return stream


async def close_user_stream(stream: BinanceUserStream, broker: LiveBroker) -> None:
    """Stop the stream (idempotent); the broker goes back to REST polling."""
    broker.fill_source = None
    await stream.close()
    with contextlib.suppress(Exception):
        await stream.rest.close()


async def _trade(run: SessionRun, portfolio: Portfolio, broker: LiveBroker, venue: LiveVenue,
                 outcome: LiveOutcome, commit: Callable[[], None]) -> None:
    """Warm up, restore, stream; `commit` logs, stores and prints what each candle, tick or
    step caused, once its orders are out."""
    settings, clock = run.settings, venue.clock
    symbols = settings.market.symbols
    interval_ms = timeframe_to_ms(settings.market.base_timeframe)
    signal_ms = timeframe_to_ms(settings.market.signal_timeframe)
    rest = make_exchange(settings.market.exchange,
                         rest_url=venue.market_rest_url or settings.feed.rest_url,
                         async_client=True, rate_limit=venue.rate_limit)
    try:
        run.start_ms = clock.now_ms()

        def between_symbols() -> bool:  # a long warm-up still reconciles and heeds the switch
            broker.on_timer()
            commit()
            return run.kill_switch.engaged()

        collector = CollectBetweenEvents()  # the collector's passes between events

        def between_events() -> None:  # what no order may wait on, once they are out
            portfolio.decide_gate_ahead()
            collector.collect_due()
            broker.state.checkpoint_if_due()

        def after_candle() -> None:  # the candle's orders are out, its rows stored
            commit()
            broker.on_timer()  # the routine work: reconciliation when due
            commit()
            between_events()

        warm = await warm_up_portfolio(portfolio, rest, settings, interval_ms, signal_ms,
                                       run.start_ms, between_symbols)
        if run.kill_switch.engaged():
            broker.flatten_all("kill switch file found during the warm-up")
            commit()
            outcome.stopped_by = "kill switch"
            run.recorder.console.print("kill switch: orders cancelled, positions closed; "
                                       "stopped")
            return
        outcome.restored_all = restore_portfolio(portfolio, broker, run)
        outcome.restored = outcome.restored_all[0] if outcome.restored_all else None
        loaded = sum(len(w.candles) for w in warm.values())
        samples = sum(len(w.open_interest) for w in warm.values())
        run.recorder.console.print(f"warm-up: {loaded} base candles, {samples} OI samples"
                                   + (f" ({len(symbols)} symbols)" if len(symbols) > 1 else "")
                                   + "; streaming")
        # every symbol on one combined stream connection (more only past Binance's limit)
        ws_url = venue.ws_url or settings.feed.ws_url or BINANCE_MARKET_WS
        feed = build_feed([BinanceUsdmStream(group, interval_ms, base_url=ws_url)
                           for group in stream_groups(symbols)],
                          rest, venue.feed_clock or clock, settings.feed, venue.exchange_time,
                          last_closed_open_ms={
                              s: w.last_closed_open_ms or run.start_ms - interval_ms
                              for s, w in warm.items()},
                          last_oi_ms={s: w.open_interest[-1].ts_ms if w.open_interest
                                      else None for s, w in warm.items()})
        run.session = TradingSession(portfolio, feed, venue.advance_clock, PriceTracker(run),
                                     stop_when=run.kill_switch.engaged,
                                     interrupted=run.stop_requested, streams_liquidations=True,
                                     after_candle=after_candle)
        with heap_frozen(collect_first=True), collector:  # start-up's heap frozen
            killed = await _run_until_killed(run.session, portfolio, broker, venue,
                                             run.kill_switch, commit, between_events)
        if killed:
            outcome.stopped_by = "kill switch"
            log.warning("kill switch file found: orders cancelled, positions closed; stopped",
                        extra={"event": "kill_switch", "_file_only": True})
            run.recorder.console.print("kill switch: orders cancelled, positions closed; "
                                       "stopped")
        await feed.close()
    finally:
        await rest.close()


async def _run_until_killed(session: TradingSession, portfolio: Portfolio, broker: LiveBroker,
                            venue: LiveVenue, kill_switch: KillSwitch,
                            commit: Callable[[], None], between_events: Callable[[], None]
                            ) -> bool:
    """Run the session; True if the kill switch stopped it (after flattening). `commit`
    stores (and prints) what each tick caused; `between_events` then runs what no order may
    wait on: the garbage collector's pass if one is due (runners/between_events_gc.py), the
    live state's checkpoint if due.

    The session asks the switch after every event; this loop also asks while the stream is
    quiet, and is the timer between candles: the broker reads fills and reconciles when due
    (also after a user-stream reconnect), over every symbol, and each symbol's engine retries
    the protection it owes. The kill switch flattens every symbol."""
    symbols = portfolio.symbols  # `until_ms`: once every symbol's candle closing then came
    until = venue.until_ms if venue.until_ms is None or len(symbols) == 1 else {
        symbol: venue.until_ms for symbol in symbols}
    task = asyncio.create_task(session.run(until_ms=until))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=venue.kill_check_s)
            if done:
                task.result()
                if not session.stopped_early:
                    return False
            elif kill_switch.engaged():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            else:
                venue.on_tick()
                broker.on_timer()
                portfolio.on_time()
                commit()
                between_events()
                continue
            broker.flatten_all("kill switch file found")
            commit()
            return True
    finally:
        if not task.done():  # Ctrl-C: the outer task was cancelled
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
