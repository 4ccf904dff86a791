"""A sliding window of spending: at most `capacity` units in any `window_ms` (the request
budget's reads and orders, exchange/request_budget.py; the notifications' rate limit,
notify/notifier.py)."""

from __future__ import annotations

from collections import deque


class SpendingWindow:
    """At most `capacity` units spent in any `window_ms`."""

    def __init__(self, capacity: float, window_ms: float) -> None:
        self.capacity, self.window_ms = capacity, window_ms
        self._spent: deque[tuple[float, float]] = deque()  # (when, units), oldest first
        self._in_window = 0.0

    def wait_ms(self, units: float, now_ms: float) -> float:
        """How long `units` must wait to fit (0: they fit now)."""
        self._forget_before(now_ms - self.window_ms)
        if self._in_window + units <= self.capacity or not self._spent:
            return 0.0
        left = self._in_window + units - self.capacity
        for when, spent in self._spent:
            left -= spent
            if left <= 0:
                return max(0.0, when + self.window_ms - now_ms)
        return max(0.0, self._spent[-1][0] + self.window_ms - now_ms)

    def spend(self, units: float, now_ms: float) -> None:
        self._spent.append((now_ms, units))
        self._in_window += units

    def _forget_before(self, cutoff_ms: float) -> None:
        spent = self._spent
        while spent and spent[0][0] <= cutoff_ms:
            self._in_window -= spent.popleft()[1]
