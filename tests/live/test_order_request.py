"""A single order's request, written by the gateway (brokers/live/order_request.py), is what
ccxt's own `create_order` puts on the wire for it, byte for byte (parameters, their order, the
HMAC signature, the headers), for a market order, an IOC-capped limit, a GTC reduce-only limit
and a stop (the algo-order endpoint); the venue's answer is read as ccxt's parse reads it; an
unreadable answer is looked up, never sent twice; and the orders go through the fake venue on
127.0.0.1 as they did through create_order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.sent_order import sent_from_binance, sent_order
from cryptobot.brokers.live.setup import make_ccxt_client
from cryptobot.errors import OrderRejectedError
from cryptobot.exchange.lean_http import LeanResponse
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from tests.live.ccxt_orders import ccxt_order_args
from tests.live.conftest import live_settings

SYMBOL = "BTC/USDT:USDT"
NOW_MS = 1_722_816_000_000
ORDER_ANSWER = {"orderId": 8000000123, "symbol": "BTCUSDT", "status": "NEW",
                "clientOrderId": "sig1-entry", "price": "0.00", "avgPrice": "0.00",
                "origQty": "0.010", "executedQty": "0.000", "cumQuote": "0.00000",
                "timeInForce": "GTC", "type": "MARKET", "reduceOnly": False, "side": "BUY",
                "positionSide": "BOTH", "stopPrice": "0.00", "workingType": "CONTRACT_PRICE",
                "origType": "MARKET", "updateTime": NOW_MS}
ALGO_ANSWER = {"algoId": 4000000456, "clientAlgoId": "sig1-stop1", "algoType": "CONDITIONAL",
               "orderType": "STOP_MARKET", "symbol": "BTCUSDT", "side": "SELL",
               "positionSide": "BOTH", "timeInForce": "GTC", "quantity": "0.010",
               "algoStatus": "NEW", "triggerPrice": "58000.00", "price": "0.00",
               "workingType": "CONTRACT_PRICE", "priceMatch": "NONE", "closePosition": False,
               "priceProtect": False, "reduceOnly": True, "createTime": NOW_MS,
               "updateTime": NOW_MS, "triggerTime": 0, "goodTillDate": 0}
INTENTS = [
    OrderIntent("sig1-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.0123456, OrderPurpose.ENTRY,
                stop_price=58000.0),
    OrderIntent("sig1-entry", SYMBOL, Side.SELL, OrderType.LIMIT, 0.02, OrderPurpose.ENTRY,
                59700.04999, time_in_force="IOC"),  # a capped entry: rounded to the tick
    OrderIntent("sig1-tp1", SYMBOL, Side.SELL, OrderType.LIMIT, 0.005, OrderPurpose.TP1,
                61000.0, True),
    OrderIntent("sig2-tp2", SYMBOL, Side.BUY, OrderType.LIMIT, 0.0123456, OrderPurpose.TP2,
                57123.456789, True),  # a short's, to be rounded
    OrderIntent("sig1-stop1", SYMBOL, Side.SELL, OrderType.STOP_MARKET, 0.01, OrderPurpose.STOP,
                58000.0, True),
    OrderIntent("sig2-stop1", SYMBOL, Side.BUY, OrderType.STOP_MARKET, 0.0123456,
                OrderPurpose.STOP, 62345.678, True),
    OrderIntent("sig3-flat", SYMBOL, Side.SELL, OrderType.MARKET, 0.01, OrderPurpose.FLATTEN,
                reduce_only=True),
]


def gateway_on(venue, tmp_path, keys, working_type: str = "CONTRACT_PRICE") -> OrderGateway:
    exchange = make_ccxt_client(live_settings(tmp_path), keys, venue.base_url, rate_limit=False)
    gateway = OrderGateway(exchange, working_type, base_delay_s=0.0, sleep=lambda s: None)
    gateway.load_markets()
    return gateway


def on_the_wire(gateway: OrderGateway, answer: dict[str, Any]) -> list[tuple]:
    """The requests the gateway's client writes from now on, each answered `answer` without
    reaching the venue; the timestamp pinned, so that two requests for one order sign alike."""
    written: list[tuple] = []
    body = json.dumps(answer).encode()
    headers = CaseInsensitiveDict({"Content-Type": "application/json"})

    def request(method, url, data=None, headers_sent=None, **options):
        written.append((method, url, data, dict(headers_sent or options.get("headers") or {})))
        return LeanResponse(url, 200, "OK", headers, body)

    gateway.exchange.session.request = lambda method, url, data=None, headers=None, **options: \
        request(method, url, data, headers, **options)
    gateway.exchange.nonce = lambda: NOW_MS
    return written


@pytest.mark.parametrize("intent", INTENTS, ids=lambda intent: f"{intent.client_id}-"
                         f"{intent.order_type.value}-{intent.time_in_force}")
@pytest.mark.parametrize("working_type", ["CONTRACT_PRICE", "MARK_PRICE"])
def test_an_order_is_written_and_signed_as_ccxts_create_order_writes_it(
        venue, tmp_path, keys, intent, working_type):
    gateway = gateway_on(venue, tmp_path, keys, working_type)
    stop = intent.order_type is OrderType.STOP_MARKET
    written = on_the_wire(gateway, ALGO_ANSWER if stop else ORDER_ANSWER)
    ccxts = gateway.exchange.create_order(*ccxt_order_args(gateway.exchange, intent,
                                                           working_type))
    ours = gateway.place(intent)
    assert len(written) == 2 and written[0] == written[1]  # method, URL, signed body, headers
    method, url, body, _ = written[1]
    assert (method, url.rsplit("/", 1)[1]) == ("POST", "algoOrder" if stop else "order")
    assert b"&signature=" in body and (b"clientAlgoId=" if stop else b"newClientOrderId=") \
        + intent.client_id.encode() in body
    assert ours == sent_order(ccxts, intent.client_id)


ANSWERS = [  # Binance USD-M answers to a new order (RESULT) or algo order, as it words them
    {"status": "NEW", "executedQty": "0.000", "avgPrice": "0.00"},
    {"status": "PARTIALLY_FILLED", "executedQty": "0.002", "avgPrice": "61000.10"},
    {"status": "FILLED", "executedQty": "0.005", "avgPrice": "61000.35"},
    {"status": "FILLED", "executedQty": "0.005", "avgPrice": "0.00", "cumQuote": "305.0015"},
    {"status": "FILLED", "executedQty": "0.003", "avgPrice": "", "cumQuote": "180.03"},
    {"status": "EXPIRED", "executedQty": "0.001", "avgPrice": "60990.00"},
    {"status": "CANCELED", "executedQty": "0.000", "avgPrice": "0.00"},
    {"status": "EXPIRED_IN_MATCH", "executedQty": "0.000", "avgPrice": "0.00"},
    {"status": "REJECTED", "executedQty": "0.000", "avgPrice": "0.00"},
    {"status": "PENDING_CANCEL"}, {"status": None}, {"status": "SOMETHING_NEW"},
    {"code": 0, "msg": "", "status": "NEW"}, {"code": "200", "msg": "", "status": "NEW"},
    {"code": 200, "msg": "success", "status": "FILLED", "executedQty": "0.010",
     "avgPrice": "60000.0"},
]
ALGO_STATUSES = ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED", "CANCELED", "EXPIRED",
                 "REJECTED"]


@pytest.mark.parametrize("answer", [{**ORDER_ANSWER, **changed} for changed in ANSWERS]
                         + [{**ALGO_ANSWER, "algoStatus": status} for status in ALGO_STATUSES]
                         + [{**ALGO_ANSWER, "algoStatus": "TRIGGERED",
                             "actualOrderId": "8000000999"}])
def test_an_answer_is_read_as_ccxts_parse_reads_it(venue, tmp_path, keys, answer):
    exchange = gateway_on(venue, tmp_path, keys).exchange
    assert sent_from_binance(answer, "sig1-entry") == sent_order(
        exchange.parse_order(answer, exchange.market(SYMBOL)), "sig1-entry")


def test_the_fake_venues_own_answers_are_read_as_ccxt_reads_them(venue, tmp_path, keys):
    """An entry that fills, its stop, a resting take-profit and an IOC limit, each placed on
    the venue; what the venue answered is read as ccxt's parse reads it."""
    gateway = gateway_on(venue, tmp_path, keys)
    answered: list[bytes] = []
    request = gateway.exchange.session.request

    def keep(*args, **options):
        response = request(*args, **options)
        answered.append(response.content)
        return response

    gateway.exchange.session.request = keep
    intents = [INTENTS[0], INTENTS[4], INTENTS[2],
               OrderIntent("sig4-entry", SYMBOL, Side.BUY, OrderType.LIMIT, 0.002,
                           OrderPurpose.ENTRY, 60300.0, time_in_force="IOC")]
    for intent in intents:
        sent = gateway.place(intent)
        raw = json.loads(answered[-1])
        exchange = gateway.exchange
        assert sent == sent_order(exchange.parse_order(raw, exchange.market(SYMBOL)),
                                  intent.client_id)
    assert [o["clientOrderId"] for o in venue.state.orders.values()].count("sig4-entry") == 1
    assert gateway.sends == len(intents)


