"""The market feed of a run: one streaming feed (one connection) for all its symbols, or, when
they do not fit on one connection (Binance: 1024 streams, Bybit: 21,000 characters of args),
one per group of symbols merged into one MarketFeed.

Merged connections yield events as they arrive; each connection repairs and de-duplicates its
own symbols. Only live streams ever need more than one: a replay serves one connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, fields
from typing import Any

from cryptobot.clock import Clock
from cryptobot.config import FeedSettings
from cryptobot.exchange.feed import (
    ExchangeTimeHook,
    FeedEvent,
    FeedStats,
    ListeningHook,
    VenueStream,
    ignore_exchange_time,
)
from cryptobot.exchange.oi_budget import plan_open_interest_polls
from cryptobot.exchange.streaming_feed import Resume, StreamingFeed

log = logging.getLogger("cryptobot.exchange.stream")


def build_feed(venues: Sequence[VenueStream], rest: Any, clock: Clock, settings: FeedSettings,
               on_exchange_time: ExchangeTimeHook = ignore_exchange_time,
               last_closed_open_ms: Resume = None, last_oi_ms: Resume = None,
               last_funding_ms: Resume = None,
               rng: random.Random | None = None) -> StreamingFeed | MergedFeed:
    """One feed over `venues` (one per connection, see the venues' `stream_groups`); the
    open-interest polls of all their symbols share one request budget, said in the log."""
    if len(venues) == 1:
        return StreamingFeed(venues[0], rest, clock, settings, on_exchange_time,
                             last_closed_open_ms, last_oi_ms, last_funding_ms, rng)
    budget = None
    if any(venue.poll_open_interest for venue in venues):
        budget = plan_open_interest_polls(sum(len(v.symbols) for v in venues),
                                          settings.oi_poll_seconds)
        log.info(budget.describe(), extra={"event": "oi_poll_budget"})
    log.info("%d symbols on %d connections", sum(len(v.symbols) for v in venues), len(venues))
    return MergedFeed([StreamingFeed(venue, rest, clock, settings, on_exchange_time,
                                     last_closed_open_ms, last_oi_ms, last_funding_ms, rng,
                                     poll_budget=budget) for venue in venues])


@dataclass(frozen=True)
class _Ended:
    error: BaseException | None = None


class MergedFeed:
    """Several feeds as one: events in arrival order; the first failure ends it."""

    def __init__(self, feeds: Sequence[StreamingFeed]) -> None:
        self.feeds = list(feeds)

    @property
    def stats(self) -> FeedStats:
        """The connections' counters, summed."""
        total = FeedStats()
        for feed in self.feeds:
            for item in fields(FeedStats):
                setattr(total, item.name, getattr(total, item.name)
                        + getattr(feed.stats, item.name))
        return total

    async def close(self) -> None:
        for feed in self.feeds:
            await feed.close()

    def on_listening(self, hook: ListeningHook) -> None:
        for feed in self.feeds:
            feed.on_listening(hook)

    async def events(self) -> AsyncIterator[FeedEvent]:
        queue: asyncio.Queue[FeedEvent | _Ended] = asyncio.Queue(maxsize=1024)

        async def pump(feed: StreamingFeed) -> None:
            try:
                async with aclosing(feed.events()) as stream:
                    async for event in stream:
                        await queue.put(event)
            except Exception as exc:  # the consumer raises it
                await queue.put(_Ended(exc))
                return
            await queue.put(_Ended())

        tasks = [asyncio.create_task(pump(feed)) for feed in self.feeds]
        running = len(tasks)
        try:
            while running:
                item = await queue.get()
                if isinstance(item, _Ended):
                    if item.error is not None:
                        raise item.error
                    running -= 1
                    continue
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
