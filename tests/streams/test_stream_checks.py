"""A well-formed but wrong stream message never reaches the engine, and the good candles around it
are all kept: the message is dropped, counted and reported."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from cryptobot.clock import SimClock
from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.feed import FeedStats
from cryptobot.exchange.loopback_ws import LoopbackStreamServer
from cryptobot.exchange.replay import binance_kline_message, kline_messages, stream_time_driver
from cryptobot.exchange.stream_checks import StreamChecks
from cryptobot.model import Candle
from tests.streams.conftest import SYMBOL, closed_candles, run_venue_feed

DAY_MS = 86_400_000
INTERVAL_MS = 300_000


def _venue() -> BinanceUsdmStream:
    return BinanceUsdmStream(SYMBOL, INTERVAL_MS)


class Stream:
    """StreamChecks on a replay's clock, fed real Binance messages."""

    def __init__(self, first: Candle) -> None:
        self.clock = SimClock(first.ts_open_ms)
        self.stats = FeedStats()
        self.checks = StreamChecks(SYMBOL, INTERVAL_MS, self.clock,
                                   stream_time_driver(self.clock), self.stats)

    def send(self, candle: Candle, event_time_ms: int | None = None, **fields) -> tuple:
        raw = binance_kline_message(SYMBOL, candle, event_time_ms=event_time_ms)
        if fields:
            message = json.loads(raw)
            message["data"]["k"].update(fields)
            message["data"].update({k: v for k, v in fields.items() if k == "s"})
            raw = json.dumps(message)
        taken = self.checks.vet(_venue().parse(raw), raw)
        for event in taken:
            if isinstance(event, Candle):
                self.checks.stream_candle_taken()
        return taken


@pytest.fixture
def five(calm_candles):
    return calm_candles[:5]


def test_good_candles_pass_and_move_the_replay_clock(five):
    stream = Stream(five[0])
    assert [stream.send(c) for c in five] == [(c,) for c in five]
    assert stream.clock.now_ms() == five[-1].ts_close_ms and stream.stats.rejected == 0


@pytest.mark.parametrize("fields", [{"c": "NaN"}, {"c": "0"}, {"l": "-1"}, {"v": "-2"},
                                    {"h": "1.0"}, {"s": "ETHUSDT"}])
def test_a_wrong_candle_in_place_of_a_good_one_costs_only_that_candle(five, fields):
    stream = Stream(five[0])
    stream.send(five[0])
    stream.send(five[1])
    assert stream.send(five[2], **fields) == ()
    # the next good candle is taken at once: the hole it leaves is the feed's to repair
    assert stream.send(five[3]) == (five[3],)
    assert stream.stats.rejected == 1


def test_a_future_dated_kline_is_refused_and_moves_no_clock(five):
    stream = Stream(five[0])
    stream.send(five[0])
    future = replace(five[1], ts_open_ms=five[1].ts_open_ms + DAY_MS)
    assert stream.send(future, event_time_ms=five[1].ts_close_ms) == ()
    assert stream.stats.rejected == 1
    assert stream.send(five[1]) == (five[1],)


def test_a_kline_from_the_future_with_its_own_future_time_waits_and_is_refuted(five):
    stream = Stream(five[0])
    stream.send(five[0])
    future = replace(five[1], ts_open_ms=five[1].ts_open_ms + DAY_MS)
    assert stream.send(future) == ()  # stamped a day ahead too: it waits for the next candle
    assert stream.checks.waiting and stream.clock.now_ms() == five[0].ts_close_ms
    assert stream.send(five[1]) == (five[1],)  # the stream went on from before: refuted
    assert stream.stats.rejected == 1 and not stream.checks.waiting
    assert stream.clock.now_ms() == five[1].ts_close_ms  # never a day ahead


def test_a_hole_in_an_unbroken_stream_is_confirmed_by_the_next_candle(five):
    stream = Stream(five[0])
    stream.send(five[0])
    assert stream.send(five[3]) == ()  # two candles missing: it waits
    assert stream.send(five[4]) == (five[3], five[4])  # the market went on: both taken
    assert stream.stats.rejected == 0


