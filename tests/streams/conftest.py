"""Stream test helpers: real candles and OI from data/, a feed wired to a loopback server."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from cryptobot.clock import SimClock
from cryptobot.config import FeedSettings
from cryptobot.data import load_market_data
from cryptobot.exchange.replay import CandleColumns
from cryptobot.model import Candle, OpenInterest

SYMBOL = "BTC/USDT:USDT"
CALM_DIR = "data/btc_2024-05_calm"  # real 5m candles with real 5m open interest


@pytest.fixture(scope="session")
def calm_market():
    from tests.conftest import REPO_ROOT

    return load_market_data(REPO_ROOT / CALM_DIR, SYMBOL)


@pytest.fixture(scope="session")
def calm_candles(calm_market) -> list[Candle]:
    return list(CandleColumns.from_frame(calm_market.candles, calm_market.base_interval_ms))


@pytest.fixture(scope="session")
def calm_oi(calm_market) -> list[OpenInterest]:
    frame = calm_market.open_interest
    return [OpenInterest(int(t), float(c), float(v)) for t, c, v in
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
