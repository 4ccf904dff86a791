"""The fast way to feed the engine in a backtest: precompute, then skip what is provably quiet.

The engine code is the live engine's. What changes is only which base candles reach it:
- the 15m aggregation and the indicators are computed once with numpy (`Precomputed`), and the
  engine reads them through `PrecomputedAggregator` and `PrecomputedFeatures` (same contracts
  as the incremental ones, same numbers bit for bit);
- while nothing is open and no setup waits, only base candles that close a candidate signal
  candle (the strategy's `candidate_mask`) are fed;
- otherwise a base candle is skipped when its range touches no working order (the paper
  broker's `quiet_band`), no market order works, it closes no signal candle (or one that would
  change nothing: `Engine.holds_quietly`, strategy idle, no candidate), no time stop falls due,
  and it crosses no UTC day and no funding time.
Signal candles that skip the engine are recorded in bulk. A backtest's kill switch never
engages (history does not depend on a file on disk), so skipping candles cannot miss it.
tests/engine/test_fast_path.py proves the results identical to the every-candle path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

import numpy as np

from cryptobot.clock import DAY_MS, SimClock
from cryptobot.config import Settings
from cryptobot.engine.loop import FUNDING_INTERVAL_MS, Engine
from cryptobot.engine.recorder import CandleBlock, Recorder, record_signal_candles
from cryptobot.indicators import PrecomputedFeatures, rolling_max_including
from cryptobot.model import Candle
from cryptobot.strategy import Strategy

Progress = Callable[[int, int], None]  # (base candles done, total)
_PROGRESS_EVERY = 50_000
_WINDOW = 256  # base candles scanned per numpy pass inside a position
_NEVER = 1 << 62


@dataclass
class Precomputed:
    base: dict[str, np.ndarray]  # ts_open_ms, open, high, low, close, volume
    signal: tuple[np.ndarray, ...]  # ts_open_ms, open, high, low, close, volume
    features: PrecomputedFeatures
    candidate: np.ndarray  # per signal candle: might start something (a superset)
    emitted_before: np.ndarray  # per base index i (n + 1): signal candles emitted before i

    def emitted_at(self, i: int) -> range:
        """The signal candles the aggregator closes when base candle i arrives."""
        return range(int(self.emitted_before[i]), int(self.emitted_before[i + 1]))


class PrecomputedAggregator:
    """`CandleAggregator.add` from the precomputed buckets: a candle's closed signal candles."""

    def __init__(self, pre: Precomputed, signal_ms: int) -> None:
        self.pre = pre
        self.signal_ms = signal_ms
        self._ts = pre.base["ts_open_ms"]
        self._i = -1

    def add(self, candle: Candle) -> list[Candle]:
        i = self._i + 1
        if i >= len(self._ts) or self._ts[i] != candle.ts_open_ms:
            i = int(np.searchsorted(self._ts, candle.ts_open_ms))
            if i >= len(self._ts) or self._ts[i] != candle.ts_open_ms:
                raise KeyError(f"base candle {candle.ts_open_ms} is not in the precomputed data")
        self._i = i
        ts, o, h, lo, c, v = self.pre.signal
        return [Candle(int(ts[k]), self.signal_ms, float(o[k]), float(h[k]), float(lo[k]),
                       float(c[k]), float(v[k])) for k in self.pre.emitted_at(i)]


def precompute(settings: Settings, arrays: dict[str, np.ndarray], signal_ms: int,
               base_ms: int, strategy: Strategy) -> Precomputed:
    """Signal candles, their indicators, the spike pre-filter and when each candle closes."""
    ts = arrays["ts_open_ms"]
    bucket = ts - ts % signal_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    sig_ts = bucket[starts]
    o = arrays["open"][starts]
    c = arrays["close"][ends - 1]
    h = np.maximum.reduceat(arrays["high"], starts) if len(ts) else arrays["high"][:0]
    lo = np.minimum.reduceat(arrays["low"], starts) if len(ts) else arrays["low"][:0]
    v = _sequential_bucket_sums(arrays["volume"], starts, ends)
    s = settings.strategy
    prev_c = np.r_[np.nan, c[:-1]]
    tr = np.maximum(h - lo, np.maximum(np.abs(h - prev_c), np.abs(lo - prev_c)))
    if len(tr):
        tr[0] = h[0] - lo[0]
    atr = _wilder(tr.tolist(), s.atr_period)
    high_24h = rolling_max_including(h, s.high_lookback_candles)
    vwap, prev_close = _session_arrays(arrays)
    atr_pct_window = settings.risk.volatility_median_days * DAY_MS // signal_ms
    features = PrecomputedFeatures(ts, vwap, prev_close, sig_ts, atr, high_24h, v, atr / c,
                                   s.volume_median_candles, atr_pct_window)
    candidate = np.asarray(strategy.candidate_mask(o, h, lo, c, v, atr), dtype=bool)
    # CandleAggregator: a bucket closes with its last base candle; one a gap cut short closes
    # when the next bucket's first candle arrives (and never, at the end of the data).
    complete = ts[ends - 1] + base_ms == sig_ts + signal_ms
    emit_at = np.where(complete, ends - 1, ends)
    counts = np.bincount(emit_at[emit_at < len(ts)], minlength=len(ts))
    emitted_before = np.r_[0, np.cumsum(counts)]
    return Precomputed(arrays, (sig_ts, o, h, lo, c, v), features, candidate, emitted_before)


