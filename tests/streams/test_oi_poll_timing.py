"""A closed candle never waits for an open-interest poll whose answer it must not see.

Live, a candle's closing frame comes after its close, so a poll sent then is answered with the
venue's open interest of that moment, published after the close: the candle goes to the engine
first, the sample right after it (for the next candle's decision). A replay's frame comes at the
close (the stream's time): a poll then may be answered with the sample of the close, which that
candle may use, so it is polled first, as before."""

from __future__ import annotations

from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.loopback_ws import LoopbackStreamServer
from cryptobot.exchange.replay import binance_kline_message
from cryptobot.model import Candle, OpenInterest
from tests.streams.conftest import SYMBOL, closed_candles, run_venue_feed

FRAME_AFTER_CLOSE_MS = 50  # a live venue's closing frame, this late
PUBLISHED_AFTER_CLOSE_MS = 30  # the venue's open interest when the poll reaches it


def samples_after_each_close(candles: list[Candle]) -> list[OpenInterest]:
    return [OpenInterest(c.ts_close_ms + PUBLISHED_AFTER_CLOSE_MS, 1000.0 + i, 6e7 + i, SYMBOL)
            for i, c in enumerate(candles)]


async def feed_events(candles, samples, frame_delay_ms: int):
    messages = [(c.ts_close_ms + frame_delay_ms,
                 binance_kline_message(SYMBOL, c, event_time_ms=c.ts_close_ms + frame_delay_ms))
                for c in candles]
    events, feed, rest = await run_venue_feed(
        lambda url: BinanceUsdmStream(SYMBOL, 300_000, base_url=url), candles,
        LoopbackStreamServer(messages), samples, oi_poll_seconds=1.0)  # due at every frame
    return events, feed


def seen_before(events) -> list[tuple[Candle, list[OpenInterest]]]:
    """Each candle with the samples the feed had yielded before it."""
    out, samples = [], []
    for event in events:
        if isinstance(event, OpenInterest):
            samples.append(event)
        elif isinstance(event, Candle):
            out.append((event, list(samples)))
    return out


async def test_a_live_candle_goes_first_and_the_sample_polled_after_its_close_follows(
        calm_candles):
    candles = calm_candles[:40]
    events, feed = await feed_events(candles, samples_after_each_close(candles),
                                     FRAME_AFTER_CLOSE_MS)
    assert closed_candles(events) == candles
    assert feed.stats.oi_polls >= len(candles) - 1
    for candle, before in seen_before(events):
        assert all(s.ts_ms <= candle.ts_close_ms for s in before)  # nothing after its close
    # every sample came (none dropped), each right after the candle whose frame polled it
    after = [e for e in events if isinstance(e, OpenInterest)]
    assert len(after) >= len(candles) - 1
    for index, event in enumerate(events):
        if isinstance(event, OpenInterest):
            candle = events[index - 1]
            assert isinstance(candle, Candle)
            assert event.ts_ms == candle.ts_close_ms + PUBLISHED_AFTER_CLOSE_MS


async def test_a_replayed_candle_still_sees_the_sample_of_its_close(calm_candles, calm_oi):
    first_ms = calm_oi[0].ts_ms  # the recorded 5m samples, stamped at the candles' closes
    candles = [c for c in calm_candles if c.ts_close_ms > first_ms][:40]
    at_close = {c.ts_close_ms for c in candles}
    samples = [s for s in calm_oi if s.ts_ms in at_close]
    assert len(samples) >= 30
    events, _ = await feed_events(candles, samples, 0)
    seen = {candle.ts_close_ms: before for candle, before in seen_before(events)}
    hits = [close for close, before in seen.items()
            if before and before[-1].ts_ms == close]
    assert len(hits) >= len(samples) - 1  # polled first: the candle's own close's sample


async def test_a_candle_on_an_unbroken_stream_leaves_in_its_frames_turn_of_the_loop(
        calm_candles, monkeypatch):
    """Nothing else on the loop (live: user-stream events and their writes) runs between a
    closed candle's frame and the candle reaching the engine: no repair task is made for a
    stream without a hole."""
    import asyncio

    from tests.streams import conftest

    turned: list[bool] = []  # per frame: whether the loop ran something else since it came
    parse = BinanceUsdmStream.parse

    def parsing(self, raw):
        turned.append(False)
        asyncio.get_running_loop().call_soon(turned.__setitem__, -1, True)
        return parse(self, raw)

    seen: list[bool] = []
    collect = conftest.collect_until

    async def collecting(feed, last_open_ms, timeout_s=60.0):
        events = feed.events

        async def noting():
            async for event in events():
                if isinstance(event, Candle):
                    seen.append(turned[-1])
                yield event

        feed.events = noting
        return await collect(feed, last_open_ms, timeout_s)

    monkeypatch.setattr(BinanceUsdmStream, "parse", parsing)
    monkeypatch.setattr(conftest, "collect_until", collecting)
    candles = calm_candles[:40]
    events, _ = await feed_events(candles, samples_after_each_close(candles),
                                  FRAME_AFTER_CLOSE_MS)
    assert closed_candles(events) == candles
    assert len(seen) == len(candles) and not any(seen[1:])  # the first one anchors the track
