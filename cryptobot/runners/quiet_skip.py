"""The fast way to feed the engine in a backtest: precompute, then skip what is provably quiet.

The engine code is the live engine's. What changes is only which base candles reach it:
- the signal candles and the day VWAPs are computed once with numpy (`precompute`), and the
  engine reads them through `PrecomputedAggregator` and its `MarketView` (same contracts as the
  incremental ones, same numbers bit for bit); the strategy's indicators and trigger are then
  computed over the whole series at once;
- while nothing is open and the strategy is not waiting, only base candles that close a signal
  candle where the strategy's trigger holds are fed: the engine gives the strategy no other
  candle in any mode, so nothing is written twice and nothing can differ;
- otherwise a base candle is skipped when its range touches no working order (the paper
  broker's `quiet_band`), no market order works, it closes no signal candle (or one that would
  change nothing: `Engine.holds_quietly`, strategy not waiting, no trigger), no time stop falls
  due, and it crosses no UTC day and no funding time.
Signal candles that skip the engine are recorded in bulk. A backtest's kill switch never
engages (history does not depend on a file on disk), so skipping candles cannot miss it.
tests/engine/test_fast_path.py proves the results identical to the every-candle path, and
`cryptobot.runners.lookahead` proves the trigger causal for any strategy.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cryptobot.clock import DAY_MS, SimClock
from cryptobot.data.frames import CANDLE_COLUMNS
from cryptobot.data.resample import bucket_arrays
from cryptobot.engine.loop import Engine
from cryptobot.engine.market_view import KnownMarket, KnownSession
from cryptobot.engine.recorder import CandleBlock, Recorder, record_signal_candles
from cryptobot.model import Candle

Progress = Callable[[int, int], None]  # (base candles done, total)
_PROGRESS_EVERY = 50_000
_WINDOW = 256  # base candles scanned per numpy pass inside a position
_ONE_BY_ONE = 16  # base candles checked one by one first (most quiet spans are shorter)
_NEVER = 1 << 62


@dataclass
class Precomputed:
    base: dict[str, np.ndarray]  # ts_open_ms, open, high, low, close, volume
    signal: tuple[np.ndarray, ...]  # ts_open_ms, open, high, low, close, volume
    known: KnownMarket
    emitted_before: np.ndarray  # per base index i (n + 1): signal candles emitted before i


class PrecomputedAggregator:
    """`CandleAggregator.add` from the precomputed buckets: a candle's closed signal candles."""

    def __init__(self, pre: Precomputed, signal_ms: int) -> None:
        self.pre = pre
        self.signal_ms = signal_ms
        self._ts = pre.base["ts_open_ms"]
        self._ts_items = items(self._ts)
        self._signal_items = tuple(items(column) for column in pre.signal)
        self._emitted_before = items(pre.emitted_before)
        self._i = -1
        self._next: int | None = None

    def expect(self, i: int) -> None:
        """The next candle `add` gets is base candle i (the fast runner knows which it feeds;
        without it, the candle is looked up)."""
        self._next = i

    def add(self, candle: Candle) -> list[Candle]:
        i = self._i + 1 if self._next is None else self._next
        self._next = None
        known = self._ts_items
        if i >= len(known) or known[i] != candle.ts_open_ms:
            i = int(np.searchsorted(self._ts, candle.ts_open_ms))
            if i >= len(known) or known[i] != candle.ts_open_ms:
                raise KeyError(f"base candle {candle.ts_open_ms} is not in the precomputed data")
        self._i = i
        ts, o, h, lo, c, v = self._signal_items
        return [Candle(ts[k], self.signal_ms, o[k], h[k], lo[k], c[k], v[k])
                for k in range(self._emitted_before[i], self._emitted_before[i + 1])]


def items(column: np.ndarray) -> memoryview:
    """A column whose elements read as Python numbers (float, int, bool), as `float(a[i])`,
    `int(a[i])` and `bool(a[i])` give them, at about half the cost of a numpy scalar: for the
    reads made one candle at a time."""
    return memoryview(np.ascontiguousarray(column, dtype=column.dtype.newbyteorder("=")))


def precompute(arrays: dict[str, np.ndarray], signal_ms: int, base_ms: int) -> Precomputed:
    """Signal candles, the day VWAPs, and at which base candle each signal candle closes."""
    signal, emit_at = bucket_arrays(arrays, signal_ms, base_ms)
    n = len(arrays["ts_open_ms"])
    counts = np.bincount(emit_at[emit_at < n], minlength=n)
    emitted_before = np.r_[0, np.cumsum(counts)]
    known = KnownMarket(signal, KnownSession(arrays))
    columns = tuple(signal[name] for name in CANDLE_COLUMNS)
    return Precomputed(arrays, columns, known, emitted_before)


