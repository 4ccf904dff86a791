"""The take-profits in one request (Binance USD-M's batchOrders) through the real LiveBroker, its
gateway (ccxt) and live state, against the fake venue on 127.0.0.1: per-order answers read in
their orders' places, one order refused while the other stands, and the whole request's faults
(its answer lost after the venue placed it, or before; a 429; a ban) never leaving a take-profit
twice on the venue. (The same through the real engine: test_live_take_profits.py.)"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from cryptobot.brokers.live.sent_order import SentOrder, sent_from_binance, sent_order
from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import OrderRejectedError, TemporaryExchangeError, VenueWaitError
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from tests.live.ccxt_orders import ccxt_order_args
from tests.live.conftest import VenueClock, live_settings

SYMBOL = "BTC/USDT:USDT"
PRICE_BAND = (-4016, "Limit price can't be higher than 63000.00.")  # Binance's words


def opened(venue, tmp_path, keys):
    """A LiveBroker holding 0.010 BTC long under its stop (the fake fills the entry at once);
    its waits pass on the venue's clock. Returns it and the order events it reported."""
    settings = live_settings(tmp_path)
    clock = VenueClock(venue.state)
    broker, _ = build_live_broker(settings, keys, clock,
                                  KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=clock.sleep, rate_limit=False)
    events: list = []
    broker.bind(lambda fill: None, events.append)
    broker.submit(OrderIntent("sig1-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.01,
                              OrderPurpose.ENTRY, stop_price=58000.0))
    broker.submit(OrderIntent("sig1-stop1", SYMBOL, Side.SELL, OrderType.STOP_MARKET, 0.01,
                              OrderPurpose.STOP, 58000.0, True))
    assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(0.01)
    venue.faults.trace = []
    return broker, events


def targets() -> list[OrderIntent]:
    return [OrderIntent("sig1-tp1", SYMBOL, Side.SELL, OrderType.LIMIT, 0.005, OrderPurpose.TP1,
                        61000.0, True),
            OrderIntent("sig1-tp2", SYMBOL, Side.SELL, OrderType.LIMIT, 0.005, OrderPurpose.TP2,
                        62000.5, True)]


def on_venue(venue) -> Counter[str]:
    """How many orders of each take-profit client id the venue holds (open or not)."""
    return Counter(o["clientOrderId"] for o in venue.state.orders.values()
                   if "-tp" in o["clientOrderId"])


def calls(venue, route: str, method: str = "POST") -> list[str]:
    return [cid for _, m, r, cid, _ in venue.faults.trace if (m, r) == (method, route)]


def stored(broker, client_id: str) -> str:
    return broker.state.order(client_id).status


@pytest.mark.parametrize("refused", [None, "-tp1", "-tp2"])
def test_take_profits_go_in_one_request_each_answer_in_its_place(venue, tmp_path, keys,
                                                                refused):
    broker, events = opened(venue, tmp_path, keys)
    if refused:
        venue.state.refuse_orders[refused] = PRICE_BAND
    answers = broker.submit_batch(targets())
    assert calls(venue, "batchOrders") == ["sig1-tp1,sig1-tp2"] and calls(venue, "order") == []
    for intent, answer in zip(targets(), answers, strict=True):
        if refused and intent.client_id.endswith(refused):
            assert isinstance(answer, OrderRejectedError) and "-4016" in str(answer)
            assert stored(broker, intent.client_id) == "rejected"
            assert on_venue(venue)[intent.client_id] == 0
        else:  # accepted, as the venue has it, whatever happened to the other one
            assert answer is None and stored(broker, intent.client_id) == "open"
            [order] = [o for o in venue.state.orders.values()
                       if o["clientOrderId"] == intent.client_id]
            assert (order["status"], float(order["price"]), float(order["origQty"]),
                    order["reduceOnly"]) == ("NEW", intent.price, intent.qty_base, True)
            assert str(order["orderId"]) == broker.state.order(
                intent.client_id).exchange_order_id
    reported = [(e.intent.client_id, e.status) for e in events if "-tp" in e.intent.client_id]
    assert reported == [(i.client_id, "open") for i in targets()
                        if not (refused and i.client_id.endswith(refused))]
    assert venue.state.open_algo_orders() != []  # the stop still protects


@pytest.mark.parametrize("fault", ["502_after", "1007:done", "timeout_after"])
def test_a_batch_placed_whose_answer_was_lost_is_looked_up_never_sent_twice(
        venue, tmp_path, keys, fault):
    broker, events = opened(venue, tmp_path, keys)
    venue.faults.script([fault], route="batchOrders")
    assert broker.submit_batch(targets()) == [None, None]
    assert calls(venue, "batchOrders") == ["sig1-tp1,sig1-tp2"]  # once: found, not resent
    assert calls(venue, "order", "GET") == ["sig1-tp1", "sig1-tp2"]  # each looked up
    assert on_venue(venue) == {"sig1-tp1": 1, "sig1-tp2": 1}
    assert [stored(broker, i.client_id) for i in targets()] == ["open", "open"]
    assert [(e.intent.client_id, e.status) for e in events if "-tp" in e.intent.client_id] == [
        ("sig1-tp1", "open"), ("sig1-tp2", "open")]


