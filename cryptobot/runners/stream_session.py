"""The paper/live loop: pull feed events, move the clock, hand each event to the engine.

The same loop runs a live stream (LiveClock, nothing to advance) and a replay (a SimClock moved
to each event's own time, so a candle repaired from REST is processed at its close, not at the
time the repair ran). Which feed, clock and broker is the CLI's choice, never this module's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import aclosing
from typing import Protocol

from cryptobot.clock import SimClock
from cryptobot.engine.loop import Engine
from cryptobot.exchange.backfill import WarmUp
from cryptobot.exchange.feed import FeedEvent, MarketFeed, event_time_ms
from cryptobot.model import Candle, FundingRate, Liquidation, OpenInterest

log = logging.getLogger("cryptobot.session")

ClockAdvance = Callable[[int], None]


def advance_sim_clock(clock: SimClock) -> ClockAdvance:
    """Replay: the engine's clock steps to each event's time (never backwards)."""

    def advance(ts_ms: int) -> None:
        if ts_ms > clock.now_ms():
            clock.advance_to(ts_ms)

    return advance


def wall_clock_moves_itself(ts_ms: int) -> None:
    """Live: the LiveClock needs no help."""


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
    """`stop_when` (e.g. "the kill-switch file exists") is asked after every event; when it
    says yes the session stops at once, with `stopped_early` set."""

    def __init__(self, engine: Engine, feed: MarketFeed, advance_clock: ClockAdvance,
                 observer: SessionObserver | None = None,
                 stop_when: Callable[[], bool] | None = None) -> None:
        self.engine = engine
        self.feed = feed
        self.advance_clock = advance_clock
        self.observer = observer
        self.stop_when = stop_when
        self.stopped_early = False
        self.candles = 0
        self.last_event_ms: int | None = None

    async def run(self, until_ms: int | None = None) -> None:
        """Until the feed ends, the task is cancelled (Ctrl-C), a candle closes at `until_ms`, or
        `stop_when` says so."""
        try:
            async with aclosing(self.feed.events()) as events:
                async for event in events:
                    self.handle(event)
                    if self.stop_when is not None and self.stop_when():
                        self.stopped_early = True
                        log.warning("session stopped early: its stop condition holds",
                                    extra={"event": "session_stopped", "_file_only": True})
                        break
                    if until_ms is not None and isinstance(event, Candle) \
                            and event.ts_close_ms >= until_ms:
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
        self.last_event_ms = ts_ms
        engine = self.engine
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