def run_fast(engine: Engine, strategy: Strategy, pre: Precomputed, first_trade: int,
             base_ms: int, clock: SimClock, recorder: Recorder,
             progress: Progress | None) -> None:
    runner = _FastRunner(engine, strategy, pre, base_ms, clock, recorder)
    runner.run(first_trade, progress)


class _FastRunner:
    def __init__(self, engine: Engine, strategy: Strategy, pre: Precomputed, base_ms: int,
                 clock: SimClock, recorder: Recorder) -> None:
        self.engine, self.strategy, self.pre = engine, strategy, pre
        self.base_ms, self.clock, self.recorder = base_ms, clock, recorder
        self.broker = engine.broker
        base = pre.base
        self.ts, self.high, self.low = base["ts_open_ms"], base["high"], base["low"]
        self.close_ms = self.ts + base_ms
        day = self.close_ms - self.close_ms % DAY_MS  # the engine rolls the day at candle close
        day_change = np.r_[True, day[1:] != day[:-1]]
        end = self.close_ms
        funding_due = (end - end % FUNDING_INTERVAL_MS) > self.ts
        emits = pre.emitted_before[1:] != pre.emitted_before[:-1]
        # Candles always fed outside the idle state: days, funding, or a signal candle closing.
        self.day_or_funding = day_change | funding_due
        self.emits = emits
        self.emit_index = np.flatnonzero(emits)
        self.candidate_emits_mask = emits & _any_candidate_emitted(pre, len(self.ts))
        self.candidate_emits = np.flatnonzero(self.candidate_emits_mask)
        self.next_signal = 0  # first signal candle not recorded yet
        self.quiet_count = 0  # base candles skipped inside a position, not yet reported

    def run(self, i: int, progress: Progress | None) -> None:
        n = len(self.ts)
        self.next_signal = int(self.pre.emitted_before[i]) if n else 0
        start, next_report = i, i
        engine, strategy = self.engine, self.strategy
        while i < n:
            if progress is not None and i >= next_report:
                progress(i - start, n - start)
                next_report = i + _PROGRESS_EVERY
            if engine.is_idle() and strategy.is_idle():
                j = int(np.searchsorted(self.candidate_emits, i))
                if j == len(self.candidate_emits):
                    break
                i = int(self.candidate_emits[j])
            else:
                i = self._skip_quiet(i, n)
                if i >= n:
                    break
            self._feed(i)
            i += 1
        self._flush(n)
        if progress is not None:
            progress(n - start, n - start)

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
        if not self.strategy.is_idle():  # a setup waits: every signal candle goes in
            return self._skip_to_signal_close(i, n, floor, ceiling, deadline)
        # Strategy.trails answers from the trade's order state, fixed until the next feed.
        quiet_closes = engine.holds_quietly()
        emitted_before = self.pre.emitted_before
        while i < n:
            stop = min(n, i + _WINDOW)
            hard = (self.day_or_funding[i:stop] | self.candidate_emits_mask[i:stop]
                    | (self.low[i:stop] <= floor) | (self.high[i:stop] >= ceiling)
                    | (self.close_ms[i:stop] >= deadline))
            if not quiet_closes:
                hard |= self.emits[i:stop]
            j = i + int(hard.argmax()) if hard.any() else stop
            a, b = int(emitted_before[i]), int(emitted_before[j])
            if b > a:  # signal candles closing in [i, j): bookkeeping only
                engine.on_quiet_signal_candles(self.pre.signal[0][a:b], self.pre.signal[4][a:b],
                                               self.pre.features.atr_after[a:b])
            self.quiet_count += j - i  # counts as exposure only while a trade is open
            i = j
            if j < stop:
                return j
        return n

    def _skip_to_signal_close(self, i: int, n: int, floor: float, ceiling: float,
                              deadline: int) -> int:
        high, low, close_ms = self.high, self.low, self.close_ms
        day_or_funding, emits = self.day_or_funding, self.emits
        while i < n:
            if (emits[i] or day_or_funding[i] or low[i] <= floor or high[i] >= ceiling
                    or close_ms[i] >= deadline):
                return i
            self.quiet_count += 1
            i += 1
        return i

    def _feed(self, i: int) -> None:
        self._flush(i)
        base, ms = self.pre.base, self.base_ms
        self.clock.advance_to(int(self.close_ms[i]))
        self.engine.on_base_candle(Candle(
            int(self.ts[i]), ms, float(base["open"][i]), float(base["high"][i]),
            float(base["low"][i]), float(base["close"][i]), float(base["volume"][i])))
        self.next_signal = int(self.pre.emitted_before[i + 1])

    def _flush(self, i: int) -> None:
        """Report skipped candles before base candle i: exposure, and signal candles in bulk."""
        if self.quiet_count:
            self.engine.on_quiet_base_candles(self.quiet_count, self.base_ms)
            self.quiet_count = 0
        a, b = self.next_signal, int(self.pre.emitted_before[i])
        if b > a:
            ts, o, h, lo, c, v = self.pre.signal
            record_signal_candles(self.recorder, CandleBlock(
                self.engine.signal_interval_ms, ts[a:b], o[a:b], h[a:b], lo[a:b], c[a:b],
                v[a:b]))
            self.next_signal = b


