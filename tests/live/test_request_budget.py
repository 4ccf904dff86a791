"""The sync clients' rate limit (cryptobot/exchange/request_budget.py): reads spend ccxt's costs
at ccxt's sustained rate, but a burst goes at once, where ccxt's throttle spaced each order
200 ms after the previous request; orders count against Binance's order counts, apart, so a
stop never waits behind reads."""

from __future__ import annotations

import ccxt

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.request_budget import RequestBudget
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side


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
    assert limited.throttle == limited.request_budget.spend
    assert isinstance(limited.request_budget, RequestBudget)
    assert limited.request_budget.capacity == 10_000 / limited.rateLimit
    unlimited = make_exchange("binanceusdm", rest_url="http://127.0.0.1:9", rate_limit=False)
    assert not unlimited.enableRateLimit
    assert isinstance(limited, ccxt.binanceusdm)


def test_an_order_never_waits_behind_reads_and_the_order_counts_hold():
    """A reconciliation of many symbols spends the reads' window: the entry's stop goes at once
    (Binance weighs a new order 0 on the IP limit); orders wait only past the order counts,
    and what the event caused is stored before any wait (`before_sleep`)."""
    clock = FakeTime()
    budget = RequestBudget(50, window_ms=10_000, order_windows=((10_000, 5.0), (60_000, 8.0)),
                           now_ms=clock.now_ms, sleep=clock.sleep)
    flushed: list[float] = []
    budget.before_sleep = lambda: flushed.append(clock.ms)
    for _ in range(50):  # 200 read units: the window is spent
        budget.spend(4)
    budget.order_next()
    budget.spend(4)  # the stop
    assert clock.slept_ms == [] and flushed == []
    budget.spend(1)  # the next read waits for the first reads to age out
    assert clock.slept_ms == [10_000.0] and flushed == [clock.ms - 10_000.0]
    for _ in range(5):  # the stop has aged out of the 10 s window: 5 orders at once
        budget.order_next()
        budget.spend(4)
    assert len(clock.slept_ms) == 1
    budget.order_next()
    budget.spend(4)  # the 6th in 10 s waits for the first to age out
    assert len(clock.slept_ms) == 2 and 0 < clock.slept_ms[-1] <= 10_000
    clock.ms += 10_001
    budget.order_next()
    budget.spend(4)  # the 8th in a minute (the stop's included) fits
    assert len(clock.slept_ms) == 2
    clock.ms += 10_001
    budget.order_next()
    budget.spend(4)  # the 9th in a minute waits on the minute's count
    assert len(clock.slept_ms) == 3 and clock.slept_ms[-1] > 10_000


def test_the_gateway_sends_a_stop_at_once_when_reads_have_spent_their_window(venue, keys):
    """Against the fake venue, rate limited as live: the reads' window spent (a burst of
    reconciliation), the stop goes without a wait; the next read waits."""
    exchange = make_exchange("binanceusdm", rest_url=venue.base_url, api_keys=keys,
                             options={"fetchCurrencies": False})
    budget = exchange.request_budget
    slept: list[float] = []
    budget._sleep = slept.append  # a wait would be recorded, not slept
    gateway = OrderGateway(exchange, sleep=slept.append)
    gateway.load_markets()
    budget.reads.spend(budget.capacity, budget._now_ms())  # the window, spent
    stop = OrderIntent("T-1-stop", "BTC/USDT:USDT", Side.SELL, OrderType.STOP_MARKET, 0.01,
                       OrderPurpose.STOP, price=50_000.0)
    assert gateway.place(stop).client_id == "T-1-stop"
    assert slept == []
    gateway.lookup(stop)
    assert len(slept) == 1 and slept[0] > 5  # a read waits for the window to age out


def test_a_batch_of_orders_counts_as_binance_counts_it():
    """POST /fapi/v1/batchOrders: 5 on the 10 s order count, 1 on the minute's, and its
    weight (ccxt's cost) on the IP's, as a read's."""
    clock = FakeTime()
    budget = RequestBudget(50, window_ms=10_000, order_windows=((10_000, 10.0), (60_000, 8.0)),
                           now_ms=clock.now_ms, sleep=clock.sleep)
    budget.order_next(batch=True)
    budget.spend(5)
    budget.order_next(batch=True)
    budget.spend(5)  # 10 of 10 in the window: fits
    assert clock.slept_ms == []
    reads = budget.reads  # 10 of its 200 spent by the two batches
    assert reads.wait_ms(budget.capacity - 10, clock.ms) == 0 < reads.wait_ms(
        budget.capacity - 9, clock.ms)
    budget.order_next()
    budget.spend(4)  # an 11th in 10 s waits
    assert len(clock.slept_ms) == 1 and 0 < clock.slept_ms[0] <= 10_000
    for _ in range(5):  # one each on the minute's count: 8 of its 8 (5 each would wait)
        clock.ms += 10_001
        budget.order_next(batch=True)
        budget.spend(5)
    assert len(clock.slept_ms) == 1


def test_a_batch_fits_order_windows_other_than_binances_two():
    """A configured third window (or one) takes a batch as Binance would: 5 on a window of
    at most 10 s, 1 on a longer one."""
    clock = FakeTime()
    budget = RequestBudget(50, order_windows=((1_000, 5.0), (10_000, 9.0), (60_000, 3.0)),
                           now_ms=clock.now_ms, sleep=clock.sleep)
    budget.order_next(batch=True)
    budget.spend(5)
    assert clock.slept_ms == []
    budget.order_next()
    budget.spend(4)  # a 6th on the 1 s window waits for it
    assert len(clock.slept_ms) == 1 and 0 < clock.slept_ms[0] <= 1_000
