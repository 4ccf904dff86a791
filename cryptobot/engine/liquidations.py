"""Forced orders (Binance forceOrder, Bybit allLiquidation) and the spans their source covered.

No event in a span is a quiet market only where the source was listening: before a stream
started, or inside a recorder's gap, the answer is "unknown" (None), never "no liquidations".
A stream declares its coverage with `listening_since`, a file reader with `cover` (its records
cut at every silence longer than the file can vouch for).
"""

from __future__ import annotations

import bisect

from cryptobot.clock import DAY_MS, Clock
from cryptobot.model import Liquidation


class LiquidationBook:
    """Point in time: a lookup never sees an event, or a covered span, later than the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._ts: list[int] = []
        self._events: list[Liquidation] = []
        self._spans: list[tuple[int, int | None]] = []  # [start, end); None: still listening
        self._keep_ms: int | None = None

    def retain(self, keep_ms: int) -> None:
        """Forget what is older than `keep_ms` before the clock (a live run's memory stays
        bounded); what was forgotten is no longer covered: unknown, never "none"."""
        self._keep_ms = keep_ms

    def add(self, event: Liquidation) -> None:
        i = bisect.bisect_right(self._ts, event.ts_ms)  # streams deliver in time order; a
        self._ts.insert(i, event.ts_ms)                 # straggler still lands in place
        self._events.insert(i, event)
        if self._keep_ms is not None and self._ts[0] < self.clock.now_ms() - self._keep_ms - DAY_MS:
            self._forget_before(self.clock.now_ms() - self._keep_ms)  # a day's worth at once

    def _forget_before(self, cutoff_ms: int) -> None:
        cut = bisect.bisect_left(self._ts, cutoff_ms)
        del self._ts[:cut], self._events[:cut]
        self._spans = [(max(start, cutoff_ms), end) for start, end in self._spans
                       if end is None or end > cutoff_ms]

    def cover(self, start_ms: int, end_ms: int | None) -> None:
        """The source was listening over [start_ms, end_ms) (None: from then on)."""
        spans = sorted([*self._spans, (start_ms, end_ms)])
        merged: list[tuple[int, int | None]] = []
        for start, end in spans:
            if merged and (merged[-1][1] is None or start <= merged[-1][1]):
                last_start, last_end = merged[-1]
                merged[-1] = (last_start, None if end is None or last_end is None
                              else max(last_end, end))
            else:
                merged.append((start, end))
        self._spans = merged

    def listening_since(self, start_ms: int) -> None:
        """A stream is delivering from `start_ms` on (once per stream start)."""
        self.cover(start_ms, None)

    def spans(self) -> tuple[tuple[int, int | None], ...]:
        return tuple(self._spans)

    def covers(self, start_ms: int, end_ms: int) -> bool:
        """Whether [start_ms, end_ms) was listened to in full, as known now."""
        if end_ms > self.clock.now_ms() + 1:
            return False
        return any(start <= start_ms and (end is None or end >= end_ms)
                   for start, end in self._spans)

    def between(self, start_ms: int, end_ms: int) -> list[Liquidation] | None:
        """Liquidations in [start_ms, end_ms) (cut at the clock); None unless covered."""
        end_ms = min(end_ms, self.clock.now_ms() + 1)
        if end_ms <= start_ms or not self.covers(start_ms, end_ms):
            return None
        return self._slice(start_ms, end_ms)

    def notional_between(self, start_ms: int, end_ms: int) -> float | None:
        """USDT liquidated in [start_ms, end_ms), both sides; None unless the whole window has
        passed and was covered."""
        if not self.covers(start_ms, end_ms):
            return None
        return sum(e.price * e.qty_base for e in self._slice(start_ms, end_ms))

    def _slice(self, start_ms: int, end_ms: int) -> list[Liquidation]:
        lo, hi = bisect.bisect_left(self._ts, start_ms), bisect.bisect_left(self._ts, end_ms)
        return self._events[lo:hi]
