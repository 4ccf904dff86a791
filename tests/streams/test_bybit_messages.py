"""Bybit v5 linear payloads, written from Bybit's documented examples, parse to exact values.

tests/fixtures/bybit/README.md cites each doc page; files marked SYNTHETIC or "from_ccxt_source"
are derived where the docs show no example.
"""

from __future__ import annotations

import json

import pytest

from cryptobot.errors import ConfigError, ExchangeError
from cryptobot.exchange.bybit import BybitLinearStream, parse_kline, parse_liquidation
from cryptobot.exchange.bybit_messages import kline_message, liquidation_message, ticker_message
from cryptobot.exchange.feed import MalformedMessageError
from cryptobot.exchange.loopback_ws import GARBAGE_MESSAGES
from cryptobot.model import Candle, Liquidation, OpenInterest
from tests.conftest import FIXTURES_DIR

PAYLOADS = FIXTURES_DIR / "bybit"


def text(name: str) -> str:
    return (PAYLOADS / name).read_text()


def payload(name: str) -> dict:
    return json.loads(text(name))


def stream(symbol: str = "BTC/USDT:USDT", interval_ms: int = 300_000, **kw) -> BybitLinearStream:
    return BybitLinearStream(symbol, interval_ms, **kw)


def test_documented_open_kline_is_only_an_update():
    parsed = stream().parse(text("kline_5_BTCUSDT_open_from_bybit_docs.json"))
    assert parsed.events == () and parsed.open_update
    assert parsed.event_time_ms == 1672324988882


def test_confirmed_kline_becomes_a_candle_at_its_start():
    parsed = stream().parse(text("kline_5_BTCUSDT_confirmed_SYNTHETIC_from_bybit_docs.json"))
    assert parsed.events == (Candle(ts_open_ms=1672324800000, interval_ms=300_000, open=16649.5,
                                    high=16677.0, low=16608.0, close=16677.0, volume=2.081,
                                    symbol="BTC/USDT:USDT"),)
    assert not parsed.open_update and parsed.event_time_ms == 1672325100000


def test_kline_of_another_interval_is_malformed():
    item = payload("kline_5_BTCUSDT_confirmed_SYNTHETIC_from_bybit_docs.json")["data"][0]
    with pytest.raises(MalformedMessageError, match="expected '15'"):
        parse_kline(item, 900_000)


def test_kline_topic_of_another_interval_is_unexpected():
    parsed = stream(interval_ms=60_000).parse(text("kline_5_BTCUSDT_open_from_bybit_docs.json"))
    assert parsed.unexpected and parsed.events == ()


def test_documented_liquidation_of_a_short_is_a_buy():
    # "S": "Sell" is the liquidated position's side: a short, closed by a buy order.
    parsed = stream("ROSE/USDT:USDT").parse(text("all_liquidation_ROSEUSDT_from_bybit_docs.json"))
    assert parsed.events == (Liquidation(ts_ms=1739502302929, side="buy", price=0.04499,
                                         qty_base=20000.0, symbol="ROSE/USDT:USDT"),)
    assert parsed.event_time_ms == 1739502303204


def test_a_liquidated_long_is_a_sell_like_binance_force_order():
    item = dict(payload("all_liquidation_ROSEUSDT_from_bybit_docs.json")["data"][0], S="Buy")
    assert parse_liquidation(item).side == "sell"
    with pytest.raises(MalformedMessageError, match="position side"):
        parse_liquidation(dict(item, S="BUY"))


def test_documented_ticker_snapshot_gives_open_interest_at_the_message_time():
    parsed = stream().parse(text("tickers_linear_BTCUSDT_snapshot_from_bybit_docs.json"))
    assert parsed.events == (OpenInterest(ts_ms=1760325052630, oi_contracts=492373.72,
                                          oi_value_usdt=32824881841.75,
                                          symbol="BTC/USDT:USDT"),)


def test_delta_keeps_the_last_full_state():
    venue = stream(oi_min_interval_ms=0)
    venue.parse(text("tickers_linear_BTCUSDT_snapshot_from_bybit_docs.json"))
    parsed = venue.parse(text("tickers_linear_BTCUSDT_delta_openInterest_SYNTHETIC.json"))
    # openInterestValue is absent from the delta: unchanged, so the snapshot's value stays.
    assert parsed.events == (OpenInterest(1760325082630, 492401.15, 32824881841.75,
                                          "BTC/USDT:USDT"),)


def test_delta_without_open_interest_emits_nothing():
    venue = stream("AAVE/USDT:USDT", oi_min_interval_ms=0)
    assert venue.parse(text("tickers_linear_AAVEUSDT_delta_from_ccxt_source.json")).events == ()
    snapshot = payload("tickers_linear_BTCUSDT_snapshot_from_bybit_docs.json")
    snapshot["topic"], snapshot["data"]["symbol"] = "tickers.AAVEUSDT", "AAVEUSDT"
    assert len(venue.parse(json.dumps(snapshot)).events) == 1
    # a later delta of bid/ask only: open interest did not move, so no new sample
    assert venue.parse(text("tickers_linear_AAVEUSDT_delta_from_ccxt_source.json")).events == ()


