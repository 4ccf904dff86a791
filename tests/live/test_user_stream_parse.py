"""The user data stream's parser on REAL recorded Binance USD-M payloads (NautilusTrader's test
data, tests/fixtures/binance; LGPL licence beside them): every field we use, exactly."""

from __future__ import annotations

import json

import pytest

from cryptobot.exchange.binance_user_stream import (
    AlgoUpdate,
    BinanceUserStream,
    ListenKeyExpired,
    OrderUpdate,
    StreamFill,
    parse_user_message,
)
from cryptobot.exchange.feed import MalformedMessageError
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "binance"


def recorded(name: str) -> str:
    folder = "ws_messages" if name.startswith("ws_") else "user_data_json"
    return (FIXTURES / folder / f"{name}.json").read_text()


def test_trade_execution_is_a_fill_with_last_price_qty_fee_maker_and_ids():
    assert parse_user_message(recorded("order_update_trade")) == StreamFill(
        market_id="BTCUSDT", client_id="TEST", exchange_order_id="8886774",
        trade_id="12345678", side="buy", price=7100.5, qty_base=0.001, fee=0.01,
        fee_asset="USDT", is_maker=True, reduce_only=False, order_status="PARTIALLY_FILLED",
        order_type="LIMIT", ts_ms=1568879465651, event_ms=1568879465651)


def test_partial_fill_reports_the_last_fill_not_the_order_quantity():
    fill = parse_user_message(recorded("order_update_trade_partial"))
    assert (fill.qty_base, fill.price, fill.order_status) == (0.001, 7100.5, "PARTIALLY_FILLED")


def test_reduce_only_fill_in_the_combined_stream_envelope():
    assert parse_user_message(recorded("ws_futures_order_update_trade_reduce_only_qty")) == \
        StreamFill(market_id="ETHUSDT", client_id="O-12345-test-reduce-only-trade",
                   exchange_order_id="8765432300", trade_id="9988776655", side="sell",
                   price=2500.0, qty_base=1.0, fee=0.5, fee_asset="USDT", is_maker=False,
                   reduce_only=True, order_status="FILLED", order_type="LIMIT",
                   ts_ms=1759347763200, event_ms=1759347763200)


def test_adl_close_is_a_taker_fill_of_someone_elses_client_id():
    fill = parse_user_message(recorded("ws_futures_order_update_adl_filled"))
    assert (fill.client_id, fill.side, fill.qty_base, fill.fee, fill.trade_id) == (
        "adl_autoclose-123", "buy", 1.0, 2.5, "2233445566")


@pytest.mark.parametrize(("name", "expected"), [
    ("order_update_new", OrderUpdate("BTCUSDT", "TEST", "8886774", "NEW", "NEW", 1568879465651)),
    ("order_update_calculated", OrderUpdate("BTCUSDT", "autoclose-1234567890", "8886999",
                                            "CALCULATED", "FILLED", 1568879465651)),
    ("ws_futures_order_update_liquidation_zero_qty", OrderUpdate(
        "BTCUSDT", "autoclose-7654321098765432", "7654321098", "CALCULATED", "FILLED",
        1759347763250)),
    ("ws_futures_order_update_new_reduce_only_qty", OrderUpdate(
        "ETHUSDT", "O-12345-test-reduce-only", "8765432200", "NEW", "NEW", 1759347763200)),
])
def test_other_execution_types_are_order_updates(name, expected):
    assert parse_user_message(recorded(name)) == expected


def test_algo_stop_lifecycle_triggering_triggered_finished():
    triggering, triggered, finished = (parse_user_message(recorded(f"ws_futures_algo_update_{x}"))
                                       for x in ("triggering", "triggered", "finished"))
    assert triggering == AlgoUpdate(
        market_id="DOGEUSDT", client_algo_id="O-20251211-053131-TEST-000-1",
        algo_id="1000000033225453", status="TRIGGERING", order_type="STOP_MARKET", side="buy",
        qty_base=38.0, trigger_price=0.13855, actual_order_id=None, filled_qty=0.0,
        avg_price=0.0, reason="", event_ms=1765431097020)
    assert (triggered.status, triggered.actual_order_id, triggered.filled_qty) == (
        "TRIGGERED", "88937381063", 0.0)
    assert (finished.status, finished.actual_order_id, finished.filled_qty,
            finished.avg_price, finished.event_ms) == (
        "FINISHED", "88937381063", 38.0, 0.13856, 1765431097037)


def test_algo_finished_without_a_fill_and_new_and_canceled():
    unfilled = parse_user_message(recorded("ws_futures_algo_update_finished_canceled"))
    assert (unfilled.status, unfilled.actual_order_id, unfilled.filled_qty) == (
        "FINISHED", "88937381064", 0.0)
    new = parse_user_message(recorded("algo_update_new"))
    assert new == AlgoUpdate(
        market_id="BNBUSDT", client_algo_id="Q5xaq5EGKgXXa0fD7fs0Ip", algo_id="2148719",
        status="NEW", order_type="TAKE_PROFIT", side="sell", qty_base=0.01, trigger_price=750.0,
        actual_order_id=None, filled_qty=0.0, avg_price=0.0, reason="Reduce Only reject",
        event_ms=1750515742303)
    assert parse_user_message(recorded("algo_update_canceled")).status == "CANCELED"


def test_listen_key_expired_and_unused_events():
    assert parse_user_message('{"e": "listenKeyExpired", "E": "1736996475556", '
                              '"listenKey": "k"}') == ListenKeyExpired(1736996475556)
    for name in ("account_update", "account_update_bnfcr", "trade_lite"):
        assert parse_user_message(recorded(name)) is None


@pytest.mark.parametrize("path", sorted((FIXTURES / "user_data_json").glob("*.json"))
                         + sorted((FIXTURES / "ws_messages").glob("*.json")), ids=lambda p: p.name)
def test_every_recorded_message_parses_without_error(path):
    parse_user_message(path.read_text())


@pytest.mark.parametrize("raw", [
    "not json", "[1, 2]", '{"e": "ORDER_TRADE_UPDATE", "E": 1}',
    '{"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"x": "TRADE", "s": "BTCUSDT"}}',
    '{"e": "ALGO_UPDATE", "E": 1, "o": {"caid": "a", "aid": 1, "X": "NEW", "o": "STOP_MARKET",'
    ' "s": "BTCUSDT", "S": "UP", "q": "1", "tp": "1"}}',
])
def test_malformed_messages_raise_our_error(raw):
    with pytest.raises(MalformedMessageError):
        parse_user_message(raw)


def test_the_stream_counts_malformed_messages_and_handler_errors_and_goes_on():
    seen = []

    def handler(event):
        seen.append(event)
        if len(seen) == 1:
            raise RuntimeError("engine bug")

    stream = BinanceUserStream(rest=None, clock=None, on_event=handler)
    good = json.loads(recorded("order_update_trade"))
    for raw in ("garbage", json.dumps(good), "{}", recorded("account_update"), json.dumps(good)):
        assert stream._handle(raw) is False
    assert (stream.stats.messages, stream.stats.malformed, stream.stats.ignored,
            stream.stats.fills, stream.stats.handler_errors) == (5, 1, 2, 2, 1)
    assert len(seen) == 2
