"""Several symbols on one connection: Binance's combined stream, Bybit's topics, the feed.

Payloads: the real recorded Binance kline (tests/fixtures/binance/market_data_json, from
NautilusTrader's test data) and the same payload with its symbol field changed to ETHUSDT
(`kline_stream_closed_symbol_ETHUSDT_ADAPTED.json`: nothing else differs). Candles: real
Binance BTCUSDT and ETHUSDT 15m candles (data/btc_eth_2024-08_15m), served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from contextlib import aclosing
from dataclasses import replace

import pytest

from cryptobot.clock import SimClock
from cryptobot.data import load_markets
from cryptobot.exchange import binance, bybit
from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.bybit import BybitLinearStream
from cryptobot.exchange.loopback_ws import LoopbackStreamServer
from cryptobot.exchange.merged_feed import MergedFeed, build_feed
from cryptobot.exchange.oi_budget import plan_open_interest_polls
from cryptobot.exchange.replay import (
    CandleColumns,
    binance_kline_message,
    merged_messages,
    stream_time_driver,
)
from cryptobot.exchange.streaming_feed import StreamingFeed
from cryptobot.model import Candle
from tests.conftest import DATA_DIR, FIXTURES_DIR
from tests.streams.conftest import fast_settings
from tests.streams.fake_rest import FakeRest

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
PAYLOADS = FIXTURES_DIR / "binance" / "market_data_json"
INTERVAL_MS = 900_000


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def envelope(stream: str, data: dict) -> str:
    return json.dumps({"stream": stream, "data": data})


@pytest.fixture(scope="module")
def candles() -> dict[str, list[Candle]]:
    """The first 300 real 15m candles of each symbol (75 hours), tagged."""
    markets = load_markets(DATA_DIR / "btc_eth_2024-08_15m", (BTC, ETH))
    return {symbol: [replace(c, symbol=symbol) for c in CandleColumns.from_frame(
        market.candles[:300], market.base_interval_ms)] for symbol, market in markets.items()}


def test_one_url_carries_every_symbol_s_streams():
    venue = BinanceUsdmStream((BTC, ETH), 60_000)
    assert venue.url() == ("wss://fstream.binance.com/market/stream?streams=btcusdt@kline_1m/"
                           "btcusdt@forceOrder/ethusdt@kline_1m/ethusdt@forceOrder")


def test_combined_messages_of_two_symbols_are_routed_by_stream_and_tagged():
    venue = BinanceUsdmStream((BTC, ETH), 60_000)
    btc = venue.parse(envelope("btcusdt@kline_1m", payload("kline_stream_closed.json")))
    eth = venue.parse(envelope("ethusdt@kline_1m",
                               payload("kline_stream_closed_symbol_ETHUSDT_ADAPTED.json")))
    assert (btc.symbol, btc.market, [c.symbol for c in btc.events]) == (BTC, "BTCUSDT", [BTC])
    assert (eth.symbol, eth.market, [c.symbol for c in eth.events]) == (ETH, "ETHUSDT", [ETH])
    assert replace(eth.events[0], symbol=BTC) == btc.events[0]  # only the symbol differs
    liquidation = payload("liquidation_stream.json")
    liquidation["o"]["s"] = "ETHUSDT"
    liq = venue.parse(envelope("ethusdt@forceOrder", liquidation))
    assert liq.symbol == ETH and liq.events[0].symbol == ETH and liq.events[0].side == "sell"


def test_a_symbol_not_subscribed_is_unexpected_and_a_wrong_one_is_left_to_the_checks():
    venue = BinanceUsdmStream((BTC, ETH), 60_000)
    other = payload("kline_stream_closed.json")
    other["s"] = other["k"]["s"] = "SOLUSDT"
    unasked = venue.parse(envelope("solusdt@kline_1m", other))
    assert unasked.unexpected and unasked.events == () and unasked.symbol is None
    # ETHUSDT data on the BTC stream: read, but marked with the market it names
    wrong = venue.parse(envelope("btcusdt@kline_1m",
                                 payload("kline_stream_closed_symbol_ETHUSDT_ADAPTED.json")))
    assert wrong.symbol == BTC and wrong.market == "ETHUSDT"


def test_streams_beyond_binance_s_per_connection_limit_open_another_connection():
    symbols = [f"C{i}/USDT:USDT" for i in range(513)]
    groups = binance.stream_groups(symbols)
    assert [len(g) for g in groups] == [512, 1] and sum(groups, ()) == tuple(symbols)
    assert len(BinanceUsdmStream(groups[0], 60_000).streams()) == 1024
    with pytest.raises(ValueError, match="1024"):
        BinanceUsdmStream(tuple(symbols), 60_000)
    assert binance.stream_groups([BTC, ETH]) == [(BTC, ETH)]


def test_bybit_subscribes_every_symbol_on_one_connection_ten_args_a_message():
    venue = BybitLinearStream((BTC, ETH, "SOL/USDT:USDT", "XRP/USDT:USDT"), 900_000)
    messages = [json.loads(m) for m in venue.subscribe_messages()]
    assert [len(m["args"]) for m in messages] == [10, 2]
    assert [a for m in messages for a in m["args"]] == venue.topics()
    assert venue.topics()[3:6] == ["kline.15.ETHUSDT", "tickers.ETHUSDT", "allLiquidation.ETHUSDT"]
    many = [f"C{i}/USDT:USDT" for i in range(800)]
    groups = bybit.stream_groups(many, 900_000)
    assert len(groups) > 1 and sum(groups, ()) == tuple(many)
    for group in groups:  # each connection's args stay under 21,000 characters
        topics = BybitLinearStream(group, 900_000).topics()
        assert len(json.dumps(topics, separators=(",", ":"))) <= 21_000
    assert bybit.stream_groups([BTC, ETH], 900_000) == [(BTC, ETH)]


def test_open_interest_polls_fit_binance_s_request_weight_budget():
    twenty = plan_open_interest_polls(20, 30.0)
    assert (twenty.interval_s, twenty.weight_per_minute, twenty.stretched) == (30.0, 40.0, False)
    assert "20 symbol(s) x weight 1 x 2 polls/min = 40 request weight/min" in twenty.describe()
    assert "2400/min" in twenty.describe()
    crowded = plan_open_interest_polls(700, 30.0)  # 1400/min asked, 1200 allowed
    assert crowded.stretched and crowded.interval_s == pytest.approx(35.0)
    assert crowded.weight_per_minute == pytest.approx(1200.0)
    assert "polled every 35s instead" in crowded.describe()


async def _both_until_last(feed, last: dict[str, int], timeout_s: float = 60.0) -> list:
    """Events until every symbol's candle opening at `last[symbol]` came."""
    events, left = [], dict(last)
    async with asyncio.timeout(timeout_s), aclosing(feed.events()) as stream:
        async for event in stream:
            events.append(event)
            if isinstance(event, Candle) and left.get(event.symbol) == event.ts_open_ms:
                del left[event.symbol]
                if not left:
                    break
    await feed.close()
    return events


