"""429s, 5xx and timeouts on 20% of private calls: the trade completes with no duplicate order."""

from __future__ import annotations

from collections import Counter

import pytest

from cryptobot.brokers.live.setup import build_live_broker
from cryptobot.engine.risk import KillSwitch
from cryptobot.model import OrderPurpose
from tests.live.conftest import VenueClock, live_settings
from tests.live.trade_driver import TradeDriver


def test_faults_on_20_percent_of_calls_make_no_duplicate_orders(venue, tmp_path, keys):
    settings = live_settings(tmp_path, retry_attempts=8)
    venue.faults.rate = 0.2
    broker, _ = build_live_broker(settings, keys, VenueClock(venue.state),
                                  KillSwitch(settings.risk.kill_switch_file),
                                  rest_url=venue.base_url, sleep=lambda s: None)
    driver = TradeDriver(broker, "sigF", qty=0.02, stop=59000.0, tp1=61000.0, tp2=62500.0)
    driver.enter()
    for _ in range(3):
        venue.state.step_scripted()
        broker.poll()
    state = venue.state
    regular = Counter(o["clientOrderId"] for o in state.orders.values())
    algos = Counter(a["clientAlgoId"] for a in state.algo_orders.values())
    injected = venue.faults.injected
    print("faults injected:", dict(injected), "order sends:", broker.gateway.sends)
    assert sum(injected.values()) >= 10
    assert injected.get("timeout_after", 0) + injected.get("502_after", 0) >= 1  # done, answer lost
    # each client id reached the venue once (the triggered stop's child carries the algo's id)
    assert max(regular.values()) == 1, regular
    assert max(algos.values()) == 1, algos
    assert regular["sigF-entry"] == 1
    assert [f.purpose for f in driver.fills] == [
        OrderPurpose.ENTRY, OrderPurpose.TP1, OrderPurpose.TP2]
    assert float(state.position("BTCUSDT").qty) == 0
    assert broker.state.position("sigF").qty_base == pytest.approx(0.0)
    assert state.open_algo_orders() == [] and state.open_orders() == []