def test_open_interest_leaves_at_most_once_per_interval():
    venue = stream(oi_min_interval_ms=30_000)
    t0 = 1_722_830_400_000
    samples = [OpenInterest(t0 + i * 5_000, 50_000.0 + i, None, "BTC/USDT:USDT")
               for i in range(13)]  # every 5 s
    out = [e for s in samples for e in venue.parse(ticker_message("BTC/USDT:USDT", s)).events]
    assert [s.ts_ms - t0 for s in out] == [0, 30_000, 60_000]
    assert out[1] == samples[6]  # the value current when the interval passed


def test_subscription_names_the_three_topics():
    (message,) = stream(interval_ms=900_000).subscribe_messages()
    assert json.loads(message) == {"op": "subscribe", "args": [
        "kline.15.BTCUSDT", "tickers.BTCUSDT", "allLiquidation.BTCUSDT"]}
    assert stream().url() == "wss://stream.bybit.com/v5/public/linear"
    assert stream().heartbeat() == (20.0, '{"op":"ping"}')


@pytest.mark.parametrize("name", ["pong_linear_from_bybit_docs.json",
                                  "subscribe_reply_linear_from_bybit_docs.json"])
def test_documented_control_replies_carry_no_time_and_no_events(name):
    parsed = stream().parse(text(name))
    assert parsed.event_time_ms is None and parsed.events == () and not parsed.unexpected


def test_a_refused_subscription_stops_the_feed_with_the_reason():
    refused = dict(payload("subscribe_reply_linear_from_bybit_docs.json"), success=False,
                   ret_msg="error:handler not found")
    with pytest.raises(ExchangeError, match="handler not found") as info:
        stream().parse(json.dumps(refused))
    assert not isinstance(info.value, MalformedMessageError)


def test_an_interval_bybit_does_not_stream_is_a_config_error():
    with pytest.raises(ConfigError, match="base_timeframe"):
        stream(interval_ms=600_000)


BYBIT_GARBAGE = (
    '{"topic": "kline.5.BTCUSDT", "ts": 1, "data": [{"interval": "5", "confirm": true}]}',
    '{"topic": "kline.5.BTCUSDT", "ts": "x", "data": []}',
    '{"topic": "tickers.BTCUSDT", "ts": 1, "type": "insert", "data": {}}',
    '{"topic": "tickers.BTCUSDT", "ts": 1, "type": "delta", "data": {"openInterest": "n/a"}}',
    '{"topic": "allLiquidation.BTCUSDT", "ts": 1, "data": [{"S": "Buy"}]}',
    '{"topic": "orderbook.1.BTCUSDT", "ts": 1, "type": "snapshot", "data": {}}',
    '{"op": "ping", "success": false, "ret_msg": "?"}',
    "7",
)


@pytest.mark.parametrize("raw", GARBAGE_MESSAGES + BYBIT_GARBAGE)
def test_garbage_raises_only_malformed_or_is_unexpected(raw):
    try:
        parsed = stream().parse(raw)
    except MalformedMessageError:
        return
    assert parsed.unexpected and parsed.events == ()


def test_written_messages_round_trip_through_the_parser(calm_candles):
    venue = stream(oi_min_interval_ms=0)
    for candle in calm_candles[:200]:
        parsed = venue.parse(kline_message("BTC/USDT:USDT", candle))
        assert parsed.events == (candle,) and parsed.event_time_ms == candle.ts_close_ms
    for liquidation in (Liquidation(1722838800123, "sell", 49012.5, 1.25, "BTC/USDT:USDT"),
                        Liquidation(1722838800456, "buy", 49100.0, 0.5, "BTC/USDT:USDT")):
        message = liquidation_message("BTC/USDT:USDT", liquidation)
        assert venue.parse(message).events == (liquidation,)


def test_an_unreadable_delta_leaves_the_ticker_state_intact():
    venue = stream(oi_min_interval_ms=0)
    venue.parse(text("tickers_linear_BTCUSDT_snapshot_from_bybit_docs.json"))
    with pytest.raises(MalformedMessageError):
        venue.parse('{"topic": "tickers.BTCUSDT", "ts": 1760325060000, "type": "delta", '
                    '"data": {"openInterest": "n/a"}}')
    parsed = venue.parse(text("tickers_linear_BTCUSDT_delta_openInterest_SYNTHETIC.json"))
    assert parsed.events == (OpenInterest(1760325082630, 492401.15, 32824881841.75,
                                          "BTC/USDT:USDT"),)
