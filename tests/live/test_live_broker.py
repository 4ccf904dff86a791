"""The live broker against the fake Binance USD-M server: real ccxt calls over 127.0.0.1."""

from __future__ import annotations

import pytest

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import OrderRejectedError, ReconciliationError
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from tests.live.conftest import VenueClock, live_settings
from tests.live.trade_driver import SYMBOL, TradeDriver


def no_sleep(_seconds: float) -> None:
    return None


def build(venue, tmp_path, keys, **live):
    settings = live_settings(tmp_path, **live)
    return build_live_broker(settings, keys, VenueClock(venue.state),
                             KillSwitch(settings.risk.kill_switch_file), rest_url=venue.base_url,
                             sleep=no_sleep)


def open_algos(venue):
    return venue.state.open_algo_orders("BTCUSDT")


def test_full_trade_entry_stop_tp1_breakeven_tp2(venue, tmp_path, keys):
    broker, report = build(venue, tmp_path, keys)
    assert report.unknown_positions == []
    assert venue.state.position("BTCUSDT").margin_type == "isolated"
    assert venue.state.position("BTCUSDT").leverage == 3
    driver = TradeDriver(broker, "sig1", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
    driver.enter()
    pos = venue.state.position("BTCUSDT")
    assert float(pos.qty) == pytest.approx(0.02)
    [stop] = open_algos(venue)
    assert (stop["clientAlgoId"], stop["triggerPrice"], stop["reduceOnly"]) == (
        "sig1-stop1", "59000", True)
    assert stop["workingType"] == "CONTRACT_PRICE"
    assert {o["clientOrderId"] for o in venue.state.open_orders()} == {"sig1-tp1", "sig1-tp2"}

    venue.state.step_scripted()  # 60500: nothing
    venue.state.step_scripted()  # 61500: TP1 fills on the venue
    broker.poll()
    assert [f.purpose for f in driver.fills] == [OrderPurpose.ENTRY, OrderPurpose.TP1]
    [be_stop] = open_algos(venue)
    assert (be_stop["clientAlgoId"], be_stop["triggerPrice"], be_stop["quantity"]) == (
        "sig1-stop2", "60000", "0.01")
    methods = [path for _, path in venue.state.requests]
    new_at = max(i for i, p in enumerate(methods) if p == "/fapi/v1/algoOrder"
                 and venue.state.requests[i][0] == "POST")
    cancel_at = max(i for i, (m, p) in enumerate(venue.state.requests)
                    if m == "DELETE" and p == "/fapi/v1/algoOrder")
    assert new_at < cancel_at  # the new stop went in before the old one was cancelled

    venue.state.step_scripted()  # 62600: TP2
    broker.poll()
    assert [f.purpose for f in driver.fills][-1] is OrderPurpose.TP2
    assert float(venue.state.position("BTCUSDT").qty) == 0
    assert open_algos(venue) == [] and venue.state.open_orders() == []
    assert broker.state.positions() == []
    assert broker.state.position("sig1").qty_base == 0
    assert broker.working_orders() == ()


def test_stop_rejected_retried_then_closed_at_market(venue, tmp_path, keys):
    broker, _ = build(venue, tmp_path, keys, stop_place_retries=2)
    venue.state.reject_next_algo_orders = 3  # first try + 2 retries all refused
    driver = TradeDriver(broker, "sig2", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
    driver.enter()
    posts = [r for r in venue.state.requests if r == ("POST", "/fapi/v1/algoOrder")]
    assert len(posts) == 3
    assert len(driver.stop_errors) == 1 and "closed at market" in str(driver.stop_errors[0])
    assert float(venue.state.position("BTCUSDT").qty) == 0
    assert [f.purpose for f in driver.fills] == [OrderPurpose.ENTRY, OrderPurpose.FLATTEN]
    stored = broker.state.position("sig2")
    assert stored.qty_base == 0
    closed = broker.state.positions(open_only=False)[0]
    assert closed.signal_id == "sig2"


def test_stop_rejected_then_accepted_on_retry_keeps_position(venue, tmp_path, keys):
    broker, _ = build(venue, tmp_path, keys, stop_place_retries=2)
    venue.state.reject_next_algo_orders = 2
    driver = TradeDriver(broker, "sig3", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
    driver.enter()
    assert driver.stop_errors == []
    assert float(venue.state.position("BTCUSDT").qty) == pytest.approx(0.02)
    assert [a["clientAlgoId"] for a in open_algos(venue)] == ["sig3-stop1"]


def test_min_notional_and_rails_checked_before_sending(venue, tmp_path, keys):
    broker, _ = build(venue, tmp_path, keys)
    sends_before = broker.gateway.sends
    with pytest.raises(OrderRejectedError, match="rounds to 0"):
        broker.submit(OrderIntent("sig4-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.0009,
                                  OrderPurpose.ENTRY))
    broker.last_price = 5000.0  # as if the last base candle closed there: 0.001 x 5000 < 10
    with pytest.raises(OrderRejectedError, match="below the market minimum 10 USDT"):
        broker.submit(OrderIntent("sig4-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.001,
                                  OrderPurpose.ENTRY))
    broker.last_price = None
    broker.settings = broker.settings.model_copy(update={"risk": broker.settings.risk.model_copy(
        update={"max_notional_usdt": 1000.0})})
    with pytest.raises(OrderRejectedError, match="max_notional_usdt"):
        broker.submit(OrderIntent("sig4-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.02,
                                  OrderPurpose.ENTRY))
    (tmp_path / "KILL").write_text("")
    with pytest.raises(OrderRejectedError, match="kill switch"):
        broker.submit(OrderIntent("sig4-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.01,
                                  OrderPurpose.ENTRY))
    assert broker.gateway.sends == sends_before


def test_refuses_to_trade_until_reconciled(venue, tmp_path, keys):
    broker, _ = build(venue, tmp_path, keys)
    broker.ready = False
    with pytest.raises(ReconciliationError, match="refuses to trade"):
        broker.submit(OrderIntent("sig5-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.01,
                                  OrderPurpose.ENTRY))
    assert float(venue.state.position("BTCUSDT").qty) == 0


def test_unknown_position_reported_and_left_alone(venue, tmp_path, keys):
    venue.state.new_order({"symbol": "BTCUSDT", "type": "MARKET", "side": "BUY",
                           "quantity": "0.005", "newClientOrderId": "manual-1"})
    broker, report = build(venue, tmp_path, keys)
    assert report.unknown_positions == [("BTC/USDT:USDT", 0.005)]
    assert report.adopted == [] and open_algos(venue) == []
    assert broker.ready


def test_unknown_position_adopted_gets_a_stop(venue, tmp_path, keys):
    venue.state.new_order({"symbol": "BTCUSDT", "type": "MARKET", "side": "BUY",
                           "quantity": "0.005", "newClientOrderId": "manual-1"})
    broker, report = build(venue, tmp_path, keys, adopt_unknown_positions=True)
    assert len(report.adopted) == 1
    [stop] = open_algos(venue)
    assert stop["quantity"] == "0.005" and float(stop["triggerPrice"]) == pytest.approx(58800.0)
