"""A replay of data without open interest (or before its first sample) says so once, plainly:
no "Invalid symbol" from the loopback venue, no warning per poll."""

from __future__ import annotations

import logging

import aiohttp

from cryptobot.clock import SimClock, parse_utc
from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.loopback_rest import LoopbackRestServer
from cryptobot.exchange.loopback_ws import LoopbackStreamServer
from cryptobot.exchange.replay import kline_messages
from tests.streams.conftest import SYMBOL, closed_candles, run_venue_feed


async def test_the_loopback_says_it_has_no_open_interest_yet(calm_market):
    server = LoopbackRestServer(calm_market, clock=SimClock(parse_utc("2024-05-02")),
                                closed_only=True)
    base_url = await server.start()
    try:
        async with aiohttp.ClientSession() as session, \
                session.get(f"{base_url}/fapi/v1/openInterest?symbol=BTCUSDT") as response:
            answer = await response.json()
    finally:
        await server.stop()
    assert response.status == 400
    assert "Invalid symbol" not in answer["msg"]
    assert answer["msg"] == ("no open interest recorded for BTCUSDT by 2024-05-02T00:00:00Z in "
                             "the replayed data (its open interest starts 2024-05-09T16:10:00Z)")


async def test_failing_open_interest_polls_warn_once_per_streak(calm_candles, caplog):
    candles = calm_candles[:150]
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles))
    with caplog.at_level(logging.INFO, logger="cryptobot.exchange.stream"):
        events, feed, _ = await run_venue_feed(
            lambda url: BinanceUsdmStream(SYMBOL, 300_000, base_url=url), candles, server,
            oi_poll_seconds=60.0)  # no samples at all: every poll fails
    assert closed_candles(events) == candles
    assert feed.stats.oi_poll_errors > 100
    failures = [r for r in caplog.records if "open-interest poll failed" in r.getMessage()]
    assert len(failures) == 1