def test_a_stalled_replay_clock_confirms_a_waiting_candle(five):
    stream = Stream(five[0])
    stream.send(five[0])
    stream.send(five[3])
    assert stream.checks.idle() == (five[3],)
    assert stream.clock.now_ms() == five[3].ts_close_ms


def test_a_moving_clock_does_not_confirm_a_waiting_candle(five):
    stream = Stream(five[0])
    stream.send(five[0])
    stream.send(replace(five[1], ts_open_ms=five[1].ts_open_ms + DAY_MS))
    stream.clock.advance_to(stream.clock.now_ms() + 1_000)  # a live clock moves by itself
    assert stream.checks.idle() == ()


def test_after_a_reconnect_the_first_message_s_own_time_counts(five):
    stream = Stream(five[0])
    stream.send(five[0])
    stream.checks.connected()  # messages were lost with the old connection
    assert stream.send(five[3]) == (five[3],)


def test_bad_candles_from_rest_are_refused(five):
    stream = Stream(five[0])
    bad = replace(five[1], close=0.0)
    assert stream.checks.vet_fetched([five[0], bad, five[2]], "REST candle") == \
        [five[0], five[2]]
    assert stream.stats.rejected == 1


def _corrupt(text: str, how: str) -> str:
    message = json.loads(text)
    kline = message["data"]["k"]
    if how == "future":
        kline["t"] += DAY_MS
        kline["T"] += DAY_MS
    elif how == "future_e":
        kline["t"] += DAY_MS
        kline["T"] += DAY_MS
        message["data"]["E"] += DAY_MS
    elif how == "eth":
        message["data"]["s"] = kline["s"] = "ETHUSDT"
        kline.update(o="2500", h="2600", l="2400", c="2498")
    elif how == "off_grid":
        kline["t"] += 60_000
        kline["T"] += 60_000
    else:
        kline["c"] = how
    return json.dumps(message)


@pytest.mark.parametrize("mode", ["insert", "replace"])
async def test_wrong_klines_in_a_replayed_stream_leave_every_good_candle(calm_candles, caplog,
                                                                         mode):
    candles = calm_candles[:200]
    messages = kline_messages(SYMBOL, candles)
    hows = ["NaN", "0", "eth", "future", "future_e", "off_grid", "-5"]
    for n, how in enumerate(hows):
        i = 20 + 25 * n
        bad = (messages[i][0], _corrupt(messages[i][1], how))
        messages[i:i + (mode == "replace")] = [bad]
    server = LoopbackStreamServer(messages)
    with caplog.at_level(logging.WARNING, logger="cryptobot.exchange.stream"):
        events, feed, _ = await run_venue_feed(
            lambda url: BinanceUsdmStream(SYMBOL, INTERVAL_MS, base_url=url), candles, server)
    assert closed_candles(events) == candles
    assert feed.stats.rejected == len(hows)
    assert feed.stats.bad_messages >= len(hows)
    summary = [r.getMessage() for r in caplog.records if "refused by the market-data" in
               r.getMessage()]
    assert len(summary) == 1 and summary[0].startswith(f"stream: {len(hows)} message(s)")


async def test_the_warm_up_through_rest_leaves_out_bad_candles(calm_candles, caplog):
    from cryptobot.exchange.backfill import load_warm_up
    from tests.streams.fake_rest import FakeRest

    candles = calm_candles[:300]
    served = [*candles[:100], replace(candles[100], close=0.0), *candles[101:]]
    now_ms = candles[-1].ts_close_ms
    rest = FakeRest(served, [], SimClock(now_ms))
    with caplog.at_level(logging.WARNING, logger="cryptobot.exchange.backfill"):
        warm = await load_warm_up(rest, SYMBOL, INTERVAL_MS, now_ms, days=1,
                                  with_open_interest=False)
    assert candles[100] not in warm.candles and len(warm.candles) == 288 - 1
    assert "1 candle(s) from REST refused" in caplog.text and "close 0.0" in caplog.text
