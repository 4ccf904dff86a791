"""The fake Binance venue is as hostile as the real one, and the order gateway copes with it.

Split taker fills and IOC limits (exact in Decimal, events shaped like the recorded payloads);
every fault kind as ccxt sees it on the wire; `OrderGateway.place` under each kind (one order
per client id, never two, and an honest SentOrder or error); cancels after a doubtful answer;
the position mode; the protection log and `unprotected_spans`; the /_control/ routes. (How a
429's wait and a 418 ban are enforced, and honoured: test_venue_bans.py.)
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from decimal import Decimal

import ccxt
import pytest

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.errors import RateLimitError, TemporaryExchangeError
from cryptobot.exchange.ccxt_errors import (
    binance_code,
    map_ccxt_error,
    not_executed,
    retry_after_s,
)
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from tests.conftest import REPO_ROOT
from tests.live.fake_binance import FakeBinanceServer, FaultPlan, unprotected_spans
from tests.live.fake_binance_faults import DRAWN_KINDS
from tests.live.fake_binance_state import FakeExchangeState, VenueClock

SYMBOL = "BTC/USDT:USDT"
TIMEOUT_MS = 200  # the client's timeout here: a stall costs ~0.3 s of wall clock
T0 = 1_722_816_000_000
RECORDED = REPO_ROOT / "tests" / "fixtures" / "binance" / "user_data_json"


@pytest.fixture
def venue():
    server = FakeBinanceServer(FakeExchangeState([60000.0]), FaultPlan(),
                               timeout_ms=TIMEOUT_MS).start()
    yield server
    server.stop()


def client(venue, keys):
    exchange = make_exchange("binanceusdm", rest_url=venue.base_url, api_keys=keys,
                             timeout_ms=TIMEOUT_MS, rate_limit=False,
                             options={"fetchCurrencies": False})
    exchange.load_markets()
    return exchange


def gateway(venue, keys, attempts: int = 4) -> tuple[OrderGateway, list[float]]:
    """A gateway whose waits pass on the venue's clock (and are listed)."""
    sleeps: list[float] = []
    clock = VenueClock(venue.state)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.sleep(seconds)

    return OrderGateway(client(venue, keys), attempts=attempts, base_delay_s=0.1,
                        sleep=sleep, seed=3, clock=clock), sleeps


def market_buy(cid: str, qty: float = 0.002) -> OrderIntent:
    return OrderIntent(cid, SYMBOL, Side.BUY, OrderType.MARKET, qty, OrderPurpose.ENTRY)


