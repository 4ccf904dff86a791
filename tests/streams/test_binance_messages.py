"""Binance stream payloads (real recorded ones, from NautilusTrader's test data) parse exactly."""

from __future__ import annotations

import json

import pytest

from cryptobot.exchange.binance import BinanceUsdmStream, parse_force_order, parse_kline
from cryptobot.exchange.feed import MalformedMessageError
from cryptobot.exchange.loopback_ws import GARBAGE_MESSAGES
from cryptobot.exchange.replay import binance_force_order_message, binance_kline_message
from cryptobot.model import Candle, Liquidation
from tests.conftest import FIXTURES_DIR

PAYLOADS = FIXTURES_DIR / "binance" / "market_data_json"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def envelope(stream: str, data: dict) -> str:
    return json.dumps({"stream": stream, "data": data})


def test_closed_kline_becomes_a_candle_with_every_field():
    candle = parse_kline(payload("kline_stream_closed.json"), interval_ms=60_000)
    assert candle == Candle(ts_open_ms=1638747660000, interval_ms=60_000, open=0.0010,
                            high=0.0025, low=0.0010, close=0.0020, volume=1000.0)


def test_open_kline_is_not_a_candle():
    assert parse_kline(payload("kline_stream_open.json"), interval_ms=60_000) is None


def test_kline_of_another_interval_is_malformed():
    with pytest.raises(MalformedMessageError, match="expected 300000"):
        parse_kline(payload("kline_stream_closed.json"), interval_ms=300_000)


def test_force_order_becomes_a_liquidation_at_the_average_fill_price():
    liquidation = parse_force_order(payload("liquidation_stream.json"))
    assert liquidation == Liquidation(ts_ms=1568014460893, side="sell", price=9910.12345678,
                                      qty_base=0.014)


def test_combined_stream_envelope_carries_the_exchange_event_time():
    stream = BinanceUsdmStream("BTC/USDT:USDT", 60_000)
    parsed = stream.parse(envelope("btcusdt@kline_1m", payload("kline_stream_closed.json")))
    assert parsed.event_time_ms == 1638747660000
    assert [type(e) for e in parsed.events] == [Candle]
    opened = stream.parse(envelope("btcusdt@kline_1m", payload("kline_stream_open.json")))
    assert opened.events == () and opened.open_update
    liq = stream.parse(envelope("btcusdt@forceOrder", payload("liquidation_stream.json")))
    assert liq.event_time_ms == 1568014460893 and liq.events[0].side == "sell"


def test_a_stream_we_did_not_ask_for_is_unexpected_not_malformed():
    stream = BinanceUsdmStream("BTC/USDT:USDT", 60_000)
    parsed = stream.parse(envelope("btcusdt@aggTrade", payload("agg_trade_stream.json")))
    assert parsed.unexpected and parsed.events == ()


@pytest.mark.parametrize("raw", GARBAGE_MESSAGES)
def test_garbage_raises_only_malformed_or_is_unexpected(raw):
    stream = BinanceUsdmStream("BTC/USDT:USDT", 60_000)
    try:
        parsed = stream.parse(raw)
    except MalformedMessageError:
        return
    assert parsed.unexpected and parsed.events == ()


def test_url_uses_the_routed_market_endpoint_with_both_streams():
    stream = BinanceUsdmStream("BTC/USDT:USDT", 300_000)
    assert stream.url() == ("wss://fstream.binance.com/market/stream"
                            "?streams=btcusdt@kline_5m/btcusdt@forceOrder")


def test_replay_messages_round_trip_through_the_parser(calm_candles):
    stream = BinanceUsdmStream("BTC/USDT:USDT", 300_000)
    for candle in calm_candles[:200]:
        parsed = stream.parse(binance_kline_message("BTC/USDT:USDT", candle))
        assert parsed.events == (candle,)
        assert parsed.event_time_ms == candle.ts_close_ms
    liquidation = Liquidation(1722838800123, "sell", 49012.5, 1.25, "BTC/USDT:USDT")
    assert stream.parse(binance_force_order_message("BTC/USDT:USDT", liquidation)).events == (
        liquidation,)
