"""The sync clients' rate limit (cryptobot/exchange/request_budget.py): ccxt's costs at ccxt's
sustained rate, but an order burst (an entry's stop and targets) goes at once, where ccxt's
throttle spaced each order 200 ms after the previous request."""

from __future__ import annotations

import ccxt

from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.request_budget import RequestBudget


class FakeTime:
    def __init__(self) -> None:
        self.ms = 1_000_000.0
        self.slept_ms: list[float] = []

    def now_ms(self) -> float:
        return self.ms

    def sleep(self, seconds: float) -> None:
        self.slept_ms.append(seconds * 1000)
        self.ms += seconds * 1000


def test_a_burst_goes_at_once_the_sustained_rate_is_ccxts():
    clock = FakeTime()
    budget = RequestBudget(50, window_ms=10_000, now_ms=clock.now_ms, sleep=clock.sleep)
    for _ in range(4):  # entry, stop, tp1, tp2: cost 4 each on binanceusdm
        budget.spend(4)
    assert clock.slept_ms == []  # ccxt's throttle: 3 x ~200 ms
    for _ in range(46):  # 200 units in the window: spent
        budget.spend(4)
    assert clock.slept_ms == []
    budget.spend(4)  # waits until the first 4 units are 10 s old
    assert clock.slept_ms == [10_000.0]
    started = clock.ms
    for _ in range(500):
        budget.spend(4)
    rate_ms_per_unit = (clock.ms - started) / (500 * 4)
    assert 49.0 <= rate_ms_per_unit <= 51.0  # ccxt's rateLimit over a long run


def test_a_quiet_window_is_spent_again_without_waiting():
    clock = FakeTime()
    budget = RequestBudget(50, window_ms=10_000, now_ms=clock.now_ms, sleep=clock.sleep)
    for _ in range(50):
        budget.spend(4)
    clock.ms += 10_001
    budget.spend(4)
    assert clock.slept_ms == []


def test_the_live_brokers_client_spends_from_a_budget_not_ccxts_throttle():
    limited = make_exchange("binanceusdm", rest_url="http://127.0.0.1:9")
    assert limited.enableRateLimit
    assert limited.throttle.__self__.__class__ is RequestBudget
    assert limited.throttle.__self__.capacity == 10_000 / limited.rateLimit
    unlimited = make_exchange("binanceusdm", rest_url="http://127.0.0.1:9", rate_limit=False)
    assert not unlimited.enableRateLimit
    assert isinstance(limited, ccxt.binanceusdm)
