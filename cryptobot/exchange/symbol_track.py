"""One symbol's place in a streaming feed: what it yielded last, when its polls are due, and
the stream checks its messages pass. A feed of several symbols on one connection keeps one
track per symbol; they share the connection, the clock and the counters."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cryptobot.data.funding_times import DEFAULT_INTERVAL_MS, settlement_ms
from cryptobot.exchange.feed import FeedEvent, FeedStats
from cryptobot.exchange.stream_checks import StreamChecks
from cryptobot.model import Candle, FundingRate, OpenInterest


def next_funding_after(ts_ms: int, interval_ms: int = DEFAULT_INTERVAL_MS) -> int:
    """The first funding settlement after `ts_ms` on a symbol settling every `interval_ms`
    (settlements fall on whole multiples of the interval since 00:00 UTC: 8h at 00, 08 and
    16; 4h at 00, 04, ...)."""
    return ts_ms - ts_ms % interval_ms + interval_ms


@dataclass(eq=False)  # one track per symbol: compared (and hashed) by identity
class SymbolTrack:
    symbol: str
    index: int  # the symbol's place in the run's order: ties in time go in it
    checks: StreamChecks
    last_open_ms: int | None  # the last closed candle yielded (its open)
    last_oi_ms: int | None
    last_funding_ms: int | None
    next_funding_ms: int
    next_poll_ms: int | None = None  # None: not polled yet
    funding_interval_ms: int = DEFAULT_INTERVAL_MS  # as the venue said it last
    oi_failures_in_a_row: int = 0  # one warning per streak of failed polls

    def tagged(self, event: FeedEvent) -> FeedEvent:
        """The event with this track's symbol (REST rows come untagged)."""
        return event if event.symbol == self.symbol else replace(event, symbol=self.symbol)

    def accept(self, event: FeedEvent, stats: FeedStats) -> FeedEvent | None:
        """The de-duplicating gate every event of the symbol passes on its way out."""
        if isinstance(event, Candle):
            if self.last_open_ms is not None and event.ts_open_ms <= self.last_open_ms:
                stats.duplicates_dropped += 1
                return None
            self.last_open_ms = event.ts_open_ms
            stats.candles += 1
        elif isinstance(event, OpenInterest):
            if self.last_oi_ms is not None and event.ts_ms <= self.last_oi_ms:
                return None
            self.last_oi_ms = event.ts_ms
            stats.oi_samples += 1
        elif isinstance(event, FundingRate):
            if (self.last_funding_ms is not None  # the same settlement again, or an older one
                    and settlement_ms(event.ts_ms) <= settlement_ms(self.last_funding_ms)):
                return None
            self.last_funding_ms = event.ts_ms
            self.next_funding_ms = max(self.next_funding_ms, next_funding_after(
                settlement_ms(event.ts_ms), self.funding_interval_ms))
            stats.funding_rates += 1
        else:
            stats.liquidations += 1
        return self.tagged(event)

    def learn_funding_interval(self, interval_ms: int) -> None:
        """The venue settles this symbol every `interval_ms` now: the next settlement to poll
        for is the first on that grid after the last one seen (or the one awaited)."""
        if interval_ms <= 0 or interval_ms == self.funding_interval_ms:
            return
        if self.last_funding_ms is not None:
            since_ms = settlement_ms(self.last_funding_ms)
        else:
            since_ms = self.next_funding_ms - self.funding_interval_ms
        self.funding_interval_ms = interval_ms
        self.next_funding_ms = next_funding_after(since_ms, interval_ms)