@pytest.mark.parametrize("fault", ["503", "1007:not_done", "timeout"])
def test_a_batch_the_venue_never_carried_out_is_sent_again_once(venue, tmp_path, keys, fault):
    broker, _ = opened(venue, tmp_path, keys)
    venue.faults.script([fault], route="batchOrders")
    assert broker.submit_batch(targets()) == [None, None]
    assert calls(venue, "batchOrders") == ["sig1-tp1,sig1-tp2"] * 2
    assert calls(venue, "order", "GET") == ["sig1-tp1", "sig1-tp2"]  # looked up before that
    assert on_venue(venue) == {"sig1-tp1": 1, "sig1-tp2": 1}


def test_a_429_on_the_batch_is_waited_out_then_sent_again(venue, tmp_path, keys):
    broker, _ = opened(venue, tmp_path, keys)
    venue.faults.script(["429"], route="batchOrders")
    assert broker.submit_batch(targets()) == [None, None]
    assert calls(venue, "batchOrders") == ["sig1-tp1,sig1-tp2"] * 2
    assert calls(venue, "order", "GET") == []  # refused before anything was done: no look-up
    [(_, until_ms, kind)] = venue.faults.waits
    sent_again_ms = [ms for ms, m, r, _, _ in venue.faults.trace if r == "batchOrders"][-1]
    assert kind == "429" and sent_again_ms >= until_ms  # not a request inside the wait
    assert venue.faults.early_requests == 0 and venue.faults.bans == 0
    assert on_venue(venue) == {"sig1-tp1": 1, "sig1-tp2": 1}


def test_an_order_whose_look_up_failed_too_stays_unknown_until_reconciled(venue, tmp_path,
                                                                         keys):
    """The batch's answer is lost after the venue placed it; TP1's look-up fails as well: its
    outcome is unknown (never resent blind), TP2 is found. Reconciliation finds TP1."""
    broker, events = opened(venue, tmp_path, keys)
    venue.faults.script(["502_after"], route="batchOrders")
    venue.faults.script(["503"] * broker.gateway.attempts)  # every try of TP1's look-up
    tp1_answer, tp2_answer = broker.submit_batch(targets())
    assert isinstance(tp1_answer, TemporaryExchangeError) and "outcome unknown" in str(tp1_answer)
    assert tp2_answer is None
    assert [stored(broker, i.client_id) for i in targets()] == ["pending", "open"]
    assert calls(venue, "batchOrders") == ["sig1-tp1,sig1-tp2"]
    broker.reconcile()
    assert stored(broker, "sig1-tp1") == "open"
    assert on_venue(venue) == {"sig1-tp1": 1, "sig1-tp2": 1}


def test_a_ban_refuses_the_batch_unsent_and_a_later_one_places_it_once(venue, tmp_path, keys):
    broker, _ = opened(venue, tmp_path, keys)
    venue.faults.script(["418"], route="batchOrders")
    answers = broker.submit_batch(targets())
    assert all(isinstance(answer, VenueWaitError) for answer in answers)
    again = broker.submit_batch(targets())  # inside the ban: refused here, nothing sent
    assert all(isinstance(answer, VenueWaitError) for answer in again)
    assert calls(venue, "batchOrders") == ["sig1-tp1,sig1-tp2"]
    assert on_venue(venue) == {}
    venue.state.now_ms += int(answers[0].wait_s * 1000) + 1
    assert broker.submit_batch(targets()) == [None, None]  # pending rows looked up first
    assert calls(venue, "order", "GET") == ["sig1-tp1", "sig1-tp2"]
    assert on_venue(venue) == {"sig1-tp1": 1, "sig1-tp2": 1}
    assert venue.faults.early_requests == 0


def test_one_left_to_send_goes_as_a_plain_order(venue, tmp_path, keys):
    broker, _ = opened(venue, tmp_path, keys)
    first, second = targets()
    assert broker.submit_batch([first]) == [None]
    assert broker.submit_batch([first, second]) == [None, None]  # TP1: open already, kept
    assert calls(venue, "batchOrders") == []
    assert calls(venue, "order") == ["sig1-tp1", "sig1-tp2"]
    assert on_venue(venue) == {"sig1-tp1": 1, "sig1-tp2": 1}


@pytest.mark.parametrize("intent", [
    *targets(),
    OrderIntent("sig2-tp1", SYMBOL, Side.BUY, OrderType.LIMIT, 0.0123456, OrderPurpose.TP1,
                57123.456789, True),  # a short's, to be rounded
    OrderIntent("sig3-entry", SYMBOL, Side.BUY, OrderType.LIMIT, 0.02, OrderPurpose.ENTRY,
                60300.0, time_in_force="IOC")])
def test_a_batch_item_is_the_request_ccxt_writes_for_that_order(venue, tmp_path, keys, intent):
    broker, _ = opened(venue, tmp_path, keys)
    gateway = broker.gateway
    symbol, order_type, side, amount, price, params = ccxt_order_args(gateway.exchange, intent)
    ours = gateway.batch_item(intent)
    ccxts = gateway.exchange.create_order_request(symbol, order_type, side, amount, price,
                                                  {**params, "isAlgoOrder": False})
    if intent.reduce_only:  # a batch takes it as a string only
        assert ours.pop("reduceOnly") == "true" and ccxts.pop("reduceOnly") in (True, "true")
    assert ours == ccxts


