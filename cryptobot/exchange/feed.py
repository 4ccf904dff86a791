"""The market feed: what every venue adapter (live or replayed) hands the trading session.

A feed yields closed base candles, open-interest samples, settled funding rates and
liquidations of one or several symbols, in the order they became known, each tagged with its
ccxt symbol (`Candle.symbol`, ...). It repairs its own gaps and never yields the same closed
candle twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from cryptobot.errors import ExchangeError
from cryptobot.model import Candle, FundingRate, Liquidation, OpenInterest

FeedEvent = Candle | OpenInterest | FundingRate | Liquidation

# Called with each message's exchange event time. A replay passes SimClock-advancing code here,
# so time moves with the stream; a live run passes `ignore_exchange_time`.
ExchangeTimeHook = Callable[[int], None]


# Called by a stream when one connection's symbols start being listened to (its first message
# after subscribing: end None) and when that stops (the last message before a drop or a
# rotation: end = its time + 1): (symbols, start_ms, end_ms).
ListeningHook = Callable[[tuple[str, ...], int, int | None], None]


def ignore_exchange_time(ts_ms: int) -> None:
    """The live hook: the wall clock moves by itself."""


class MalformedMessageError(ExchangeError):
    """A stream message we cannot read. Counted and logged by the adapter, never fatal."""


def event_time_ms(event: FeedEvent) -> int:
    """When the event became usable: a candle at its close, a sample at its own time."""
    if isinstance(event, Candle):
        return event.ts_close_ms
    return event.ts_ms


@dataclass
class FeedStats:
    """Counters an adapter keeps; the heartbeat and the benchmarks print them."""

    messages: int = 0
    candles: int = 0
    open_kline_updates: int = 0
    liquidations: int = 0
    oi_samples: int = 0
    oi_polls: int = 0
    oi_poll_errors: int = 0
    funding_rates: int = 0
    funding_poll_errors: int = 0
    malformed: int = 0
    unexpected: int = 0
    rejected: int = 0  # well-formed but wrong: refused by the market-data checks, never yielded
    duplicates_dropped: int = 0
    repaired_candles: int = 0
    repair_errors: int = 0
    connects: int = 0
    disconnects: int = 0
    rotations: int = 0

    @property
    def bad_messages(self) -> int:
        """Messages dropped as unreadable, unasked for, or wrong (rejected)."""
        return self.malformed + self.unexpected + self.rejected


class MarketFeed(Protocol):
    stats: FeedStats

    def events(self) -> AsyncIterator[FeedEvent]:
        """Events forever (live) or until the source runs dry; reconnects internally."""
        ...

    async def close(self) -> None: ...

    def on_listening(self, hook: ListeningHook) -> None:
        """Have `hook` told when each connection starts and stops listening (a stream that
        carries the venue's liquidations: outside those spans they are unknown)."""
        ...


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """One stream message, read by a venue: its exchange time and what it carried.

    `event_time_ms` is None for a venue's control replies (a subscription ack, a pong), which
    carry no market time and must not move a replay's clock.
    """

    event_time_ms: int | None
    events: tuple[FeedEvent, ...]
    open_update: bool = False  # a still-open candle's update: ignored, only counted
    unexpected: bool = False  # well-formed, but not a stream we asked for
    market: str | None = None  # the venue market id the message says it is about, if it says
    symbol: str | None = None  # which of the feed's symbols it came for (by its stream name)


class VenueStream(Protocol):
    """The venue-specific half of a streaming feed (URL, subscription, message format) for
    the symbols of one connection. Its `parse` tags each event with its ccxt symbol."""

    name: str
    symbols: tuple[str, ...]  # ccxt symbols, in the run's order (ties in time go in it)
    interval_ms: int
    poll_open_interest: bool  # True where the venue has no open-interest stream

    def url(self) -> str: ...

    def subscribe_messages(self) -> list[str]: ...

    def parse(self, raw: str | bytes) -> ParsedMessage: ...

    def heartbeat(self) -> tuple[float, str] | None:
        """(interval_s, message) of an application-level keepalive the feed sends while
        connected (Bybit's `{"op": "ping"}`); None where websocket-level pings suffice."""
        ...