def control(venue, path: str, payload: dict | None = None, method: str = "POST") -> dict:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(venue.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def on_venue(state: FakeExchangeState, cid: str) -> list[dict]:
    return [o for o in state.orders.values() if o["clientOrderId"] == cid]


def order_events(state: FakeExchangeState, cid: str) -> list[tuple]:
    return [(e["o"]["x"], e["o"]["X"], e["o"]["l"], e["o"]["z"], e["o"]["L"])
            for e in state.user_events
            if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["c"] == cid]


def new_order(state: FakeExchangeState, cid: str, side: str, qty: str, **extra) -> dict:
    return state.new_order({"symbol": "BTCUSDT", "type": "MARKET", "side": side,
                            "quantity": qty, "newClientOrderId": cid,
                            "newOrderRespType": "RESULT", **extra})


# --- split fills --------------------------------------------------------------------------


def test_a_market_order_fills_in_parts_up_the_book_exactly():
    state = FakeExchangeState([60000.0], now_ms=T0, fill_parts=3)
    order = new_order(state, "in", "BUY", "0.02")
    assert (order["status"], order["executedQty"], order["avgPrice"]) == (
        "FILLED", "0.02", "60000.095")  # (420 + 420.0007 + 360.0012) / 0.02
    assert order_events(state, "in") == [
        ("NEW", "NEW", "0", "0", "0"),
        ("TRADE", "PARTIALLY_FILLED", "0.007", "0.007", "60000"),
        ("TRADE", "PARTIALLY_FILLED", "0.007", "0.014", "60000.1"),
        ("TRADE", "FILLED", "0.006", "0.02", "60000.2")]
    assert len({t["id"] for t in state.trades}) == 3
    pos = state.position("BTCUSDT")
    assert (pos.qty, pos.entry_price) == (Decimal("0.02"), Decimal("60000.095"))

    state.set_price_scripted(61000.0)
    new_order(state, "out", "SELL", "0.02", reduceOnly="true")
    sells = [t for t in state.trades if t["side"] == "SELL"]
    assert [(t["qty"], t["price"]) for t in sells] == [
        ("0.007", "61000"), ("0.007", "60999.9"), ("0.006", "60999.8")]
    realized = sum(Decimal(t["realizedPnl"]) for t in sells)
    fees = sum(Decimal(t["commission"]) for t in state.trades)
    assert realized == Decimal("1219.9981") - Decimal("1200.0019")  # sold minus paid
    assert fees == Decimal("0.0005") * (Decimal("1219.9981") + Decimal("1200.0019"))
    assert state.account.wallet_usdt == Decimal("10000") + realized - fees
    assert (pos.qty, pos.entry_price) == (0, 0)


def test_split_fill_events_carry_every_key_of_the_recorded_payload():
    recorded = json.loads((RECORDED / "order_update_trade_partial.json").read_text())
    state = FakeExchangeState([60000.0], fill_parts=2)
    new_order(state, "in", "BUY", "0.004")
    partial = next(e for e in state.user_events if e["e"] == "ORDER_TRADE_UPDATE"
                   and e["o"]["X"] == "PARTIALLY_FILLED")
    assert set(recorded) <= set(partial) and set(recorded["o"]) <= set(partial["o"])


def test_a_fired_stop_fills_in_parts_down_from_the_gap_and_the_log_sees_each_step():
    state = FakeExchangeState([60000.0], now_ms=T0, fill_parts=3)
    new_order(state, "in", "BUY", "0.02")
    state.now_ms += 250  # the bot takes 250 ms to place its stop
    state.new_algo_order({"symbol": "BTCUSDT", "side": "SELL", "algoType": "CONDITIONAL",
                          "type": "STOP_MARKET", "quantity": "0.02", "triggerPrice": "59000",
                          "reduceOnly": "true", "clientAlgoId": "stop"})
    state.set_price_scripted(58000.0)
    [algo] = state.algo_orders.values()
    child = state.orders[int(algo["actualOrderId"])]
    assert [(t["qty"], t["price"]) for t in state.trades if t["orderId"] == child["orderId"]] \
        == [("0.007", "58000"), ("0.007", "57999.9"), ("0.006", "57999.8")]
    finished = state.user_events[-1]["o"]
    assert (finished["X"], finished["aq"], finished["ap"]) == ("FINISHED", "0.02",
                                                               child["avgPrice"])
    t1 = T0 + 250 + 1000
    assert state.protection_log == [
        (T0, 0.007, 0.0), (T0, 0.014, 0.0), (T0, 0.02, 0.0), (T0 + 250, 0.02, 0.02),
        (t1, 0.02, 0.0), (t1, 0.013, 0.0), (t1, 0.006, 0.0), (t1, 0.0, 0.0), (t1, 0.0, 0.0)]
    assert unprotected_spans(state.protection_log, until_ms=state.now_ms) == [
        (T0, T0 + 250, 0.02)]


# --- IOC limits ---------------------------------------------------------------------------


def test_an_ioc_limit_fills_the_levels_within_its_limit_and_the_rest_expires():
    state = FakeExchangeState([60000.0], fill_parts=4)
    order = state.new_order({"symbol": "BTCUSDT", "type": "LIMIT", "side": "BUY",
                             "timeInForce": "IOC", "quantity": "0.04", "price": "60000.2",
                             "newClientOrderId": "ioc", "newOrderRespType": "RESULT"})
    assert (order["status"], order["executedQty"], order["timeInForce"]) == (
        "EXPIRED", "0.03", "IOC")
    assert order_events(state, "ioc")[-2:] == [
        ("TRADE", "PARTIALLY_FILLED", "0.01", "0.03", "60000.2"),
        ("EXPIRED", "EXPIRED", "0", "0.03", "0")]
    assert all(not t["maker"] for t in state.trades)
    nothing = state.new_order({"symbol": "BTCUSDT", "type": "LIMIT", "side": "SELL",
                               "timeInForce": "IOC", "quantity": "0.01", "price": "60001",
                               "newOrderRespType": "RESULT"})
    assert (nothing["status"], nothing["executedQty"]) == ("EXPIRED", "0")
    resting = state.new_order({"symbol": "BTCUSDT", "type": "LIMIT", "side": "SELL",
                               "timeInForce": "GTC", "quantity": "0.01", "price": "60001"})
    assert state.orders[resting["orderId"]]["status"] == "NEW"  # GTC rests as before


def test_gateway_reports_an_ioc_that_expired_partly_filled(venue, keys):
    venue.state.fill_parts = 4
    gate, _ = gateway(venue, keys)
    sent = gate.place(OrderIntent("ioc-1", SYMBOL, Side.BUY, OrderType.LIMIT, 0.04,
                                  OrderPurpose.ENTRY, 60000.2, time_in_force="IOC"))
    assert (sent.status, sent.filled_qty) == ("expired", pytest.approx(0.03))
    venue.faults.script(["502_after"])  # answer lost: the look-up tells the same
    sent = gate.place(OrderIntent("ioc-2", SYMBOL, Side.BUY, OrderType.LIMIT, 0.04,
                                  OrderPurpose.ENTRY, 60000.2, time_in_force="IOC"))
    assert (sent.status, sent.filled_qty) == ("expired", pytest.approx(0.03))
    assert len(on_venue(venue.state, "ioc-2")) == 1


# --- faults on the wire, as ccxt sees them ------------------------------------------------

WIRE = {  # kind: (ccxt class, status of the venue's answer, carried out, refused before work)
    "429": (ccxt.DDoSProtection, -1003, False, True),
    "418": (ccxt.DDoSProtection, -1003, False, True),
    "1008": (ccxt.ExchangeError, -1008, False, True),
    "503": (ccxt.ExchangeNotAvailable, None, False, False),
    "timeout": (ccxt.RequestTimeout, None, False, False),
    "timeout_after": (ccxt.RequestTimeout, None, True, False),
    "502_after": (ccxt.ExchangeNotAvailable, None, True, False),
    "1007:done": (ccxt.RequestTimeout, -1007, True, False),
    "1007:not_done": (ccxt.RequestTimeout, -1007, False, False),
    "503_unknown:done": (ccxt.ExchangeNotAvailable, None, True, False),
    "503_unknown:not_done": (ccxt.ExchangeNotAvailable, None, False, False),
}


def test_each_fault_reaches_ccxt_as_binance_sends_it(venue, keys):
    exchange = client(venue, keys)
    state = venue.state
    for n, (kind, (ccxt_class, code, done, refused)) in enumerate(WIRE.items()):
        venue.faults.script([kind])
        before_ms = state.now_ms
        with pytest.raises(ccxt_class) as caught:
            exchange.create_order(SYMBOL, "market", "buy", 0.002, None,
                                  {"clientOrderId": f"wire-{n}"})
        assert binance_code(caught.value) == code, kind
        assert len(on_venue(state, f"wire-{n}")) == done, kind
        assert not_executed(caught.value) is refused, kind
        assert isinstance(map_ccxt_error(caught.value, order=True), TemporaryExchangeError)
        stalled = kind.startswith("timeout")
        assert (state.now_ms - before_ms >= TIMEOUT_MS) is stalled, kind
        if kind in ("429", "418"):
            VenueClock(state).sleep(retry_after_s(exchange))  # obeyed: no ban earned
    assert venue.faults.injected == {"429": 1, "418": 1, "1008": 1, "503": 1, "timeout": 1,
                                     "timeout_after": 1, "502_after": 1, "1007": 2,
                                     "503_unknown": 2}
    assert venue.faults.executed == {"timeout_after": 1, "502_after": 1, "1007": 1,
                                     "503_unknown": 1}
    assert (venue.faults.bans, venue.faults.early_requests) == (1, 0)  # the scripted one


def test_rate_limits_carry_retry_after_and_a_ban_says_until_when(venue, keys):
    exchange = client(venue, keys)
    venue.faults.script(["429", "418"])
    for kind, wait_s in (("429", 1.0), ("418", 120.0)):
        with pytest.raises(ccxt.DDoSProtection) as caught:
            exchange.fetch_balance()
        assert isinstance(map_ccxt_error(caught.value), RateLimitError)
        assert retry_after_s(exchange) == wait_s, kind
        if kind == "429":
            VenueClock(venue.state).sleep(wait_s)
    assert f"banned until {venue.state.now_ms + 120_000}" in str(caught.value)


def test_5xx_are_plain_server_errors_and_1008_spares_reduce_only_orders(venue, keys):
    exchange = client(venue, keys)
    venue.faults.script(["5xx"] * 6)
    seen = set()
    for _ in range(6):
        with pytest.raises((ccxt.ExchangeNotAvailable, ccxt.RequestTimeout)) as caught:
            exchange.fetch_balance()
        seen.add(type(caught.value))
        assert binance_code(caught.value) is None
    assert seen == {ccxt.ExchangeNotAvailable, ccxt.RequestTimeout}  # 500/502/503 and 504
    exchange.create_order(SYMBOL, "market", "buy", 0.002, None, {"clientOrderId": "long"})
    venue.faults.script(["1008"])
    exchange.create_order(SYMBOL, "market", "sell", 0.002, None,
                          {"clientOrderId": "close", "reduceOnly": True})
    assert "1008" not in venue.faults.injected
    assert float(venue.state.position("BTCUSDT").qty) == 0


def test_unknown_fault_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan(kinds=("429", "boom"))
    with pytest.raises(ValueError, match="unknown fault"):
        FaultPlan().script(["timeout:done"])


# --- the gateway under each fault -----------------------------------------------------------


@pytest.mark.parametrize("kind", list(WIRE) + ["5xx"])
def test_place_under_each_fault_puts_exactly_one_order_and_says_so(venue, keys, kind):
    gate, sleeps = gateway(venue, keys)
    venue.faults.ban_s = 4  # short enough to be slept in the call (a longer one is refused)
    venue.faults.script([kind])
    sent = gate.place(market_buy("one"))
    assert (sent.status, sent.filled_qty) == ("filled", pytest.approx(0.002))
    assert len(on_venue(venue.state, "one")) == 1
    looked_up = ("GET", "/fapi/v1/order") in venue.state.requests
    refused = kind in ("429", "418", "1008")
    assert looked_up is not refused  # a refusal is resent as is; a doubt is looked up first
    if kind in ("429", "418"):
        assert sleeps == [1.0 if kind == "429" else 4.0]  # the venue's Retry-After
    assert venue.faults.early_requests == 0


def test_a_doubtful_answer_whose_look_up_fails_too_is_unknown_not_rejected(venue, keys):
    gate, _ = gateway(venue, keys, attempts=3)
    venue.faults.script(["1007:done", "503", "503", "503"])
    with pytest.raises(TemporaryExchangeError, match="outcome unknown") as caught:
        gate.place(market_buy("lost"))
    assert "-1007" in str(caught.value)
    assert len(on_venue(venue.state, "lost")) == 1
    assert gate.lookup(market_buy("lost")).status == "filled"  # the next look finds it


def test_random_faults_of_every_kind_never_double_or_hide_an_order(venue, keys):
    venue.faults.rate, venue.faults.kinds = 0.4, DRAWN_KINDS
    venue.state.fill_parts = 2
    gate, _ = gateway(venue, keys, attempts=5)
    outcomes = Counter()
    for n in range(16):
        cid = f"rnd-{n}"
        try:
            sent = gate.place(market_buy(cid))
        except TemporaryExchangeError as exc:
            placed = len(on_venue(venue.state, cid))
            if "not placed" in str(exc):
                assert placed == 0, exc
            else:
                assert "outcome unknown" in str(exc) and placed <= 1, exc
            outcomes["error"] += 1
            continue
        assert (sent.status, sent.filled_qty) == ("filled", pytest.approx(0.002))
        assert len(on_venue(venue.state, cid)) == 1
        outcomes["filled"] += 1
    print("faults:", venue.faults.injected, "outcomes:", dict(outcomes))
    assert sum(venue.faults.injected.values()) >= 8
    assert (venue.faults.early_requests, venue.faults.bans) == (0, 0)  # it obeyed every 429
    assert max(Counter(o["clientOrderId"] for o in venue.state.orders.values()).values()) == 1


# --- cancels and the position mode ----------------------------------------------------------


def test_cancel_after_a_doubtful_answer_tells_the_truth(venue, keys):
    gate, _ = gateway(venue, keys)

    def resting(cid: str) -> OrderIntent:
        intent = OrderIntent(cid, SYMBOL, Side.SELL, OrderType.LIMIT, 0.002,
                             OrderPurpose.TP1, 61000.0)
        gate.place(intent)
        return intent

    venue.faults.script(["timeout_after"])  # cancelled, answer lost; the retry meets -2011
    assert gate.cancel(resting("c1")) is True
    venue.faults.script(["timeout"])  # not done; the retry cancels it
    assert gate.cancel(resting("c2")) is True
    filled = resting("c3")
    venue.state.set_price_scripted(61000.0)
    venue.faults.script(["502_after"])  # the order had filled: the cancel did nothing
    assert gate.cancel(filled) is False
    assert [o["status"] for o in venue.state.orders.values()] == [
        "CANCELED", "CANCELED", "FILLED"]


def test_position_mode_is_read_and_changed_as_on_binance(venue, keys):
    gate, _ = gateway(venue, keys)
    assert gate.position_mode_is_hedge() is False
    exchange = gate.exchange
    for hedged, code in ((False, -4059),):
        with pytest.raises(ccxt.BaseError) as caught:
            exchange.set_position_mode(hedged)
        assert binance_code(caught.value) == code
    gate.place(OrderIntent("tp", SYMBOL, Side.SELL, OrderType.LIMIT, 0.002, OrderPurpose.TP1,
                           61000.0))
    with pytest.raises(ccxt.BaseError) as caught:
        exchange.set_position_mode(True)
    assert binance_code(caught.value) == -4067  # an open order
    gate.place(market_buy("pos"))
    with pytest.raises(ccxt.BaseError) as caught:
        exchange.set_position_mode(True)
    assert binance_code(caught.value) == -4068  # a position
    venue.state.dual_side = True
    assert gate.position_mode_is_hedge() is True


# --- unprotected spans --------------------------------------------------------------------


def test_unprotected_spans_cut_merge_and_count_the_tail():
    log = [(0, 0.0, 0.0), (100, 0.02, 0.0), (150, 0.02, 0.01), (200, 0.02, 0.02),
           (300, 0.01, 0.02), (400, -0.01, 0.0), (500, 0.0, 0.0), (600, 0.03, 0.0)]
    assert unprotected_spans(log) == [(100, 150, 0.02), (150, 200, 0.01), (400, 500, 0.01)]
    assert unprotected_spans(log, until_ms=650)[-1] == (600, 650, 0.03)
    assert unprotected_spans(log, excluded=[(120, 180), (450, 700)]) == [
        (100, 120, 0.02), (180, 200, 0.01), (400, 450, 0.01)]
    same = [(0, 0.02, 0.0), (10, 0.02, 0.0), (20, 0.02, 0.02)]
    assert unprotected_spans(same) == [(0, 20, 0.02)]  # merged
    assert unprotected_spans([(0, 0.02, 0.02 - 1e-12), (5, 0.0, 0.0)]) == []  # within 1e-9
    assert unprotected_spans([]) == []


# --- simulated time and the control routes --------------------------------------------------


def test_latency_and_timeouts_move_the_venue_clock(venue, keys):
    exchange = client(venue, keys)
    venue.state.latency_ms = 40
    start = venue.state.now_ms
    exchange.fetch_balance()
    assert venue.state.now_ms == start + 40
    venue.faults.script(["timeout"])
    with pytest.raises(ccxt.RequestTimeout):
        exchange.fetch_balance()
    assert venue.state.now_ms == start + 80 + TIMEOUT_MS


def test_control_routes_walk_sleep_and_report_the_venue(venue, keys):
    state = venue.state
    gate, _ = gateway(venue, keys)
    gate.place(market_buy("entry", 0.004))
    gate.place(OrderIntent("stop", SYMBOL, Side.SELL, OrderType.STOP_MARKET, 0.004,
                           OrderPurpose.STOP, 59500.0, True))
    now = state.now_ms
    assert control(venue, "/_control/sleep?ms=1500") == {"now_ms": now + 1500}
    walked = control(venue, "/_control/walk", {
        "ts_open_ms": now + 300_000, "ts_close_ms": now + 600_000,
        "open": 60000.0, "high": 60100.0, "low": 59000.0, "close": 59800.0})
    assert walked == {"price": "59800", "now_ms": now + 600_000}
    assert float(state.position("BTCUSDT").qty) == 0  # the stop fired inside the candle
    venue.faults.script(["429"])
    assert gate.balance_usdt() > 0  # waited the Retry-After, then read
    snapshot = control(venue, "/_control/state", method="GET")
    assert snapshot["now_ms"] == state.now_ms
    assert [o["clientOrderId"] for o in snapshot["orders"]] == ["entry", "stop"]
    assert snapshot["algo_orders"][0]["algoStatus"] == "FINISHED"
    assert len(snapshot["trades"]) == 2
    assert snapshot["positions"]["BTCUSDT"]["qty"] == "0"
    assert snapshot["protection_log"][-1][1:] == [0.0, 0.0]
    assert snapshot["faults"] == {"injected": {"429": 1}, "executed": {}, "early_requests": 0,
                                  "bans": 0}
