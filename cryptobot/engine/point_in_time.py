"""What was published by the engine's clock: samples in time order (open interest, funding)
and the funding rates that fall due on a base candle.

A live run's open-interest book forgets what is older than it `retain`s (polled every 30 s, it
would otherwise grow by 2,880 samples a day); a lookup before what it holds answers None, as for
a time before any sample.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Generic, TypeVar

import numpy as np

from cryptobot.clock import DAY_MS, MINUTE_MS, Clock
from cryptobot.data.funding_times import settlement_ms
from cryptobot.model import Candle, FundingRate, TradeLeg

T = TypeVar("T")


class PointInTimeBook(Generic[T]):
    """Samples in time order; lookups never see a sample later than the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._ts: list[int] = []
        self._items: list[T] = []
        self._keep_ms: int | None = None
        self._forgotten = 0

    def retain(self, keep_ms: int | None) -> None:
        """Forget samples older than `keep_ms` before the clock (None: keep all), but the last
        one before that (what a lookup in the span kept still finds); earlier lookups answer
        None."""
        self._keep_ms = keep_ms

    def add(self, ts_ms: int, item: T) -> bool:
        """True if the sample was kept (duplicates and stragglers: the first one seen wins)."""
        if self._ts and ts_ms <= self._ts[-1]:
            return False
        stamps = self._ts
        stamps.append(ts_ms)
        self._items.append(item)
        keep_ms = self._keep_ms
        if (keep_ms is not None and ts_ms - stamps[0] > keep_ms + DAY_MS  # a day's worth at once
                and stamps[0] < self.clock.now_ms() - keep_ms - DAY_MS):  # (not a backtest's later)
            cut = bisect.bisect_left(stamps, self.clock.now_ms() - keep_ms) - 1
            if cut > 0:  # the sample before the span kept stays
                del stamps[:cut], self._items[:cut]
                self._forgotten += cut
        return True

    def __len__(self) -> int:
        """Samples published by now, those forgotten included (a backtest may hold later ones
        already)."""
        return self._forgotten + bisect.bisect_right(self._ts, self.clock.now_ms())

    def last_at_or_before(self, ts_ms: int) -> T | None:
        i = bisect.bisect_right(self._ts, min(ts_ms, self.clock.now_ms())) - 1
        return self._items[i] if i >= 0 else None

    def stamped_between(self, first_ms: int, last_ms: int) -> list[T]:
        """The samples stamped first_ms..last_ms, none later than the clock."""
        last_ms = min(last_ms, self.clock.now_ms())
        return self._items[bisect.bisect_left(self._ts, first_ms):
                           bisect.bisect_right(self._ts, last_ms)]

    def all_stamps_ms(self) -> np.ndarray:
        """Every sample's time held, later ones included (a backtest plans its skipping with
        them)."""
        return np.array(self._ts, dtype=np.int64)


class FundingDue:
    """Which funding rates fall due on a base candle (the rule: cryptobot.data.funding_times):
    those settled after the position was taken and by the candle's open, published by the
    clock, each settlement once. What the candle's open holds then is what was held at the
    settlement, so the engine charges them before the candle's own fills."""

    def __init__(self, book: PointInTimeBook[FundingRate]) -> None:
        self.book = book
        self.through_ms: int | None = None  # the last settlement handed out
        self.charged_ms: list[int] = []  # the stamps of the rates charged, in order
        self._opens: dict[int, float] = {}  # recent base candles' opens, by their open time

    def saw_open(self, candle: Candle) -> None:
        """A base candle fed: its open is the price of a rate that settles in it and arrives
        late (a day of them is kept)."""
        opens = self._opens
        opens[candle.ts_open_ms] = candle.open
        if len(opens) > 4096:
            for ts_ms in [t for t in opens if t < candle.ts_open_ms - DAY_MS]:
                del opens[ts_ms]

    def held_when_due(self, rate: FundingRate, candle: Candle, remaining_qty: float,
                      legs: Sequence[TradeLeg]) -> tuple[float, float]:
        """(price, quantity) `rate` is charged on at `candle`: the candle's open and what is
        held; for a rate that arrived after its own candle, that candle's open (if seen) and
        what was held then (the exits filled since given back)."""
        settled = settlement_ms(rate.ts_ms)
        due_open_ms = -(-settled // candle.interval_ms) * candle.interval_ms
        if due_open_ms >= candle.ts_open_ms:
            return candle.open, remaining_qty
        exited = sum(leg.qty_base for leg in legs if leg.ts_ms >= due_open_ms)
        return self._opens.get(due_open_ms, candle.open), remaining_qty + exited

    def at_open_of(self, candle: Candle, held_since_ms: int) -> list[FundingRate]:
        """Rates settled in (held_since_ms, candle open], not handed out before."""
        after = held_since_ms if self.through_ms is None else max(held_since_ms,
                                                                  self.through_ms)
        first_ms = settlement_ms(after) + MINUTE_MS  # settled strictly after `after`
        rates = self.book.stamped_between(first_ms,
                                          settlement_ms(candle.ts_open_ms) + MINUTE_MS - 1)
        due, last = [], None
        for rate in rates:
            settled = settlement_ms(rate.ts_ms)
            if settled > candle.ts_open_ms or (last is not None and settled <= last):
                continue  # a candle not opening on a minute; or the same settlement again
            due.append(rate)
            last = settled
        if due:
            self.through_ms = last
        return due

    def charged(self, rate: FundingRate) -> None:
        """The engine charged `rate` to a position (the summary counts them)."""
        self.charged_ms.append(rate.ts_ms)

    def due_candles(self, ts_open_ms: np.ndarray, interval_ms: int) -> np.ndarray:
        """Per base candle (sorted opens), whether a rate of the book falls due on it: the
        first candle opening at or after the rate's settlement whose close has published it."""
        stamps = self.book.all_stamps_ms()
        mask = np.zeros(len(ts_open_ms), dtype=bool)
        if not len(stamps) or not len(ts_open_ms):
            return mask
        settled = settlement_ms(stamps)
        first = np.maximum(np.searchsorted(ts_open_ms, settled, side="left"),
                           np.searchsorted(ts_open_ms + interval_ms, stamps, side="left"))
        mask[first[first < len(ts_open_ms)]] = True
        return mask
