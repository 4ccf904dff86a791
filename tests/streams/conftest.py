"""Stream test helpers: real candles and OI from data/, a feed wired to a loopback server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace

import pytest

from cryptobot.clock import SimClock
from cryptobot.config import FeedSettings
from cryptobot.data import load_market_data
from cryptobot.exchange.feed import VenueStream
from cryptobot.exchange.replay import CandleColumns, stream_time_driver
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.model import Candle, OpenInterest
from tests.streams.fake_rest import FakeRest

SYMBOL = "BTC/USDT:USDT"
CALM_DIR = "data/btc_2024-05_calm"  # real 5m candles with real 5m open interest


@pytest.fixture(scope="session")
def calm_market():
    from tests.conftest import REPO_ROOT

    return load_market_data(REPO_ROOT / CALM_DIR, SYMBOL)


@pytest.fixture(scope="session")
def calm_candles(calm_market) -> list[Candle]:
    """Tagged with their symbol, as a feed yields them."""
    return [replace(candle, symbol=SYMBOL) for candle in
            CandleColumns.from_frame(calm_market.candles, calm_market.base_interval_ms)]


@pytest.fixture(scope="session")
def calm_oi(calm_market) -> list[OpenInterest]:
    frame = calm_market.open_interest
    return [OpenInterest(int(t), float(c), float(v), SYMBOL) for t, c, v in
            zip(frame["ts_ms"], frame["oi_contracts"], frame["oi_value_usdt"], strict=True)]


def fast_settings(**overrides) -> FeedSettings:
    values = {"reconnect_min_backoff_s": 0.001, "reconnect_max_backoff_s": 0.01,
              "oi_poll_seconds": 3600.0}
    values.update(overrides)
    return FeedSettings(**values)


async def collect_until(feed, last_open_ms: int, timeout_s: float = 60.0) -> list:
    """Everything the feed yields up to and including the candle opening at `last_open_ms`."""
    events = []
    async with asyncio.timeout(timeout_s), aclosing(feed.events()) as stream:
        async for event in stream:
            events.append(event)
            if isinstance(event, Candle) and event.ts_open_ms >= last_open_ms:
                break
    await feed.close()
    return events


def sim_clock_at(ts_ms: int) -> SimClock:
    return SimClock(ts_ms)


def closed_candles(events) -> list[Candle]:
    return [e for e in events if isinstance(e, Candle)]


async def run_venue_feed(make_venue: Callable[[str], VenueStream], candles, server,
                         samples=(), seed: int = 7, **settings):
    """A StreamingFeed over `make_venue(url of the started server)` and a FakeRest, on a
    simulated clock driven by the stream, collected up to the last candle.
    Returns (events, feed, rest)."""
    clock = sim_clock_at(candles[0].ts_open_ms)
    rest = FakeRest(list(candles), list(samples), clock)
    venue = make_venue(await server.start())
    feed = StreamingFeed(venue, rest, clock, fast_settings(**settings),
                         on_exchange_time=stream_time_driver(clock),
                         last_closed_open_ms=candles[0].ts_open_ms - candles[0].interval_ms,
                         rng=random.Random(seed))
    try:
        events = await collect_until(feed, candles[-1].ts_open_ms)
    finally:
        await server.stop()
    return events, feed, rest