def _any_candidate_emitted(pre: Precomputed, n: int) -> np.ndarray:
    """Per base candle: does any signal candle it closes pass the candidate mask?"""
    out = np.zeros(n, dtype=bool)
    emitted = pre.emitted_before
    hit = np.flatnonzero(pre.candidate)
    # candle k is emitted at the base index i with emitted_before[i] <= k < emitted_before[i+1]
    where = np.searchsorted(emitted, hit, side="right") - 1
    out[where[(where >= 0) & (where < n)]] = True
    return out


def _sequential_bucket_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    """Sums added left to right, exactly as the incremental aggregator adds them."""
    lengths = ends - starts
    out = np.zeros(len(starts), dtype=np.float64)
    for offset in range(int(lengths.max()) if len(lengths) else 0):
        take = lengths > offset
        out[take] = out[take] + values[starts[take] + offset]
    return out


def _wilder(tr: list[float], period: int) -> np.ndarray:
    """The incremental update, in the same order (a loop: each value needs the one before)."""
    if not tr:
        return np.zeros(0)
    atr = tr[0]
    out = [atr]
    append = out.append
    for value in islice(tr, 1, None):
        atr = atr + (value - atr) / period
        append(atr)
    return np.array(out, dtype=np.float64)


def _session_arrays(arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per base candle: running VWAP of its UTC day, and the previous day's last close.

    Each day's running sums are one row of a zero-padded (days x candles) matrix: cumsum along
    a row adds left to right, exactly as `SessionVwap` does candle by candle.
    """
    ts = arrays["ts_open_ms"]
    n = len(ts)
    typical = (arrays["high"] + arrays["low"] + arrays["close"]) / 3.0
    vwap = np.empty(n)
    prev_close = np.full(n, np.nan)
    if not n:
        return vwap, prev_close
    day = ts - ts % DAY_MS
    starts = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    row = np.cumsum(np.r_[True, day[1:] != day[:-1]]) - 1
    col = np.arange(n) - starts[row]
    width = int(col.max()) + 1
    sums = np.zeros((len(starts), width))
    sums[row, col] = typical * arrays["volume"]
    cum_pv = np.cumsum(sums, axis=1)[row, col]
    sums[:] = 0.0
    sums[row, col] = arrays["volume"]
    cum_v = np.cumsum(sums, axis=1)[row, col]
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap[:] = np.where(cum_v > 0, cum_pv / cum_v, typical)
    # the previous close counts only when the day before is the calendar day before
    follows = np.r_[False, day[starts[1:]] - day[starts[:-1]] == DAY_MS]
    last_close = np.r_[np.nan, arrays["close"][starts[1:] - 1]]
    prev_close[:] = np.where(follows, last_close, np.nan)[row]
    return vwap, prev_close
