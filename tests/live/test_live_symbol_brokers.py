"""One LiveBroker for the whole account, a SymbolBroker per symbol, against the fake Binance
serving BTCUSDT (60,000) and ETHUSDT (2,500) on 127.0.0.1: each symbol's fills and order updates
reach that symbol's engine only; start-up sets each symbol up; reconciliation (at start, on the
timer, after a user-stream reconnect) covers every symbol against its own price."""

from __future__ import annotations

import pytest

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.brokers.live.symbol_broker import symbol_brokers
from cryptobot.engine.risk import KillSwitch
from cryptobot.model import Candle, OrderIntent, OrderPurpose, OrderType, Side
from tests.live.conftest import VenueClock, live_settings

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def two_symbol_settings(tmp_path, **live):
    return live_settings(tmp_path, **live).with_symbols((BTC, ETH))


def build(venue, settings, keys):
    return build_live_broker(settings, keys, VenueClock(venue.state),
                             KillSwitch(settings.risk.kill_switch_file), rest_url=venue.base_url,
                             sleep=lambda s: None, rate_limit=False)


class Seen:
    """What one symbol's engine is told."""

    def __init__(self) -> None:
        self.fills, self.orders = [], []

    def bind(self, broker) -> None:
        broker.bind(self.fills.append, self.orders.append)


def entry(symbol: str, signal_id: str, qty: float, stop: float) -> OrderIntent:
    return OrderIntent(f"{signal_id}-entry", symbol, Side.BUY, OrderType.MARKET, qty,
                       OrderPurpose.ENTRY, stop_price=stop)


def stop(symbol: str, signal_id: str, qty: float, price: float) -> OrderIntent:
    return OrderIntent(f"{signal_id}-stop1", symbol, Side.SELL, OrderType.STOP_MARKET, qty,
                       OrderPurpose.STOP, price, True)


def candle(venue, market: str, symbol: str) -> Candle:
    price = float(venue.state.prices[market])
    return Candle(venue.state.now_ms - 60_000, 60_000, price, price, price, price, 1.0, symbol)


def test_each_symbols_fills_and_order_updates_reach_that_symbols_engine_only(
        two_markets, tmp_path, keys):
    broker, _ = build(two_markets, two_symbol_settings(tmp_path), keys)
    views = symbol_brokers(broker, (BTC, ETH))
    seen = {BTC: Seen(), ETH: Seen()}
    for symbol, view in views.items():
        seen[symbol].bind(view)
    views[ETH].submit(entry(ETH, "ETHUSDT-1", 0.2, 2450.0))
    views[ETH].submit(stop(ETH, "ETHUSDT-1", 0.2, 2450.0))
    assert seen[BTC].fills == [] and seen[BTC].orders == []
    assert [f.symbol for f in seen[ETH].fills] == [ETH]
    assert {e.intent.client_id for e in seen[ETH].orders} == {"ETHUSDT-1-entry",
                                                              "ETHUSDT-1-stop1"}
    views[BTC].submit(entry(BTC, "BTCUSDT-1", 0.01, 59000.0))
    views[BTC].submit(stop(BTC, "BTCUSDT-1", 0.01, 59000.0))
    assert [f.symbol for f in seen[BTC].fills] == [BTC]
    assert all(e.intent.symbol == ETH for e in seen[ETH].orders)
    # each view works its own symbol's orders only; the broker has them all
    assert [i.client_id for i in views[BTC].working_orders()] == ["BTCUSDT-1-stop1"]
    assert [i.client_id for i in views[ETH].working_orders()] == ["ETHUSDT-1-stop1"]
    assert len(broker.working_orders()) == 2
    # an order of another symbol through a view is a bug, refused before anything is sent
    sends = broker.gateway.sends
    with pytest.raises(ValueError, match="sent through the broker of ETH"):
        views[ETH].submit(entry(BTC, "BTCUSDT-2", 0.01, 59000.0))
    with pytest.raises(ValueError, match="is an order of BTC"):
        views[ETH].cancel("BTCUSDT-1-stop1")
    assert broker.gateway.sends == sends
    # the ETH stop fires on the venue: its fill and end reach ETH's engine, not BTC's
    btc_told = len(seen[BTC].orders)
    two_markets.state.set_price_scripted(2440.0, "ETHUSDT")
    broker.on_timer(poll=True)
    assert [f.purpose for f in seen[ETH].fills] == [OrderPurpose.ENTRY, OrderPurpose.STOP]
    assert len(seen[BTC].orders) == btc_told and len(seen[BTC].fills) == 1
    assert [p.symbol for p in broker.state.positions()] == [BTC]


