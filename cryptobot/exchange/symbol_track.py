"""One symbol's place in a streaming feed: what it yielded last, when its polls are due, and
the stream checks its messages pass. A feed of several symbols on one connection keeps one
track per symbol; they share the connection, the clock and the counters."""

from __future__ import annotations

from dataclasses import dataclass, replace

from cryptobot.clock import HOUR_MS
from cryptobot.exchange.feed import FeedEvent, FeedStats
from cryptobot.exchange.stream_checks import StreamChecks
from cryptobot.model import Candle, FundingRate, OpenInterest

FUNDING_INTERVAL_MS = 8 * HOUR_MS  # Binance and Bybit settle at 00:00, 08:00 and 16:00 UTC


def next_funding_after(ts_ms: int) -> int:
    """The first funding settlement after `ts_ms`."""
    return ts_ms - ts_ms % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS


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
            if self.last_funding_ms is not None and event.ts_ms <= self.last_funding_ms:
                return None
            self.last_funding_ms = event.ts_ms
            self.next_funding_ms = max(self.next_funding_ms, event.ts_ms + FUNDING_INTERVAL_MS)
            stats.funding_rates += 1
        else:
            stats.liquidations += 1
        return self.tagged(event)