def _messages(candles: dict[str, list[Candle]]) -> list[tuple[int, str]]:
    """The symbols' closed klines as one Binance stream (as a replay serves them)."""
    return merged_messages([[(c.ts_close_ms, binance_kline_message(symbol, c)) for c in cs]
                            for symbol, cs in candles.items()])


def _in_stream_order(candles: dict[str, list[Candle]]) -> list[Candle]:
    order = {BTC: 0, ETH: 1}
    return sorted((c for cs in candles.values() for c in cs),
                  key=lambda c: (c.ts_close_ms, order[c.symbol]))


@pytest.mark.parametrize(("drop_every", "lose_on_drop"), [(37, 0), (41, 7), (1, 3)])
async def test_two_symbols_on_one_connection_arrive_whole_and_in_the_backtest_s_order(
        candles, drop_every, lose_on_drop, caplog):
    """Dropped connections and lost messages are repaired per symbol, merged in time order
    (ties in the symbols' order): what comes out is exactly the backtest's merge."""
    first = candles[BTC][0]
    messages = _messages(candles)
    server = LoopbackStreamServer(messages, drop_every=drop_every, lose_on_drop=lose_on_drop)
    clock = SimClock(first.ts_open_ms)
    rest = FakeRest([], [], clock, by_symbol=candles)
    venue = BinanceUsdmStream((BTC, ETH), INTERVAL_MS, base_url=await server.start())
    with caplog.at_level(logging.INFO, logger="cryptobot.exchange.stream"):
        feed = StreamingFeed(venue, rest, clock, fast_settings(), stream_time_driver(clock),
                             last_closed_open_ms=first.ts_open_ms - INTERVAL_MS,
                             rng=random.Random(5))
        try:
            events = await _both_until_last(feed, {s: cs[-1].ts_open_ms
                                                   for s, cs in candles.items()})
        finally:
            await server.stop()
    got = [e for e in events if isinstance(e, Candle)]
    assert got == _in_stream_order(candles)
    assert server.dropped_connections >= 600 // (drop_every + lose_on_drop) - 1
    assert feed.stats.connects == server.connections and feed.stats.bad_messages == 0
    if lose_on_drop:
        assert feed.stats.repaired_candles > 0
        assert "fetch_ohlcv" in rest.calls
    assert any("2 symbol(s) x weight 1" in r.getMessage() for r in caplog.records)


