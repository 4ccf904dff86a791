"""A request budget in place of ccxt's per-call throttle, for the synchronous clients (orders).

ccxt's sync throttle spaces EVERY call `rateLimit x cost` ms after the previous one: on
binanceusdm 50 ms x 4 for an order, so the stop sent on an entry's fill waited ~200 ms, and
each take-profit 200 ms more, while the venue's limits allow such a burst many times over.
Binance USD-M counts two things apart: request weight per IP (2,400 a minute), which reads
spend and a new order does not (its weight there is 0), and orders per account (300 in 10 s,
1,200 a minute).

`RequestBudget` keeps both. Reads spend ccxt's costs at ccxt's sustained rate, one cost unit
per `rateLimit` ms (ccxt's costs are Binance's weights, scaled so that this rate stays under its
limit), over a window: at most `window_ms / rateLimit` units in any `window_ms`; a read waits
only when the window is spent, until enough of it has aged out. An order (the gateway says so
with `order_next` just before it) spends one from the order windows instead, kept under
Binance's counts (240 in 10 s, 1,000 a minute): a stop never waits behind a burst of reads (a
reconciliation of many symbols), only, in theory, behind hundreds of orders. The venue's own
429/418 answers are still obeyed (brokers/live/venue_wait.py). Before it sleeps, the budget
calls `before_sleep` (live: what the event so far caused is stored and logged first).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptobot.spending_window import SpendingWindow

WINDOW_MS = 10_000  # Binance's shortest order-count window
# Binance USD-M's order counts per account (300 in 10 s, 1,200 a minute), kept under
ORDER_WINDOWS = ((10_000, 240.0), (60_000, 1_000.0))
# what one POST /fapi/v1/batchOrders spends of a window of at most 10 s (5) and of a longer
# one (1), as Binance counts it; it weighs 5 on the IP's request weight too (ccxt's cost)
BATCH_SHORT_WINDOW_MS, BATCH_SHORT_UNITS = 10_000, 5.0


class RequestBudget:
    """`spend(cost)` is ccxt's `throttle(cost)`; `now_ms` and `sleep` are injectable (tests)."""

    def __init__(self, rate_limit_ms: float, window_ms: int = WINDOW_MS,
                 order_windows: tuple[tuple[int, float], ...] = ORDER_WINDOWS,
                 now_ms: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.reads = SpendingWindow(window_ms / max(rate_limit_ms, 1e-9), window_ms)
        self.orders = tuple(SpendingWindow(count, ms) for ms, count in order_windows)
        self._batch_units = tuple(BATCH_SHORT_UNITS if ms <= BATCH_SHORT_WINDOW_MS else 1.0
                                  for ms, _ in order_windows)
        self._now_ms = now_ms or (lambda: time.monotonic() * 1000.0)
        self._sleep = sleep
        self._order_next: tuple[float, ...] | None = None
        self._batch_next = False
        self.before_sleep: Callable[[], None] | None = None
        self.waited_ms = 0.0  # in all (tests, logs)

    @property
    def capacity(self) -> float:
        """Read cost units per window."""
        return self.reads.capacity

    def order_next(self, batch: bool = False) -> None:
        """The next request places an order (`batch`: several in one request, Binance's
        batchOrders): it spends from the order counts, not the reads' (a batch: from both)."""
        self._order_next = self._batch_units if batch else (1.0,) * len(self.orders)
        self._batch_next = batch

    def spend(self, cost: float | None = None) -> None:
        if self._order_next is not None:
            spending = list(zip(self.orders, self._order_next, strict=True))
            if self._batch_next:  # a batch also weighs on the IP: its cost, as a read's
                spending.append((self.reads, 1.0 if cost is None else float(cost)))
            self._order_next, self._batch_next = None, False
        else:
            spending = [(self.reads, 1.0 if cost is None else float(cost))]
        now = self._now_ms()
        wait_ms = max(window.wait_ms(units, now) for window, units in spending)
        if wait_ms > 0:
            if self.before_sleep is not None:
                self.before_sleep()
            self.waited_ms += wait_ms
            self._sleep(wait_ms / 1000.0)
            now = self._now_ms()
        for window, units in spending:
            window.spend(units, now)