def test_start_sets_each_symbol_up_and_reports_other_symbols_unknown_positions(
        two_markets, tmp_path, keys):
    state = two_markets.state
    state.new_order({"symbol": "BTCUSDT", "type": "MARKET", "side": "BUY",
                     "quantity": "0.005", "newClientOrderId": "manual-1"})
    settings = live_settings(tmp_path).with_symbols((ETH,))  # the run trades ETH only
    broker, report = build(two_markets, settings, keys)
    assert report.unknown_positions == [(BTC, 0.005)]  # reported, left alone, as ever
    assert state.open_algo_orders() == []
    assert state.position("ETHUSDT").leverage == 3
    assert state.position("ETHUSDT").margin_type == "isolated"
    assert state.position("BTCUSDT").leverage == 20  # not this run's: left as it was

    broker.state.close()
    build(two_markets, two_symbol_settings(tmp_path / "both"), keys)  # now BTC and ETH
    hedge_checks = [path for _, path in state.requests if path == "/fapi/v1/positionSide/dual"]
    assert len(hedge_checks) == 2  # once per start, whatever the number of symbols
    leverage_sets = [path for method, path in state.requests
                     if (method, path) == ("POST", "/fapi/v1/leverage")]
    assert len(leverage_sets) == 1 + 2  # ETH's at the first start, each symbol's at this one
    assert state.position("BTCUSDT").leverage == 3 and state.position("ETHUSDT").leverage == 3
    assert state.position("BTCUSDT").margin_type == "cross"  # a position is open: kept


@pytest.mark.parametrize("when", ["timer", "reconnect"])
def test_reconciliation_covers_every_symbol_against_its_own_price(
        two_markets, tmp_path, keys, when):
    """ETH's stop vanishes from the venue (cancelled by hand): the next reconciliation puts a
    stop back for all of ETH, at its stored price, judged against ETH's price (a BTC price
    would call 2,450 already passed and close the position instead)."""
    settings = two_symbol_settings(tmp_path, reconcile_interval_s=600.0)
    broker, _ = build(two_markets, settings, keys)
    views = symbol_brokers(broker, (BTC, ETH))
    for view in views.values():
        Seen().bind(view)
    for symbol, market, qty, price in ((BTC, "BTCUSDT", 0.01, 59000.0),
                                       (ETH, "ETHUSDT", 0.2, 2450.0)):
        views[symbol].submit(entry(symbol, f"{market}-1", qty, price))
        views[symbol].submit(stop(symbol, f"{market}-1", qty, price))
        views[symbol].on_base_candle(candle(two_markets, market, symbol))
    assert broker.last_prices == {BTC: 60000.0, ETH: 2500.0}
    state = two_markets.state
    state.cancel_algo_order(None, "ETHUSDT-1-stop1")
    if when == "timer":
        state.now_ms += 600_000
        broker.on_timer()
    else:
        broker.after_reconnect()
        broker.on_timer()
    [eth_stop] = state.open_algo_orders("ETHUSDT")
    assert eth_stop["clientAlgoId"].startswith("ETHUSDT-1-rstop")
    assert float(eth_stop["quantity"]) == 0.2 and float(eth_stop["triggerPrice"]) == 2450.0
    [btc_stop] = state.open_algo_orders("BTCUSDT")
    assert btc_stop["clientAlgoId"] == "BTCUSDT-1-stop1"
    assert float(state.position("ETHUSDT").qty) == 0.2


def two_positions(venue, tmp_path, keys):
    """A broker holding a BTC and an ETH position, each under its stop."""
    broker, _ = build(venue, two_symbol_settings(tmp_path), keys)
    views = symbol_brokers(broker, (BTC, ETH))
    for symbol, market, qty, price in ((BTC, "BTCUSDT", 0.01, 59000.0),
                                       (ETH, "ETHUSDT", 0.2, 2450.0)):
        Seen().bind(views[symbol])
        views[symbol].submit(entry(symbol, f"{market}-1", qty, price))
        views[symbol].submit(stop(symbol, f"{market}-1", qty, price))
    return broker


def test_flatten_all_closes_every_symbol(two_markets, tmp_path, keys):
    broker = two_positions(two_markets, tmp_path, keys)
    broker.flatten_all("kill switch file found")
    state = two_markets.state
    for market in ("BTCUSDT", "ETHUSDT"):
        assert float(state.position(market).qty) == 0
    assert state.open_orders() == [] and state.open_algo_orders() == []
    assert broker.state.positions() == []
