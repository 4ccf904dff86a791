"""The stream session paper and live share: the loop that hands feed events to the engine, and
the run around it (what it built, and how it ends: summarised and stored).

The session drives one engine or a Portfolio of them (engine/portfolio.py: one engine per
symbol over one account, the same event API): every feed event carries its symbol and goes to
that symbol's engine. A run's summary is made per symbol and for the run alike
(runners/portfolio_summary.py), as a backtest's is.

The same loop runs a live stream (LiveClock, nothing to advance) and a replay (a SimClock moved
to each event's own time, so a candle repaired from REST is processed at its close, not at the
time the repair ran). Paper and live build the same things (an engine on a TradingSession, a
recorder that prints and stores) and end the same way; which feed, clock, broker and kill switch
is the CLI's choice, never this module's. The run is kept outside the event loop so that Ctrl-C,
SIGTERM, SIGHUP, the kill switch or an error can still close it properly: a signal cancels the
session between two events (`stop_on_signals`), never inside one, so what it stored is whole.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptobot.clock import SimClock
from cryptobot.config import Settings
from cryptobot.data.funding_times import settlement_ms
from cryptobot.engine.loop import Engine
from cryptobot.engine.portfolio import Portfolio
from cryptobot.engine.recorder import Recorder
from cryptobot.engine.risk import KillSwitch
from cryptobot.exchange.backfill import WarmUp
from cryptobot.exchange.feed import FeedEvent, MarketFeed, event_time_ms
from cryptobot.model import Candle, FundingRate, Liquidation, OpenInterest
from cryptobot.report.summary import FundingFacts

log = logging.getLogger("cryptobot.session")

ClockAdvance = Callable[[int], None]
Trader = Engine | Portfolio  # what a session drives: one engine, or one per symbol
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def advance_sim_clock(clock: SimClock) -> ClockAdvance:
    """Replay: the engine's clock steps to each event's time (never backwards)."""

    def advance(ts_ms: int) -> None:
        if ts_ms > clock.now_ms():
            clock.advance_to(ts_ms)

    return advance


def wall_clock_moves_itself(ts_ms: int) -> None:
    """Live: the LiveClock needs no help."""


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """While a command runs: SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does
    (outside the event loop; inside it `stop_on_signals` cancels the session instead)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def stop_on_signals(main: Awaitable[None],
                          on_signal: Callable[[str], None] | None = None) -> str | None:
    """Await `main`; SIGTERM or SIGHUP call `on_signal` (the session stops after the event it
    is handling) and cancel `main` as asyncio's Ctrl-C does, for a session waiting on a quiet
    stream (Python 3.11's wait_for may drop that cancellation when a message arrives with it:
    `on_signal` is what stops a busy one). Returns the signal's name if one came, else None."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main)
    caught: list[str] = []

    def stop(sig: signal.Signals) -> None:
        caught.append(sig.name)
        if on_signal is not None:
            on_signal(sig.name)
        task.cancel()

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, stop, sig)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread: no signals
        previous = {}
    try:
        await task
    except asyncio.CancelledError:
        if not caught or not task.cancelled():
            raise  # Ctrl-C (asyncio cancels the outer task) or a cancellation from elsewhere
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)  # what the command had outside the loop
    if caught:
        log.warning("session stopped by %s", caught[0],
                    extra={"event": "session_stopped", "_file_only": True})
    return caught[0] if caught else None


class SessionObserver(Protocol):
    def on_event(self, event: FeedEvent) -> None:
        """Called after the engine has handled the event (heartbeats, counters)."""
        ...


def warm_up_engine(engine: Engine, warm_up: WarmUp, signal_interval_ms: int) -> int:
    """History into the engine before the first live candle; returns how many candles went in.

    Candles before the first whole signal bucket are left out, as the backtest leaves out a
    partial first bucket, so both aggregate the same 15m candles.
    """
    candles = warm_up.candles
    if candles:
        first_ms = candles[0].ts_open_ms
        first_bucket_ms = -(-first_ms // signal_interval_ms) * signal_interval_ms
        candles = [c for c in candles if c.ts_open_ms >= first_bucket_ms]
    engine.warm_up(candles)
    for sample in warm_up.open_interest:
        engine.on_open_interest(sample)
    return len(candles)


class TradingSession:
    """`engine`: an Engine or a Portfolio (events go to their symbol's engine).
    `stop_when` (e.g. "the kill-switch file exists") is asked after every event; when it
    says yes the session stops at once, with `stopped_early` set. `streams_liquidations`:
    the feed carries the venue's liquidations (a live stream, not a replay of data that has
    none), so while a connection is listening (from its first message to its last before a
    drop or a rotation) a window without any is a quiet market; outside, unknown.
    `after_candle` runs once each candle has been handled (live: the broker's routine work,
    after the candle's orders are out)."""

    def __init__(self, engine: Trader, feed: MarketFeed, advance_clock: ClockAdvance,
                 observer: SessionObserver | None = None,
                 stop_when: Callable[[], bool] | None = None,
                 interrupted: Callable[[], bool] | None = None,
                 streams_liquidations: bool = False,
                 after_candle: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.after_candle = after_candle
        self.streams_liquidations = streams_liquidations
        self.feed = feed
        self.advance_clock = advance_clock
        self.observer = observer
        self.stop_when = stop_when
        self.interrupted = interrupted  # a signal came: stop after this event, not early
        self.stopped_early = False
        self.candles = 0
        self.last_event_ms: int | None = None
        if streams_liquidations:
            feed.on_listening(self._listening)

    def _listening(self, symbols: tuple[str, ...], start_ms: int, end_ms: int | None) -> None:
        self.engine.on_liquidation_listening(start_ms, end_ms, symbols)

    async def run(self, until_ms: int | Mapping[str, int] | None = None) -> None:
        """Until the feed ends, the task is cancelled (Ctrl-C), a candle closes at `until_ms`, or
        `stop_when` says so. `until_ms` by symbol: once each of them has had its candle
        closing then (a replay of several symbols: every one's last candle, however their
        candles closing at the same time are ordered)."""
        due = dict(until_ms) if isinstance(until_ms, Mapping) else None
        end_ms = None if isinstance(until_ms, Mapping) else until_ms
        if due is not None and not due:  # nothing left to stream
            await self.feed.close()
            return
        try:
            async with aclosing(self.feed.events()) as events:
                async for event in events:
                    self.handle(event)
                    if self.stop_when is not None and self.stop_when():
                        self.stopped_early = True
                        log.warning("session stopped early: its stop condition holds",
                                    extra={"event": "session_stopped", "_file_only": True})
                        break
                    if self.interrupted is not None and self.interrupted():
                        break
                    if isinstance(event, Candle) and _done(event, end_ms, due):
                        break
        except Exception as exc:
            # Into the JSON log with its traceback; the command shows it (one line if it is a
            # user-caused error), so not on the console twice.
            log.exception("session stopped by an error after %d candles: %s: %s", self.candles,
                          type(exc).__name__, exc,
                          extra={"event": "error", "last_event_ms": self.last_event_ms,
                                 "_file_only": True})
            raise
        await self.feed.close()

    def handle(self, event: FeedEvent) -> None:
        ts_ms = event_time_ms(event)
        self.advance_clock(ts_ms)
        engine = self.engine
        self.last_event_ms = ts_ms
        if isinstance(event, Candle):
            self.candles += 1
            engine.on_base_candle(event)
        elif isinstance(event, OpenInterest):
            engine.on_open_interest(event)
        elif isinstance(event, FundingRate):
            engine.on_funding(event)
        elif isinstance(event, Liquidation):
            engine.on_liquidation(event)
        if self.observer is not None:
            self.observer.on_event(event)
        if self.after_candle is not None and isinstance(event, Candle):
            self.after_candle()


def _done(candle: Candle, end_ms: int | None, due: dict[str, int] | None) -> bool:
    """Whether the session has reached its end with this candle (`due`: by symbol, the ones
    still to reach theirs, shrunk here)."""
    if due is None:
        return end_ms is not None and candle.ts_close_ms >= end_ms
    if candle.ts_close_ms >= due.get(candle.symbol, candle.ts_close_ms + 1):
        del due[candle.symbol]
    return not due


class SessionRecorder(Recorder, Protocol):
    """The run's recorder: stores, and knows the position it has seen filled."""

    def on_event(self, event: FeedEvent) -> None: ...

    def position_text(self) -> str: ...

    def commit(self) -> None:
        """Store what the events so far caused (a recorder that commits per event)."""
        ...


@dataclass
class SessionRun:
    """`symbol`: the run's symbol when it trades one (its symbols: `symbols`). `engine`: its
    Engine, or its Portfolio (one engine per symbol)."""

    settings: Settings
    symbol: str
    recorder: SessionRecorder
    db_url: str
    kill_switch: KillSwitch  # the run's one switch: the engine's, the session's stop, live's rails
    engine: Trader | None = None
    session: TradingSession | None = None
    oi_synthetic: bool = False  # its open interest (any symbol's; by symbol below, if known)
    oi_synthetic_by_symbol: dict[str, bool] = field(default_factory=dict)
    # by symbol: first open, last close traded (an untagged candle is `symbol`'s)
    prices: dict[str, list[float]] = field(default_factory=dict)
    start_ms: int | None = None
    stop_reason: str | None = None  # why it ended before its span did (Ctrl-C), if it did
    restoring: bool = False  # a resumed run getting its state back: not a run to summarise yet

    @property
    def run_id(self) -> str | None:
        return getattr(self.recorder, "run_id", None)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.settings.market.symbols

    def portfolio(self) -> Portfolio:
        """The run's engines as a Portfolio (one engine: a portfolio of one)."""
        assert self.engine is not None
        return self.engine if isinstance(self.engine, Portfolio) else Portfolio([self.engine])

    def request_stop(self, reason: str) -> None:
        """A signal (SIGTERM, SIGHUP): the session stops after the event it is handling."""
        self.stop_reason = self.stop_reason or reason

    def stop_requested(self) -> bool:
        return self.stop_reason is not None


class PriceTracker:
    """The session's observer: feeds the recorder's heartbeat and remembers the first and last
    price traded (for buy-and-hold)."""

    def __init__(self, run: SessionRun) -> None:
        self.run = run

    def on_event(self, event: FeedEvent) -> None:
        self.run.recorder.on_event(event)
        if isinstance(event, Candle):
            prices = self.run.prices.setdefault(event.symbol or self.run.symbol, [event.open])
            prices[1:] = [event.close]


def finish_session(run: SessionRun) -> dict[str, Any]:
    """Summarise (each symbol, and the run when it watched several), store (open positions
    included) and return the summary."""
    from cryptobot.runners.portfolio_summary import SymbolFacts, summarize_portfolio

    portfolio = run.portfolio()
    portfolio.finish()
    now_ms = portfolio.clock.now_ms()
    facts, last_prices = {}, {}
    for symbol, engine in portfolio.engines.items():
        prices = run.prices.get(symbol) or []
        facts[symbol] = SymbolFacts(prices[0] if prices else None,
                                    prices[-1] if prices else None,
                                    funding_facts(engine, run.start_ms or now_ms, now_ms),
                                    run.oi_synthetic_by_symbol.get(symbol, run.oi_synthetic),
                                    len(engine.market.open_interest))
        if prices:
            last_prices[symbol] = prices[-1]
    summary = summarize_portfolio(run.settings, portfolio, facts,
                                  now_ms - (run.start_ms or now_ms))
    summary["open_position_detail"] = (run.recorder.position_text() if len(facts) == 1
                                       else held_text(portfolio, last_prices))
    # The store's run row keeps the span asked for; when the run really stopped goes here.
    if run.session is not None and run.session.stopped_early:
        run.stop_reason = run.stop_reason or "kill switch"
    summary["stopped_ms"] = now_ms
    summary["stopped_early"] = run.stop_reason
    run.recorder.finish_run(summary)
    return summary


def funding_facts(engine: Engine, start_ms: int, now_ms: int) -> FundingFacts:
    """The rates the feed delivered that settled while the run ran, and the ones charged."""
    stamps = engine.market.funding.all_stamps_ms()
    settled = settlement_ms(stamps)
    in_span = stamps[(settled >= start_ms) & (settled <= now_ms)]
    return FundingFacts.of("the venue's funding history" if len(stamps) else "",
                           (int(ts) for ts in in_span), engine.market.funding_due.charged_ms)


def held_text(portfolio: Portfolio, last_prices: dict[str, float]) -> str:
    """The positions a run of several symbols still holds, in words ("flat" when none)."""
    held = portfolio.open_positions(last_prices)
    if not held:
        return "flat"
    return ", ".join(f"{symbol} {p['side']} {p['qty']:.6f} @ {p['entry_price']:,.2f}"
                     for symbol, p in held.items())