def run_fast(runners: list[FastRunner], clock: SimClock, progress: Progress | None) -> None:
    """Every symbol's fast runner, merged: the runner whose next base candle closes first is
    fed first (ties in list order), so one clock and one account see the events in time order.
    A runner computes its next candle right after its last one: what it skips depends only on
    its own engine (its trade, its orders, its strategy), which no other symbol changes."""
    queue = []
    for order, runner in enumerate(runners):
        runner.find_next()
        if runner.next_i is not None:
            queue.append((runner.next_close_ms(), order))
    heapq.heapify(queue)
    total = sum(runner.total for runner in runners)
    if progress is not None:
        progress(0, total)
    next_report, feeds = _PROGRESS_EVERY, 0
    while queue:
        _, order = heapq.heappop(queue)
        runner = runners[order]
        runner.feed_next()
        runner.find_next()
        if runner.next_i is not None:
            heapq.heappush(queue, (runner.next_close_ms(), order))
        feeds += 1
        if progress is not None and feeds % 1024 == 0:
            done = sum(r.done for r in runners)
            if done >= next_report:
                progress(done, total)
                next_report = done + _PROGRESS_EVERY
    for runner in runners:
        runner.finish()
    if progress is not None:
        progress(total, total)


class FastRunner:
    """One symbol's engine fed the fast way: `find_next` skips what is quiet and says which
    base candle must go in next (`next_i`, None when done), `feed_next` feeds it."""

    def __init__(self, engine: Engine, pre: Precomputed, aggregator: PrecomputedAggregator,
                 first_trade: int, base_ms: int, clock: SimClock, recorder: Recorder) -> None:
        self.engine, self.pre, self.aggregator = engine, pre, aggregator
        self.base_ms, self.clock, self.recorder = base_ms, clock, recorder
        self.broker = engine.broker
        base = pre.base
        self.ts, self.high, self.low = base["ts_open_ms"], base["high"], base["low"]
        self.close_ms = self.ts + base_ms
        day = self.close_ms - self.close_ms % DAY_MS  # the engine rolls the day at candle close
        day_change = np.r_[True, day[1:] != day[:-1]]
        # The rates of the book (fed up front) fall due on these candles, whatever their times.
        funding_due = engine.market.funding_due.due_candles(self.ts, base_ms)
        emits = pre.emitted_before[1:] != pre.emitted_before[:-1]
        # Candles always fed outside the idle state: days, funding, or a signal candle closing.
        self.day_or_funding = day_change | funding_due
        self.emits = emits
        self.emit_index = np.flatnonzero(emits)
        triggered = engine.market.trigger_mask()
        self.candidate_emits_mask = emits & _any_triggered_emitted(pre, triggered, len(self.ts))
        self.candidate_emits = np.flatnonzero(self.candidate_emits_mask)
        # What `_skip_quiet` always feeds, whatever the prices: a day or funding time, a
        # signal candle where the trigger holds, and any signal candle unless held quietly.
        self.fed_when_quiet = self.day_or_funding | self.candidate_emits_mask
        self.fed_when_not_quiet = self.fed_when_quiet | emits
        self.n = len(self.ts)
        self.start = self.i = first_trade
        self.total = self.n - first_trade
        self.next_i: int | None = None
        self.next_signal = int(pre.emitted_before[first_trade]) if self.n else 0
        self.quiet_count = 0  # base candles skipped inside a position, not yet reported
        self._deadline = (_NEVER, self.n)  # a time stop and its first candle due
        # The same columns read one candle at a time (`items`)
        self._base_items = tuple(items(base[name]) for name in CANDLE_COLUMNS)
        self._close_ms_items = items(self.close_ms)
        self._emitted_before = items(pre.emitted_before)
        self._day_or_funding_items, self._emits_items = (items(self.day_or_funding),
                                                         items(emits))
        self._fed_items = (items(self.fed_when_quiet), items(self.fed_when_not_quiet))

    @property
    def done(self) -> int:
        return self.i - self.start

    def first_close_ms(self) -> int | None:
        return int(self.close_ms[self.start]) if self.start < self.n else None

    def next_close_ms(self) -> int:
        return int(self.close_ms[self.next_i])

    def find_next(self) -> None:
        i, n, engine = self.i, self.n, self.engine
        if i >= n:
            self.next_i = None
        elif engine.is_idle() and not engine.strategy_waiting():
            j = int(np.searchsorted(self.candidate_emits, i))
            self.next_i = int(self.candidate_emits[j]) if j < len(self.candidate_emits) else None
        else:
            i = self._skip_quiet(i, n)
            self.next_i = i if i < n else None
        if self.next_i is None:
            self.i = n

    def feed_next(self) -> None:
        i = self.next_i
        self._feed(i)
        self.i = i + 1

    def finish(self) -> None:
        self._flush(self.n)

    def _skip_quiet(self, i: int, n: int) -> int:
        """The first base candle from i on that must be fed (n if none)."""
        engine = self.engine
        band = self.broker.quiet_band() if not engine.is_idle() else (float("-inf"),
                                                                     float("inf"))
        if band is None:
            return i
        floor, ceiling = band
        deadline = engine.next_deadline_ms()
        deadline = _NEVER if deadline is None else deadline
        if engine.strategy_waiting():  # a setup waits: every signal candle goes in
            return self._skip_to_signal_close(i, n, floor, ceiling, deadline)
        # Answered from the trade's order state, fixed until the next feed.
        quietly = engine.holds_quietly()
        always = self.fed_when_quiet if quietly else self.fed_when_not_quiet
        end = min(n, self._first_due(deadline))
        low, high = self.low, self.high
        # Most quiet spans are a few candles (median 2): the first ones one by one, then
        # numpy windows
        one_always = self._fed_items[0 if quietly else 1]
        one_low, one_high = self._base_items[3], self._base_items[2]
        j, stop = i, min(end, i + _ONE_BY_ONE)
        while j < stop and not (one_always[j] or one_low[j] <= floor or one_high[j] >= ceiling):
            j += 1
        self._skipped(i, j)
        if j < stop:
            return j
        i = j
        while i < end:
            stop = min(end, i + _WINDOW)
            hard = always[i:stop] | (low[i:stop] <= floor) | (high[i:stop] >= ceiling)
            first = int(hard.argmax())
            j = i + first if hard[first] else stop
            self._skipped(i, j)
            i = j
            if j < stop:
                return j
        return i  # n, or the first candle due at the time stop

    def _first_due(self, deadline_ms: int) -> int:
        """The first base candle closing at or after `deadline_ms` (close_ms ascends), found
        once per deadline (a trade's time stop stays put while it is held)."""
        if deadline_ms != self._deadline[0]:
            self._deadline = (deadline_ms, int(np.searchsorted(self.close_ms, deadline_ms)))
        return self._deadline[1]

    def _skipped(self, i: int, j: int) -> None:
        """Base candles [i, j) skipped while a trade is held quietly."""
        a, b = self._emitted_before[i], self._emitted_before[j]
        if b > a:  # signal candles closing in [i, j): bookkeeping only
            self.engine.on_quiet_signal_candles(range(a, b))
        self.quiet_count += j - i  # counts as exposure only while a trade is open

    def _skip_to_signal_close(self, i: int, n: int, floor: float, ceiling: float,
                              deadline: int) -> int:
        high, low, close_ms = self._base_items[2], self._base_items[3], self._close_ms_items
        day_or_funding, emits = self._day_or_funding_items, self._emits_items
        while i < n:
            if (emits[i] or day_or_funding[i] or low[i] <= floor or high[i] >= ceiling
                    or close_ms[i] >= deadline):
                return i
            self.quiet_count += 1
            i += 1
        return i

    def _feed(self, i: int) -> None:
        self._flush(i)
        ts, open_, high, low, close, volume = self._base_items
        self.clock.advance_to(self._close_ms_items[i])
        self.aggregator.expect(i)
        self.engine.on_base_candle(Candle(ts[i], self.base_ms, open_[i], high[i], low[i],
                                          close[i], volume[i]))
        self.next_signal = self._emitted_before[i + 1]

    def _flush(self, i: int) -> None:
        """Report skipped candles before base candle i: exposure, and signal candles in bulk."""
        if self.quiet_count:
            self.engine.on_quiet_base_candles(self.quiet_count, self.base_ms)
            self.quiet_count = 0
        a, b = self.next_signal, self._emitted_before[i]
        if b > a:
            ts, o, h, lo, c, v = self.pre.signal
            record_signal_candles(self.recorder, self.engine.symbol, CandleBlock(
                self.engine.signal_interval_ms, ts[a:b], o[a:b], h[a:b], lo[a:b], c[a:b],
                v[a:b]))
            self.next_signal = b


def _any_triggered_emitted(pre: Precomputed, triggered: np.ndarray, n: int) -> np.ndarray:
    """Per base candle: does any signal candle it closes hold the strategy's trigger?"""
    out = np.zeros(n, dtype=bool)
    emitted = pre.emitted_before
    hit = np.flatnonzero(triggered)
    # candle k is emitted at the base index i with emitted_before[i] <= k < emitted_before[i+1]
    where = np.searchsorted(emitted, hit, side="right") - 1
    out[where[(where >= 0) & (where < n)]] = True
    return out