ANSWERS = [  # Binance USD-M order answers (newOrderRespType RESULT), as the venue words them
    {"status": "NEW", "executedQty": "0.000", "avgPrice": "0.00"},
    {"status": "PARTIALLY_FILLED", "executedQty": "0.002", "avgPrice": "61000.10"},
    {"status": "FILLED", "executedQty": "0.005", "avgPrice": "61000.35"},
    {"status": "EXPIRED", "executedQty": "0.001", "avgPrice": "60990.00"},
    {"status": "CANCELED", "executedQty": "0.000", "avgPrice": "0.00"},
    {"status": "EXPIRED_IN_MATCH", "executedQty": "0.000", "avgPrice": "0.00"},
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_a_batch_answer_is_read_as_ccxts_parse_reads_it(venue, tmp_path, keys, answer):
    broker, _ = opened(venue, tmp_path, keys)
    item = {"orderId": 8000000123, "symbol": "BTCUSDT", "clientOrderId": "sig1-tp1",
            "price": "61000.00", "origQty": "0.005", "cumQuote": "0", "timeInForce": "GTC",
            "type": "LIMIT", "reduceOnly": True, "side": "SELL", "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "origType": "LIMIT",
            "updateTime": 1722816000000, **answer}
    exchange = broker.gateway.exchange
    assert sent_from_binance(item, "sig1-tp1") == sent_order(
        exchange.parse_order(item, exchange.market(SYMBOL)), "sig1-tp1")


def test_both_targets_filled_at_once_are_reported_filled_never_open_after(venue, tmp_path,
                                                                           keys):
    """Both take-profits priced through the market (a fast rebound): the venue fills them as
    it accepts them. Each is known by its venue id before any fill is read, so the fills read
    for TP1 find TP2's too: TP2 ends filled, and no order is reported "open" after its fill."""
    broker, events = opened(venue, tmp_path, keys)
    marketable = [OrderIntent("sig1-tp1", SYMBOL, Side.SELL, OrderType.LIMIT, 0.005,
                              OrderPurpose.TP1, 59000.0, True),
                  OrderIntent("sig1-tp2", SYMBOL, Side.SELL, OrderType.LIMIT, 0.005,
                              OrderPurpose.TP2, 59500.0, True)]
    assert broker.submit_batch(marketable) == [None, None]
    assert float(venue.state.position("BTCUSDT").qty) == 0
    assert (stored(broker, "sig1-tp1"), stored(broker, "sig1-tp2")) == ("filled", "filled")
    said: dict[str, list[str]] = {}
    for event in events:
        said.setdefault(event.intent.client_id, []).append(event.status)
    for client_id in ("sig1-tp1", "sig1-tp2"):
        statuses = said[client_id]
        assert "filled" in statuses and "open" not in statuses[statuses.index("filled"):], said
    assert calls(venue, "/fapi/v1/order", "GET") == []  # nothing looked up to find a fill


def test_answers_out_of_the_requests_order_are_looked_up_not_matched_by_place(
        venue, tmp_path, keys):
    """An answer list whose items do not name the orders in the request's order is read as
    a lost answer: each order looked up by its id, none matched to another's answer."""
    broker, _ = opened(venue, tmp_path, keys)
    exchange = broker.gateway.exchange
    post = exchange.fapiPrivatePostBatchOrders
    exchange.fapiPrivatePostBatchOrders = lambda params: list(reversed(post(params)))
    assert broker.submit_batch(targets()) == [None, None]
    assert on_venue(venue) == {"sig1-tp1": 1, "sig1-tp2": 1}  # placed once, not resent
    assert (stored(broker, "sig1-tp1"), stored(broker, "sig1-tp2")) == ("open", "open")
    by_id = {o["clientOrderId"]: str(o["orderId"]) for o in venue.state.orders.values()}
    for client_id in ("sig1-tp1", "sig1-tp2"):  # each row holds its own order's venue id
        assert broker.state.order(client_id).exchange_order_id == by_id[client_id]


def test_an_order_ccxt_refuses_to_write_is_refused_alone_the_others_sent(venue, tmp_path,
                                                                         keys):
    """A take-profit without its price (ccxt refuses to write it) is refused unsent; the
    batch's other order goes, in one request."""
    broker, _ = opened(venue, tmp_path, keys)
    first, second = targets()
    gateway, sends = broker.gateway, broker.gateway.sends
    answers = gateway.place_batch([first, dataclasses.replace(second, price=None)])
    assert isinstance(answers[0], SentOrder) and answers[0].status == "open"
    assert isinstance(answers[1], OrderRejectedError) and "sig1-tp2" in str(answers[1])
    assert gateway.sends == sends + 1 and calls(venue, "batchOrders") == ["sig1-tp1"]
    assert on_venue(venue) == {"sig1-tp1": 1}
