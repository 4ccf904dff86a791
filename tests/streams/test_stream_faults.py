"""The adapter against a loopback server that misbehaves: 0 missing, 0 duplicated candles."""

from __future__ import annotations

import pytest

from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.loopback_ws import LoopbackStreamServer
from cryptobot.exchange.replay import kline_messages, stream_time_driver
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.model import Candle, OpenInterest
from tests.streams.conftest import (
    SYMBOL,
    closed_candles,
    collect_until,
    fast_settings,
    run_venue_feed,
    sim_clock_at,
)
from tests.streams.fake_rest import FakeRest

COUNT = 400  # real 5m candles, about 33 hours


async def run_feed(candles, server: LoopbackStreamServer, samples=(), **settings):
    def venue(url: str) -> BinanceUsdmStream:
        return BinanceUsdmStream(SYMBOL, candles[0].interval_ms, base_url=url)

    return await run_venue_feed(venue, candles, server, samples, seed=7, **settings)


@pytest.mark.parametrize(("drop_every", "lose_on_drop"), [(37, 0), (50, 5), (1, 3)])
async def test_dropped_connections_leave_no_hole_and_no_duplicate(
        calm_candles, drop_every, lose_on_drop):
    candles = calm_candles[:COUNT]
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles), drop_every=drop_every,
                                  lose_on_drop=lose_on_drop)
    events, feed, _ = await run_feed(candles, server)
    assert closed_candles(events) == candles
    assert server.dropped_connections >= COUNT // (drop_every + lose_on_drop) - 1
    assert feed.stats.connects == server.connections
    if lose_on_drop:
        assert feed.stats.repaired_candles > 0
    else:  # the server re-sends its last message on every reconnect: dropped, not yielded
        assert feed.stats.duplicates_dropped == feed.stats.disconnects


async def test_garbage_between_messages_is_counted_and_skipped(calm_candles):
    candles = calm_candles[:250]  # under 23.5h: no rotation, so every garbage message is read
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles), garbage_every=3)
    events, feed, _ = await run_feed(candles, server)
    assert closed_candles(events) == candles
    assert server.garbage_sent > 80
    assert feed.stats.malformed + feed.stats.unexpected == server.garbage_sent
    assert feed.stats.repaired_candles == 0


async def test_garbage_and_drops_together(calm_candles):
    candles = calm_candles[:COUNT]
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles), garbage_every=5,
                                  drop_every=23, lose_on_drop=2)
    events, _, _ = await run_feed(candles, server)
    assert closed_candles(events) == candles


async def test_connection_rotates_before_24h_of_simulated_time(calm_candles):
    candles = calm_candles[:COUNT]  # 400 x 5m = 33h20m
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles))
    events, feed, _ = await run_feed(candles, server, rotate_after_hours=10.0)
    # At full speed the messages in flight when the client hangs up are lost (as on a real
    # venue) and come back through REST, so the exact count depends on how far the server ran.
    assert feed.stats.rotations >= 1
    assert feed.stats.connects == feed.stats.rotations + 1 == server.connections
    assert feed.stats.disconnects == 0
    assert closed_candles(events) == candles


async def test_no_rotation_before_the_configured_age(calm_candles):
    candles = calm_candles[:COUNT]
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles))
    events, feed, _ = await run_feed(candles, server, rotate_after_hours=24.0)
    assert feed.stats.rotations == 1  # 33h of stream: exactly one rotation, after 24h


async def test_open_interest_is_polled_on_the_simulated_clock(calm_candles, calm_oi):
    first_oi_ms = calm_oi[0].ts_ms
    candles = [c for c in calm_candles if c.ts_open_ms >= first_oi_ms][:250]  # no rotation
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles))
    events, feed, rest = await run_feed(candles, server, calm_oi, oi_poll_seconds=900.0)
    samples = [e for e in events if isinstance(e, OpenInterest)]
    span_s = (candles[-1].ts_close_ms - candles[0].ts_open_ms) / 1000
    assert feed.stats.oi_polls == pytest.approx(span_s / 900, abs=1)
    assert rest.calls.count("fetch_open_interest") == feed.stats.oi_polls
    # each sample is the venue's own latest, stamped with its own time, never out of order
    assert samples == sorted(samples, key=lambda s: s.ts_ms)
    assert all(s in calm_oi for s in samples)
    # everything stamped at or before a candle's close comes before that candle
    last_close_ms = 0
    for event in events:
        if isinstance(event, Candle):
            last_close_ms = event.ts_close_ms
        else:
            assert event.ts_ms > last_close_ms - 300_000


async def test_gap_repair_brings_open_interest_history_in_time_order(calm_candles, calm_oi):
    first_oi_ms = calm_oi[0].ts_ms
    candles = [c for c in calm_candles if c.ts_open_ms >= first_oi_ms][:COUNT]
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles), drop_every=40,
                                  lose_on_drop=10)
    events, feed, _ = await run_feed(candles, server, calm_oi, oi_poll_seconds=1.0)
    assert closed_candles(events) == candles
    samples = [e for e in events if isinstance(e, OpenInterest)]
    expected = [s for s in calm_oi if candles[0].ts_open_ms < s.ts_ms <= candles[-1].ts_open_ms]
    # every 5m sample, polled or repaired, once, in order
    assert samples[:len(expected)] == expected
    close_by_event = []
    for event in events:
        close_by_event.append(event.ts_close_ms if isinstance(event, Candle) else event.ts_ms)
    assert close_by_event == sorted(close_by_event)


async def test_repair_retries_a_failing_rest_call(calm_candles):
    candles = calm_candles[:120]
    server = LoopbackStreamServer(kline_messages(SYMBOL, candles), drop_every=30,
                                  lose_on_drop=4)
    clock = sim_clock_at(candles[0].ts_open_ms)
    rest = FakeRest(list(candles), [], clock, fail_next=2, fail_method="fetch_ohlcv")
    url = await server.start()
    feed = StreamingFeed(BinanceUsdmStream(SYMBOL, 300_000, base_url=url), rest, clock,
                         fast_settings(), on_exchange_time=stream_time_driver(clock),
                         last_closed_open_ms=candles[0].ts_open_ms - 300_000)
    try:
        events = await collect_until(feed, candles[-1].ts_open_ms)
    finally:
        await server.stop()
    assert closed_candles(events) == candles
    assert feed.stats.repair_errors == 2