async def test_an_unsubscribed_symbol_is_counted_unexpected_a_wrong_message_refused(candles):
    btc, eth = candles[BTC][:40], candles[ETH][:40]
    messages = _messages({BTC: btc, ETH: eth})
    sol = json.loads(binance_kline_message("SOL/USDT:USDT", replace(btc[10], open=150.0,
                                                                    close=150.0)))
    wrong = json.loads(binance_kline_message(ETH, eth[21]))
    wrong["stream"] = "btcusdt@kline_15m"  # ETH's candle (ETHUSDT inside) on BTC's stream
    # SOL's before ETH's candle of the same close; the wrong one right after ETH's 22nd
    messages.insert(2 * 10 + 1, (btc[10].ts_close_ms, json.dumps(sol)))
    messages.insert(2 * 21 + 3, (eth[21].ts_close_ms, json.dumps(wrong)))
    assert eth[21].ts_open_ms == btc[21].ts_open_ms and '"ETHUSDT"' in messages[2 * 21 + 2][1]
    server = LoopbackStreamServer(messages)
    clock = SimClock(btc[0].ts_open_ms)
    rest = FakeRest([], [], clock, by_symbol={BTC: btc, ETH: eth})
    venue = BinanceUsdmStream((BTC, ETH), INTERVAL_MS, base_url=await server.start())
    feed = StreamingFeed(venue, rest, clock, fast_settings(), stream_time_driver(clock),
                         last_closed_open_ms=btc[0].ts_open_ms - INTERVAL_MS)
    try:
        events = await _both_until_last(feed, {BTC: btc[-1].ts_open_ms,
                                               ETH: eth[-1].ts_open_ms})
    finally:
        await server.stop()
    assert feed.stats.unexpected == 1 and feed.stats.rejected == 1
    # every good candle of both symbols kept, in order; none of SOL's
    assert [e for e in events if isinstance(e, Candle)] == _in_stream_order({BTC: btc, ETH: eth})


async def test_symbols_over_several_connections_merge_into_one_feed(candles):
    btc, eth = candles[BTC][:30], candles[ETH][:30]
    servers = [LoopbackStreamServer([(c.ts_close_ms, binance_kline_message(s, c)) for c in cs])
               for s, cs in ((BTC, btc), (ETH, eth))]
    clock = SimClock(btc[0].ts_open_ms)
    urls = [await server.start() for server in servers]
    venues = [BinanceUsdmStream(s, INTERVAL_MS, base_url=url) for s, url in zip((BTC, ETH), urls,
                                                                                strict=True)]
    rest = FakeRest([], [], clock, by_symbol={BTC: btc, ETH: eth})
    feed = build_feed(venues, rest, clock, fast_settings(), stream_time_driver(clock),
                      last_closed_open_ms=btc[0].ts_open_ms - INTERVAL_MS)
    assert isinstance(feed, MergedFeed) and len(feed.feeds) == 2
    assert feed.feeds[0].poll_budget is feed.feeds[1].poll_budget  # one budget for all
    try:
        events = await _both_until_last(feed, {BTC: btc[-1].ts_open_ms,
                                               ETH: eth[-1].ts_open_ms})
    finally:
        for server in servers:
            await server.stop()
    for symbol, expected in ((BTC, btc), (ETH, eth)):
        assert [e for e in events if isinstance(e, Candle) and e.symbol == symbol] == expected
    assert feed.stats.candles == 60 and feed.stats.connects == 2


def test_bybit_routes_each_topic_to_its_symbol_and_keeps_one_ticker_each():
    from cryptobot.exchange.bybit_messages import kline_message, ticker_message
    from cryptobot.model import OpenInterest

    venue = BybitLinearStream((BTC, ETH), 900_000, oi_min_interval_ms=0)
    candle = Candle(1_722_830_400_000, 900_000, 2500.0, 2510.0, 2490.0, 2505.0, 10.0, ETH)
    parsed = venue.parse(kline_message(ETH, candle))
    assert parsed.symbol == ETH and parsed.events == (candle,)
    btc_oi = OpenInterest(1_722_830_400_000, 80_000.0, None, BTC)
    assert venue.parse(ticker_message(BTC, btc_oi, kind="snapshot")).events == (btc_oi,)
    # ETH's first delta has no snapshot behind it: BTC's state must not stand in for it
    eth_delta = json.loads(ticker_message(ETH, OpenInterest(1_722_830_430_000, 1.0, None)))
    del eth_delta["data"]["openInterest"]
    assert venue.parse(json.dumps(eth_delta)).events == ()
    other = kline_message("SOL/USDT:USDT", replace(candle, symbol=""))
    assert venue.parse(other).unexpected
