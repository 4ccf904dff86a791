"""The Bybit adapter through the same StreamingFeed, against a Bybit-speaking loopback server.

Candles: real Bybit linear BTCUSDT 15m (tests/fixtures/dumps), streamed as `kline.15.BTCUSDT`
with a still-open update before each close. Open interest: real Binance 5m samples
(data/btc_2024-05_calm) carried in Bybit `tickers` deltas, since no Bybit OI is stored.
"""

from __future__ import annotations

import pytest

from cryptobot.exchange.bybit import BybitLinearStream
from cryptobot.exchange.bybit_messages import kline_message, liquidation_message, ticker_message
from cryptobot.exchange.replay import stream_time_driver
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.model import Candle, Liquidation, OpenInterest
from tests.streams.bybit_loopback import BybitLoopbackServer, load_bybit_15m
from tests.streams.conftest import (
    SYMBOL,
    closed_candles,
    collect_until,
    fast_settings,
    run_venue_feed,
    sim_clock_at,
)
from tests.streams.fake_rest import FakeRest

COUNT = 300  # real 15m candles, about 3 days: the 24h rotation happens too


@pytest.fixture(scope="module")
def bybit_candles() -> list[Candle]:
    return load_bybit_15m()


def kline_stream(candles) -> list[tuple[int, str]]:
    """Per candle: an open update 7 minutes in, then the closed kline at its close."""
    messages = []
    for candle in candles:
        messages.append((candle.ts_open_ms + 420_000,
                         kline_message(SYMBOL, candle, closed=False,
                                       ts_ms=candle.ts_open_ms + 420_000)))
        messages.append((candle.ts_close_ms, kline_message(SYMBOL, candle)))
    return messages


async def run_feed(candles, server, samples=(), oi_min_interval_ms=0, **settings):
    def venue(url: str) -> BybitLinearStream:
        return BybitLinearStream(SYMBOL, candles[0].interval_ms, base_url=url,
                                 oi_min_interval_ms=oi_min_interval_ms)

    return await run_venue_feed(venue, candles, server, samples, seed=11, **settings)


@pytest.mark.parametrize(("drop_every", "lose_on_drop"), [(41, 0), (60, 7), (1, 3)])
async def test_dropped_connections_leave_no_hole_and_no_duplicate(
        bybit_candles, drop_every, lose_on_drop):
    candles = bybit_candles[:COUNT]
    server = BybitLoopbackServer(kline_stream(candles), drop_every=drop_every,
                                 lose_on_drop=lose_on_drop)
    events, feed, _ = await run_feed(candles, server)
    assert closed_candles(events) == candles
    assert server.dropped_connections >= 2 * COUNT // (drop_every + lose_on_drop) - 1
    # every connection subscribed to the three topics before anything was streamed
    assert server.subscriptions == [["kline.15.BTCUSDT", "tickers.BTCUSDT",
                                     "allLiquidation.BTCUSDT"]] * server.connections
    assert feed.stats.open_kline_updates > 0
    if lose_on_drop:
        assert feed.stats.repaired_candles > 0


async def test_garbage_and_drops_together(bybit_candles):
    candles = bybit_candles[:COUNT]
    server = BybitLoopbackServer(kline_stream(candles), garbage_every=4, drop_every=37,
                                 lose_on_drop=2)
    events, feed, _ = await run_feed(candles, server)
    assert closed_candles(events) == candles
    assert server.garbage_sent > 100
    assert feed.stats.malformed + feed.stats.unexpected >= server.garbage_sent // 2


async def test_garbage_alone_is_counted_and_skipped(bybit_candles):
    candles = bybit_candles[:80]  # 20h: no rotation, so every garbage message is read
    server = BybitLoopbackServer(kline_stream(candles), garbage_every=3)
    events, feed, _ = await run_feed(candles, server)
    assert closed_candles(events) == candles
    assert feed.stats.malformed + feed.stats.unexpected == server.garbage_sent > 40
    assert feed.stats.repaired_candles == 0


