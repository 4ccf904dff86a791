"""Warm-up and gap repair for Bybit through real ccxt `bybit` against a loopback Bybit REST fake
(tests/streams/bybit_fake_rest.py, which refuses limits beyond Bybit's documented pages and
answers a window larger than a page with its newest rows), on real Bybit 15m candles.
Open-interest samples here are SYNTHETIC (one per candle, counting up): no Bybit open interest
is stored in the repo.
"""

from __future__ import annotations

import random

import pytest

from cryptobot.clock import DAY_MS, SimClock
from cryptobot.exchange.backfill import PAGE_LIMITS, load_warm_up, page_limits
from cryptobot.exchange.bybit import BybitLinearStream
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.funding_intervals import fetch_funding_intervals
from cryptobot.exchange.replay import stream_time_driver
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.model import Candle, OpenInterest
from tests.streams.bybit_fake_rest import BybitFakeRest
from tests.streams.bybit_loopback import BybitLoopbackServer, load_bybit_15m
from tests.streams.conftest import SYMBOL, collect_until, fast_settings
from tests.streams.test_bybit_stream import kline_stream


@pytest.fixture(scope="module")
def bybit_candles() -> list[Candle]:
    return load_bybit_15m()


def synthetic_oi(candles) -> list[OpenInterest]:
    return [OpenInterest(c.ts_open_ms, 50_000.0 + i, None, SYMBOL) for i, c in enumerate(candles)]


async def bybit_rest(fake: BybitFakeRest):
    # the rate limiter is off: our own loopback server
    return make_exchange("bybit", rest_url=await fake.start(), async_client=True,
                         rate_limit=False)


async def test_warm_up_longer_than_one_page_comes_whole_and_in_order(bybit_candles):
    now_ms = bybit_candles[2000].ts_open_ms + 5_000  # the 2001st candle is still forming
    samples = synthetic_oi(bybit_candles)
    fake = BybitFakeRest(bybit_candles, samples, SimClock(now_ms))
    rest = await bybit_rest(fake)
    try:
        warm = await load_warm_up(rest, SYMBOL, 900_000, now_ms, days=20)
    finally:
        await rest.close()
        await fake.stop()
    start_ms = now_ms - 20 * DAY_MS
    assert warm.candles == [c for c in bybit_candles[:2000] if c.ts_open_ms >= start_ms - 5_000]
    assert len(warm.candles) == 1920 > 1000  # more than one Bybit kline page
    assert warm.open_interest == [s for s in samples if start_ms - 5_000 <= s.ts_ms <= now_ms]
    assert "/v5/market/kline" in fake.paths and "/v5/market/open-interest" in fake.paths


async def test_gap_repair_through_ccxt_bybit_leaves_no_hole(bybit_candles):
    candles = bybit_candles[:200]
    clock = SimClock(candles[0].ts_open_ms)
    fake = BybitFakeRest(candles, synthetic_oi(candles), clock)
    rest = await bybit_rest(fake)
    server = BybitLoopbackServer(kline_stream(candles), drop_every=50, lose_on_drop=12)
    venue = BybitLinearStream(SYMBOL, 900_000, base_url=await server.start())
    feed = StreamingFeed(venue, rest, clock, fast_settings(), stream_time_driver(clock),
                         last_closed_open_ms=candles[0].ts_open_ms - 900_000,
                         rng=random.Random(3))
    try:
        events = await collect_until(feed, candles[-1].ts_open_ms)
    finally:
        await server.stop()
        await rest.close()
        await fake.stop()
    assert [e for e in events if isinstance(e, Candle)] == candles
    assert feed.stats.repaired_candles > 0 and feed.stats.repair_errors == 0
    samples = [e for e in events if isinstance(e, OpenInterest)]
    assert samples == sorted(samples, key=lambda s: s.ts_ms) and samples  # REST-repaired OI


def test_paper_picks_the_bybit_venue(tmp_path):
    from cryptobot.cli.paper_command import _venue_stream
    from cryptobot.config import load_settings
    from tests.conftest import REPO_ROOT

    path = tmp_path / "bybit.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / "paper.toml"}"\n'
                    '[market]\nexchange = "bybit"\n[feed]\noi_poll_seconds = 45.0\n')
    settings = load_settings(path)
    venue = _venue_stream(settings, SYMBOL, 60_000, None)
    assert isinstance(venue, BybitLinearStream) and not venue.poll_open_interest
    assert venue.url() == "wss://stream.bybit.com/v5/public/linear"
    assert venue.topics()[0] == "kline.1.BTCUSDT" and venue.oi_min_interval_ms == 45_000


async def test_paper_history_is_paged_the_way_its_venue_documents():
    from cryptobot.cli.paper_command import _venue_rest
    from cryptobot.config import Settings

    settings = Settings()
    bybit = settings.model_copy(update={"market": settings.market.model_copy(
        update={"exchange": "bybit"})})
    limits = []
    for chosen in (bybit, settings):
        rest = _venue_rest(chosen)
        limits.append(page_limits(rest))
        await rest.close()
    assert limits == [PAGE_LIMITS["bybit"], PAGE_LIMITS["binanceusdm"]]
    assert PAGE_LIMITS["bybit"].klines == 1000 and PAGE_LIMITS["bybit"].open_interest == 200


async def test_the_funding_interval_comes_from_instruments_info(bybit_candles):
    """fundingInterval (minutes) of the linear instrument: 480 in Bybit's documented answer."""
    fake = BybitFakeRest(bybit_candles, [], SimClock(bybit_candles[10].ts_open_ms))
    rest = await bybit_rest(fake)
    try:
        assert await fetch_funding_intervals(rest, [SYMBOL]) == {SYMBOL: 8 * 3_600_000}
    finally:
        await rest.close()
        await fake.stop()
    assert "/v5/market/instruments-info" in fake.paths