@pytest.mark.parametrize("body", [b"", b"<html>502 Bad Gateway</html>", b"[]", b"{}",
                                  b'{"msg": "accepted"}'])
def test_an_unreadable_answer_is_looked_up_never_sent_twice(venue, tmp_path, keys, body):
    """The venue placed the order but its answer is no order: the gateway looks the client id
    up and answers with the venue's copy, and the order is on the venue once."""
    gateway = gateway_on(venue, tmp_path, keys)
    request = gateway.exchange.session.request

    def garbled(method, url, *args, **options):
        response = request(method, url, *args, **options)
        if method == "POST":
            response.content = body
        return response

    gateway.exchange.session.request = garbled
    sent = gateway.place(OrderIntent("sig5-entry", SYMBOL, Side.BUY, OrderType.LIMIT, 0.002,
                                     OrderPurpose.ENTRY, 55000.0, time_in_force="GTC"))
    venue_copy = next(iter(venue.state.orders.values()))
    assert sent.status == "open" and sent.exchange_order_id == str(venue_copy["orderId"])
    assert [o["clientOrderId"] for o in venue.state.orders.values()] == ["sig5-entry"]
    assert gateway.sends == 1


@pytest.mark.parametrize("order_type", [OrderType.LIMIT, OrderType.STOP_MARKET])
def test_an_order_without_its_price_is_refused_unsent(venue, tmp_path, keys, order_type):
    """A limit without its price (ccxt refuses it too) or a stop without its trigger (ccxt
    would have sent a plain market order): refused before anything is sent."""
    gateway = gateway_on(venue, tmp_path, keys)
    with pytest.raises(OrderRejectedError, match="requires a"):
        gateway.place(OrderIntent("sig6-stop1", SYMBOL, Side.SELL, order_type, 0.01,
                                  OrderPurpose.STOP, None, True))
    assert gateway.sends == 0 and not venue.state.orders and not venue.state.algo_orders