async def test_the_client_pings_bybit_at_the_application_level(bybit_candles):
    candles = bybit_candles[:20]
    # The server holds the stream back until a ping arrives: no ping, no candles (a timeout).
    server = BybitLoopbackServer(kline_stream(candles), hold_until_ping=True)
    clock = sim_clock_at(candles[0].ts_open_ms)
    url = await server.start()
    venue = BybitLinearStream(SYMBOL, 900_000, base_url=url, heartbeat_interval_s=0.05)
    feed = StreamingFeed(venue, FakeRest(list(candles), [], clock), clock, fast_settings(),
                         on_exchange_time=stream_time_driver(clock),
                         last_closed_open_ms=candles[0].ts_open_ms - 900_000)
    try:
        events = await collect_until(feed, candles[-1].ts_open_ms, timeout_s=20)
    finally:
        await server.stop()
    assert closed_candles(events) == candles and server.pings >= 1


def oi_stream(candles, samples) -> list[tuple[int, str]]:
    """5m klines with a tickers delta per OI sample, each before the candle closing at its time."""
    items = [(s.ts_ms, 0, ticker_message(SYMBOL, s, seq=i)) for i, s in enumerate(samples)]
    items += [(c.ts_close_ms, 1, kline_message(SYMBOL, c)) for c in candles]
    items.sort(key=lambda item: (item[0], item[1]))
    return [(ts, text) for ts, _, text in items]


async def test_open_interest_comes_from_ticker_deltas_not_polling(calm_candles, calm_oi):
    first_oi_ms = calm_oi[0].ts_ms
    candles = [c for c in calm_candles if c.ts_open_ms >= first_oi_ms][:250]
    samples = [s for s in calm_oi if candles[0].ts_open_ms <= s.ts_ms <= candles[-1].ts_close_ms]
    server = BybitLoopbackServer(oi_stream(candles, samples))
    events, feed, rest = await run_feed(candles, server, calm_oi, oi_poll_seconds=1.0)
    got = [e for e in events if isinstance(e, OpenInterest)]
    assert "fetch_open_interest" not in rest.calls and feed.stats.oi_polls == 0
    # one history fetch, for the moments before the first candle of the only connection
    assert rest.calls.count("fetch_open_interest_history") == feed.stats.connects == 1
    assert closed_candles(events) == candles
    # real 5m OI moves every sample: each one arrives, once, in order, at the venue's own time
    assert got[:len(samples) - 1] == samples[:-1]


async def test_open_interest_and_candles_survive_drops_in_time_order(calm_candles, calm_oi):
    first_oi_ms = calm_oi[0].ts_ms
    candles = [c for c in calm_candles if c.ts_open_ms >= first_oi_ms][:250]
    samples = [s for s in calm_oi if candles[0].ts_open_ms < s.ts_ms <= candles[-1].ts_close_ms]
    server = BybitLoopbackServer(oi_stream(candles, samples), drop_every=45, lose_on_drop=9)
    events, feed, _ = await run_feed(candles, server, calm_oi)
    assert closed_candles(events) == candles and feed.stats.repaired_candles > 0
    got = [e for e in events if isinstance(e, OpenInterest)]
    assert len(got) == len({s.ts_ms for s in got}) and all(s in calm_oi for s in got)
    times = [e.ts_close_ms if isinstance(e, Candle) else e.ts_ms for e in events]
    assert times == sorted(times)
    # nothing lost: each stretch a drop swallowed came back through REST open-interest history;
    # only a streamed value equal to the one before it is (rightly) not repeated
    yielded_ms = {s.ts_ms for s in got}
    missing = [(prev, s) for prev, s in zip(samples, samples[1:], strict=False)
               if s.ts_ms not in yielded_ms and s.ts_ms < candles[-1].ts_open_ms]
    assert all(s.oi_contracts == prev.oi_contracts for prev, s in missing), missing[:3]


async def test_liquidations_stream_with_the_side_of_the_liquidating_order(bybit_candles):
    candles = bybit_candles[:12]
    liquidations = [Liquidation(c.ts_open_ms + 61_000, side, c.low, 0.5, SYMBOL)
                    for c, side in zip(candles, ["sell", "buy"] * 6, strict=True)]
    messages = sorted(kline_stream(candles) +
                      [(q.ts_ms, liquidation_message(SYMBOL, q)) for q in liquidations])
    server = BybitLoopbackServer(messages)
    events, feed, _ = await run_feed(candles, server)
    assert [e for e in events if isinstance(e, Liquidation)] == liquidations
    assert feed.stats.liquidations == len(liquidations)
