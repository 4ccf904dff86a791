"""The live feed learns each symbol's funding interval from the venue (Binance GET
/fapi/v1/fundingInfo on the loopback Binance) and polls each settled rate right after its
settlement, at 8h, 4h or 1h: a rate comes out before the candle that closes after it, never an
interval late. Real Binance 5m candles of the crash window; the funding stamps are SYNTHETIC
(the real rates re-stamped: 8h, then 4h from 2024-08-04, 1h over 08-04 12:00 .. 08-06 12:00,
each 2 ms after its hour)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from cryptobot.clock import HOUR_MS, SimClock, parse_utc
from cryptobot.config import Settings
from cryptobot.data import load_market_data
from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.funding_intervals import fetch_funding_intervals
from cryptobot.exchange.loopback_rest import LoopbackRestServer
from cryptobot.exchange.replay import ReplayVenue
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.model import Candle, FundingRate
from tests.engine.test_funding_backtest_paths import CRASH, _intervals_synthetic

SYMBOL = "BTC/USDT:USDT"
BASE_MS = 300_000


def _market():
    return _intervals_synthetic(load_market_data(CRASH, SYMBOL), four_from="2024-08-04",
                                one_from="2024-08-04T12:00", one_until="2024-08-06T12:00")


async def _intervals_at(market, now_ms: int) -> dict[str, int]:
    server = LoopbackRestServer(market, clock=SimClock(now_ms))
    url = await server.start()
    rest = make_exchange("binanceusdm", rest_url=url, async_client=True, rate_limit=False)
    try:
        return await fetch_funding_intervals(rest, [SYMBOL])
    finally:
        await rest.close()
        await server.stop()


def test_the_interval_comes_from_binance_funding_info_synthetic():
    market = _market()
    async def three() -> list[dict[str, int]]:
        return [await _intervals_at(market, parse_utc(day))
                for day in ("2024-08-03", "2024-08-04T06:00", "2024-08-05")]

    assert asyncio.run(three()) == [{SYMBOL: h * HOUR_MS} for h in (8, 4, 1)]


async def _stream(market, start_ms: int, end_ms: int):
    """(rate, close of the last candle yielded before it) for every rate the feed yields."""
    async with ReplayVenue(market, start_ms, end_ms) as venue:
        rest = make_exchange("binanceusdm", rest_url=venue.rest_url, async_client=True,
                             rate_limit=False)
        feed = StreamingFeed(BinanceUsdmStream((SYMBOL,), BASE_MS, base_url=venue.ws_url),
                             rest, venue.clock, Settings().feed, venue.time_driver(),
                             last_closed_open_ms=start_ms - BASE_MS)
        seen, last_close, learned = [], start_ms, set()
        asked, ask = [], feed._fetch.funding_intervals

        async def asking(symbols):  # (when, the last candle yielded then) for each ask
            asked.append((venue.clock.now_ms(), last_close))
            return await ask(symbols)

        feed._fetch.funding_intervals = asking
        try:
            async with aclosing(feed.events()) as events:
                async for event in events:
                    learned.add(feed.funding_intervals_ms()[SYMBOL])
                    if isinstance(event, FundingRate):
                        seen.append((event, last_close))
                    elif isinstance(event, Candle):
                        last_close = event.ts_close_ms
                        if last_close >= end_ms:
                            break
        finally:
            await feed.close()
            await rest.close()
    return seen, learned, asked


def test_the_feed_polls_every_settlement_as_it_falls_8h_then_4h_then_1h_synthetic():
    market = _market()
    start, end = parse_utc("2024-08-03T12:00"), parse_utc("2024-08-04T15:00")
    seen, learned, _ = asyncio.run(_stream(market, start, end))
    expected = [int(ts) for ts in market.funding["ts_ms"] if start < ts < end]
    in_force = int(market.funding["ts_ms"][market.funding["ts_ms"] < start][-1])
    assert [rate.ts_ms for rate, _ in seen] == [in_force, *expected]  # the last one first
    seen = seen[1:]
    assert learned == {8 * HOUR_MS, 4 * HOUR_MS, HOUR_MS}
    stamps = [rate.ts_ms for rate, _ in seen]
    hours = sorted({(b - a) // HOUR_MS for a, b in zip(stamps, stamps[1:], strict=False)})
    assert hours == [1, 4, 8]
    for rate, closed_before in seen:  # out before the candle holding its settlement closed
        assert closed_before <= rate.ts_ms < closed_before + BASE_MS, rate


def test_the_hourly_interval_refresh_waits_for_the_hours_candle_synthetic():
    """Asked once before the first poll, then each hour once the candle closing at the hour
    was handled: the REST call never stands between that candle and its orders."""
    start, end = parse_utc("2024-08-03T22:00"), parse_utc("2024-08-04T02:00")
    _, _, asked = asyncio.run(_stream(_market(), start, end))
    hours = [now_ms - now_ms % HOUR_MS for now_ms, _ in asked[1:]]
    assert hours == [start + h * HOUR_MS for h in range(1, 4)], asked
    for (now_ms, closed), hour in zip(asked[1:], hours, strict=True):
        assert closed == hour, (now_ms, closed)  # the hour's own candle went first
