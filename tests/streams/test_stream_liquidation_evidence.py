"""Streamed liquidations reach the engine and its evidence, as paper and live receive them.

Real Binance BTCUSDT 5m candles of 2024-12-05 17:00 .. 21:00 (data/btc_5m_2023-11_2024-12) and
the real forceOrder records of those hours (data/liquidations) are served as Binance stream
messages on 127.0.0.1, through the real StreamingFeed and TradingSession into the engine. The
entry decision at 20:30 is SYNTHETIC (a scripted strategy). A stream vouches for liquidations
from its first event on: the spike window is measured, the day before is unknown (no median
yet), never "no liquidations".
"""

from __future__ import annotations

import random

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock, parse_utc
from cryptobot.data import load_market_data
from cryptobot.data.liquidation_files import load_liquidations
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.loop import Engine
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.engine.risk import NeverEngaged
from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.loopback_ws import LoopbackStreamServer
from cryptobot.exchange.replay import (
    CandleColumns,
    binance_force_order_message,
    kline_messages,
    stream_time_driver,
)
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.runners.stream_session import TradingSession, advance_sim_clock
from cryptobot.strategy import Params
from tests.conftest import DATA_DIR
from tests.engine.conftest import EnterAtTheCascade, settings_with
from tests.streams.conftest import fast_settings
from tests.streams.fake_rest import FakeRest

SYMBOL = "BTC/USDT:USDT"
M5, M15 = 300_000, 900_000


START, END = parse_utc("2024-12-05T17:00"), parse_utc("2024-12-05T21:00")
SPIKE_MS = parse_utc("2024-12-05T20:30")


def _stream_data():
    market = load_market_data(DATA_DIR / "btc_5m_2023-11_2024-12", SYMBOL, START, END)
    candles = list(CandleColumns.from_frame(market.candles, M5))
    records = load_liquidations(DATA_DIR / "liquidations", SYMBOL, 3_600_000)
    streamed = [e for e in records.events if START <= e.ts_ms < END]
    messages = sorted([*kline_messages(SYMBOL, CandleColumns.from_frame(market.candles, M5)),
                       *((e.ts_ms, binance_force_order_message(SYMBOL, e)) for e in streamed)],
                      key=lambda pair: pair[0])
    return candles, streamed, messages


async def _run_session(candles, server: LoopbackStreamServer) -> Engine:
    settings = settings_with(market={"base_timeframe": "5m"},
                             evidence={"liquidation_median_days": 1})
    clock = SimClock(START)
    engine = Engine(settings, EnterAtTheCascade(Params(), SYMBOL),
                    PaperBroker(settings.costs, clock), PassThroughGate(), MemoryRecorder(),
                    clock, kill_switch=NeverEngaged())
    venue = BinanceUsdmStream((SYMBOL,), M5, base_url=await server.start())
    feed = StreamingFeed(venue, FakeRest(candles, [], clock), clock, fast_settings(),
                         on_exchange_time=stream_time_driver(clock),
                         last_closed_open_ms=START - M5, rng=random.Random(7))
    try:
        await TradingSession(engine, feed, advance_sim_clock(clock),
                             streams_liquidations=True).run(END)
    finally:
        await server.stop()
    return engine


async def test_streamed_force_orders_are_the_engines_liquidation_evidence():
    candles, streamed, messages = _stream_data()
    engine = await _run_session(candles, LoopbackStreamServer(messages))

    book = engine.market.liquidations
    first_event_ms = min(candles[0].ts_close_ms, streamed[0].ts_ms)
    ((first_ms, last_ms),) = book.spans()  # one connection; closed when the session ended
    assert first_ms == first_event_ms and SPIKE_MS + M15 < last_ms <= END + 1
    spike_ms = SPIKE_MS
    expected = sum(e.price * e.qty_base for e in streamed if spike_ms <= e.ts_ms < spike_ms + M15)
    assert book.notional_between(spike_ms, spike_ms + M15) == expected > 3_000_000
    (signal,) = engine.signals
    item = {i.name: i for i in signal.evidence}["liquidations"]
    assert item.holds is None and item.value is None
    assert item.detail.startswith(f"${expected / 1e6:.2f}M in the spike window 20:30-20:45, "
                                  "no median yet")


async def test_a_connection_dropped_over_the_spike_leaves_its_liquidations_unknown():
    """The stream drops at 20:25 and the messages until 20:50 are lost: the candles come back
    through REST, the liquidations cannot, so the spike window is unknown, not quiet."""
    candles, _, messages = _stream_data()
    drop_at = next(i for i, (ts_ms, _) in enumerate(messages) if ts_ms >= SPIKE_MS - M5)
    lost = sum(1 for ts_ms, _ in messages if SPIKE_MS - M5 <= ts_ms < SPIKE_MS + 4 * M5)
    server = LoopbackStreamServer(messages, drop_every=drop_at, lose_on_drop=lost)
    engine = await _run_session(candles, server)

    assert server.dropped_connections == 1
    book = engine.market.liquidations
    (_, first_end), (second_start, _) = book.spans()
    assert first_end <= SPIKE_MS and second_start >= SPIKE_MS + M15
    assert book.notional_between(SPIKE_MS, SPIKE_MS + M15) is None
    (signal,) = engine.signals
    item = {i.name: i for i in signal.evidence}["liquidations"]
    assert item.holds is None and item.value is None
    assert item.detail.startswith("no liquidation data covers the spike window")
