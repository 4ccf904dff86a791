"""The live broker against the fake Binance USD-M server: real ccxt calls over 127.0.0.1. (Whole
trades go through the real engine: test_live_session.py, test_live_protection.py.)"""

from __future__ import annotations

import pytest

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import OrderRejectedError, ReconciliationError
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from tests.live.conftest import VenueClock, live_settings

SYMBOL = "BTC/USDT:USDT"


def no_sleep(_seconds: float) -> None:
    return None


def build(venue, tmp_path, keys, **live):
    settings = live_settings(tmp_path, **live)
    return build_live_broker(settings, keys, VenueClock(venue.state),
                             KillSwitch(settings.risk.kill_switch_file), rest_url=venue.base_url,
                             sleep=no_sleep, rate_limit=False)


def open_algos(venue):
    return venue.state.open_algo_orders("BTCUSDT")


def test_min_notional_and_rails_checked_before_sending(venue, tmp_path, keys):
    broker, _ = build(venue, tmp_path, keys)
    sends_before = broker.gateway.sends
    with pytest.raises(OrderRejectedError, match="rounds to 0"):
        broker.submit(OrderIntent("sig4-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.0009,
                                  OrderPurpose.ENTRY))
    broker.last_prices[SYMBOL] = 5000.0  # the last candle closed there: 0.001 x 5000 < 10
    with pytest.raises(OrderRejectedError, match="below the market minimum 10 USDT"):
        broker.submit(OrderIntent("sig4-entry", SYMBOL, Side.BUY, OrderType.MARKET, 0.001,
                                  OrderPurpose.ENTRY))
    broker.last_prices.clear()
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


def test_a_start_step_that_fails_for_a_while_is_tried_again(venue, tmp_path, keys):
    """The first private calls answer 5xx past the gateway's own retries: the start step is
    tried again (a restart protects sooner this way than by exiting for a supervisor)."""
    venue.faults.script(["5xx", "5xx", "5xx"])
    broker, report = build(venue, tmp_path, keys, retry_attempts=2)
    assert broker.ready and report.unknown_positions == []
    assert venue.faults.injected == {"5xx": 3}
