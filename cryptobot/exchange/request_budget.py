"""A request budget in place of ccxt's per-call throttle, for the synchronous clients (orders).

ccxt's sync throttle spaces EVERY call `rateLimit x cost` ms after the previous one: on
binanceusdm 50 ms x 4 for an order, so the stop sent on an entry's fill waited ~200 ms, and
each take-profit 200 ms more, while the venue's limits (Binance USD-M: 2,400 request weight a
minute per IP; 300 orders in 10 s, 1,200 a minute per account) allow such a burst many times
over. `RequestBudget` spends the same ccxt costs at the same sustained rate, one cost unit per
`rateLimit` ms (ccxt's costs are Binance's weights, scaled so that this rate stays under its
limits), but over a window: at most `window_ms / rateLimit` units in any `window_ms`. A call
waits only when the window is spent, until enough of it has aged out; an order after a quiet
moment goes at once. The venue's own 429/418 answers are still obeyed (brokers/live/
venue_wait.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW_MS = 10_000  # Binance's shortest order-count window


class RequestBudget:
    """`spend(cost)` is ccxt's `throttle(cost)`; `now_ms` and `sleep` are injectable (tests)."""

    def __init__(self, rate_limit_ms: float, window_ms: int = WINDOW_MS,
                 now_ms: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.capacity = window_ms / max(rate_limit_ms, 1e-9)  # cost units per window
        self.window_ms = window_ms
        self._now_ms = now_ms or (lambda: time.monotonic() * 1000.0)
        self._sleep = sleep
        self._spent: deque[tuple[float, float]] = deque()  # (when, cost), oldest first
        self._in_window = 0.0
        self.waited_ms = 0.0  # in all (tests, logs)

    def spend(self, cost: float | None = None) -> None:
        cost = 1.0 if cost is None else float(cost)
        now = self._now_ms()
        self._forget_before(now - self.window_ms)
        if self._in_window + cost > self.capacity and self._spent:
            wait_ms = self._aged_out_ms(cost) - now
            if wait_ms > 0:
                self.waited_ms += wait_ms
                self._sleep(wait_ms / 1000.0)
                now = self._now_ms()
                self._forget_before(now - self.window_ms)
        self._spent.append((now, cost))
        self._in_window += cost

    def _forget_before(self, cutoff_ms: float) -> None:
        spent = self._spent
        while spent and spent[0][0] <= cutoff_ms:
            self._in_window -= spent.popleft()[1]

    def _aged_out_ms(self, cost: float) -> float:
        """When enough of the window's spending has aged out for `cost` to fit."""
        left = self._in_window + cost - self.capacity
        for when, spent in self._spent:
            left -= spent
            if left <= 0:
                return when + self.window_ms
        return self._spent[-1][0] + self.window_ms
