"""Forced orders (Binance forceOrder, Bybit allLiquidation) and the spans their source covered.

No event in a span is a quiet market only where the source was listening: before a stream
started, or inside a recorder's gap, the answer is "unknown" (None), never "no liquidations".
A stream declares its coverage per connection: `listening_since` at its first message,
`stopped_listening` at its last one before a drop or a rotation (the outage between two
connections is unknown). A file reader declares with `cover` what each record shows once it is
read: the span from the file's previous record, if no longer ago than the file can vouch for;
such a span is known only from the record's own time on (`known_ms`), so a backtest may hand
them all over up front without looking ahead. After the last record read, the silence so far
counts as listened to while it is no longer than the file vouches for (`silence_ms`, the
same rule as between two records): what the clock has seen decides, never a later record.
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
        self._pending: list[tuple[int, int, int, int]] = []  # (known, start, end, silence)
        self._pending_i = 0
        self._last_record: tuple[int, int] | None = None  # (its end, silence vouched after it)
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
        self._take_known()
        cut = bisect.bisect_left(self._ts, cutoff_ms)
        del self._ts[:cut], self._events[:cut]
        self._spans = [(max(start, cutoff_ms), end) for start, end in self._spans
                       if end is None or end > cutoff_ms]

    def cover(self, start_ms: int, end_ms: int | None, known_ms: int | None = None,
              silence_ms: int = 0) -> None:
        """The source was listening over [start_ms, end_ms) (None: from then on); `known_ms`:
        from when on that is known (None: now), spans known later given in their time order;
        `silence_ms`: a recorder's span, vouching for that long a silence after it as it
        passes."""
        if known_ms is not None and end_ms is not None and known_ms > self.clock.now_ms():
            self._pending.append((known_ms, start_ms, end_ms, silence_ms))
            return
        self._take(start_ms, end_ms, silence_ms)

    def _take(self, start_ms: int, end_ms: int | None, silence_ms: int) -> None:
        self._merge_span(start_ms, end_ms)
        if silence_ms and end_ms is not None and (self._last_record is None
                                                  or end_ms >= self._last_record[0]):
            self._last_record = (end_ms, silence_ms)

    def _merge_span(self, start_ms: int, end_ms: int | None) -> None:
        last = self._spans[-1] if self._spans else None
        if last is not None and start_ms >= last[0]:  # sorts last (a file's records in order):
            last_start, last_end = last                 # the merge below, without sorting all
            if last_end is None or start_ms <= last_end:
                self._spans[-1] = (last_start, None if end_ms is None or last_end is None
                                   else max(last_end, end_ms))
            else:
                self._spans.append((start_ms, end_ms))
            return
        spans = sorted([*self._spans, (start_ms, end_ms)],  # an open end (None) after all
                       key=lambda span: (span[0], span[1] is None, span[1] or 0))
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

    def stopped_listening(self, end_ms: int) -> None:
        """The stream that was listening delivered its last message at `end_ms` (exclusive):
        after it, until a stream starts again, nothing is covered."""
        self._spans = [(start, end_ms if end is None else end) for start, end in self._spans
                       if end is not None or end_ms > start]

    def spans(self) -> tuple[tuple[int, int | None], ...]:
        """The spans covered as known now."""
        self._take_known()
        return tuple(self._spans)

    def _take_known(self) -> None:
        now_ms, pending = self.clock.now_ms(), self._pending
        while self._pending_i < len(pending) and pending[self._pending_i][0] <= now_ms:
            self._take(*pending[self._pending_i][1:])
            self._pending_i += 1
        if self._pending_i > 4096:  # what was taken is dropped now and then, not every time
            del pending[:self._pending_i]
            self._pending_i = 0

    def covers(self, start_ms: int, end_ms: int) -> bool:
        """Whether [start_ms, end_ms) was listened to in full, as known now."""
        if end_ms > self.clock.now_ms() + 1:
            return False
        self._take_known()
        spans = self._spans
        if self._last_record is not None:  # the recorder's silence since, while vouched for
            last_end_ms, silence_ms = self._last_record
            now_ms = self.clock.now_ms()
            if now_ms - (last_end_ms - 1) <= silence_ms:
                spans = [(start, now_ms + 1 if end == last_end_ms else end)
                         for start, end in spans]
        return any(start <= start_ms and (end is None or end >= end_ms)
                   for start, end in spans)

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
