"""Indicators a strategy declares: pure, causal functions of closed signal candles.

Each indicator gives its values for the whole series at once (`values`, numpy: backtests) and for
a few rows (`at`: the newest row live, the rows a backtest's trigger still considers). Both are
one definition: `at` defaults to `values(...)[rows]`, and the library's windowed indicators
compute each row from its own window only. A recursive indicator (`ATR`) keeps its state so that
a growing series is extended, never recomputed (`SeriesCache`). tests/strategy/ prove `values`,
`at` and the growing series identical, bit for bit, and causal (values on data cut at a point
equal the values on the whole data up to that point).

A value that is not defined yet (a window not full) is NaN: every comparison with it is False.

A live run keeps a bounded history: an indicator says how many candles before a row its value
needs (`history_rows`; None, the default: all of them, and then nothing is ever forgotten). The
engine keeps at least that many, extends every recursive series before it forgets candles, and
shifts the cached series with them (`SeriesCache.drop_rows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PRICE_VOLUME_COLUMNS = ("open", "high", "low", "close", "volume")


class Columns(Protocol):
    """Signal-candle columns by name (open, high, low, close, volume), oldest first."""

    def column(self, name: str) -> np.ndarray: ...


class Indicator:
    """Base class. Override `values`; a `row_wise` indicator (each row from its own window)
    also overrides `at`, and a recursive one `extend` (live: O(1) per new candle)."""

    row_wise = False  # True: `at` computes any rows alone, without the whole series

    @property
    def history_rows(self) -> int | None:
        """Candles before a row that its value depends on, given the state `extend` keeps
        (None: the whole history)."""
        return None

    def shift_state(self, state: object, rows: int) -> object:
        """`extend`'s state once the oldest `rows` candles are forgotten (a state that holds
        arrays aligned with the candles drops their first `rows` values)."""
        return state

    def values(self, candles: Columns) -> np.ndarray:
        raise NotImplementedError

    def at(self, candles: Columns, rows: np.ndarray) -> np.ndarray:
        return self.values(candles)[rows]

    def extend(self, candles: Columns, done: np.ndarray, state: object) -> tuple[np.ndarray,
                                                                                  object]:
        """Values for rows len(done).. given the values so far; (new values, state).
        The default recomputes the whole series: correct, O(n) per call."""
        values = self.values(candles)
        return values[len(done):], state


def _lagged(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(len(values), np.nan)
    if lag < len(values):
        out[lag:] = values[:len(values) - lag]
    return out


@dataclass(frozen=True)
class Windowed(Indicator):
    """A function of the `window` values of `column` up to and including each row."""

    column: str
    window: int
    row_wise = True

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"{type(self).__name__}: window must be at least 1")

    def reduce(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def history_rows(self) -> int:  # type: ignore[override]
        return self.window - 1

    def values(self, candles: Columns) -> np.ndarray:
        return self.at(candles, np.arange(len(candles.column(self.column))))

    def at(self, candles: Columns, rows: np.ndarray) -> np.ndarray:
        source = candles.column(self.column)
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 1 and self.window <= rows[0] + 1 <= len(source):
            # One full window (the row a strategy reads): a slice of it, the very values and
            # layout of the view's row below, without building the view (most of the cost)
            row = int(rows[0])
            window = np.ascontiguousarray(source[row + 1 - self.window:row + 1])[np.newaxis, :]
            return np.asarray(self.reduce(window), dtype=np.float64)
        out = np.full(len(rows), np.nan)
        first = rows - self.window + 1  # the window is source[first .. row]
        ok = first >= 0
        if ok.any():
            out[ok] = self.reduce(sliding_window_view(source, self.window)[first[ok]])
        return out

    def extend(self, candles: Columns, done: np.ndarray, state: object):
        n = len(candles.column(self.column))
        return self.at(candles, np.arange(len(done), n)), state


class RollingMax(Windowed):
    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return windows.max(axis=1)


class RollingMin(Windowed):
    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return windows.min(axis=1)


class RollingMedian(Windowed):
    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return median(windows)


def median(values: np.ndarray) -> np.ndarray | np.floating:
    """`np.median(values, axis=-1)`, the same numbers: the same partition and mean, NaN where a
    row holds one. Without np.median's check for masked arrays, whose first call imports
    numpy.ma (~8 ms, inside a backtest's run)."""
    values = np.asarray(values)
    size = values.shape[-1] if values.ndim else 0
    if not size or not np.issubdtype(values.dtype, np.inexact):
        return np.median(values, axis=-1)
    half = size // 2
    kth = [half - 1, half, -1] if size % 2 == 0 else [half, -1]  # -1: a NaN sorts last
    part = np.partition(values, kth, axis=-1)
    middle = part[..., half - 1:half + 1] if size % 2 == 0 else part[..., half:half + 1]
    result = _mean_of_last_axis(middle)
    last = part[..., -1]
    nan = np.isnan(last)
    if not nan.any():
        return result
    if isinstance(result, np.generic):
        return last
    np.copyto(result, last, where=nan)
    return result


def _mean_of_last_axis(values: np.ndarray) -> np.ndarray | np.floating:
    """`np.mean(values, axis=-1)`: for float64, its very sum and division (np.mean's own
    steps, without its argument handling, most of a one-window median's cost)."""
    if values.dtype != np.float64:
        return np.mean(values, axis=-1)
    total = np.add.reduce(values, axis=-1)
    count = np.intp(values.shape[-1])
    if isinstance(total, np.ndarray):
        return np.true_divide(total, count, out=total, casting="unsafe", subok=False)
    return total.dtype.type(total / count)


class SMA(Windowed):
    def reduce(self, windows: np.ndarray) -> np.ndarray:
        return windows.sum(axis=1) / self.window


@dataclass(frozen=True)
class ATR(Indicator):
    """Wilder's average true range after each candle (alpha 1/period), seeded with the first
    candle's range. `Lag(ATR(14))` is the ATR known before each candle."""

    period: int = 14

    @property
    def history_rows(self) -> int:  # type: ignore[override]
        return 0  # the previous close and ATR are its state

    def values(self, candles: Columns) -> np.ndarray:
        return self.extend(candles, np.empty(0), None)[0]

    def extend(self, candles: Columns, done: np.ndarray, state: object):
        """Wilder's recursion from the state after row len(done) - 1, in the same order."""
        start = len(done)
        high, low, close = (candles.column(name)[start:] for name in ("high", "low", "close"))
        atr, prev_close = state if state is not None else (None, None)
        if len(high) <= 1:  # live: one new candle, plain floats (the same operations)
            if not len(high):
                return np.empty(0), state
            hi, lo = float(high[0]), float(low[0])
            tr = hi - lo if prev_close is None else max(hi - lo, abs(hi - prev_close),
                                                        abs(lo - prev_close))
            atr = tr if atr is None else atr + (tr - atr) / self.period
            return np.array([atr]), (atr, float(close[0]))
        # True range: max and abs are exact, so numpy's values equal a scalar loop's.
        before = np.r_[np.nan if prev_close is None else prev_close, close[:-1]]
        tr = np.maximum(high - low, np.maximum(np.abs(high - before), np.abs(low - before)))
        if prev_close is None:
            tr[0] = high[0] - low[0]
        values, out = iter(tr.tolist()), []
        if atr is None:  # seeded with the first range
            atr = next(values)
            out.append(atr)
        # the same operations (an int period divides as the same float)
        append, period = out.append, float(self.period)
        for value in values:
            atr = atr + (value - atr) / period
            append(atr)
        return np.fromiter(out, dtype=np.float64, count=len(out)), (atr, float(close[-1]))


@dataclass(frozen=True)
class Lag(Indicator):
    """Another indicator's value `rows` candles earlier (NaN before that)."""

    of: Indicator
    rows: int = 1

    @property
    def row_wise(self) -> bool:  # type: ignore[override]
        return self.of.row_wise

    @property
    def history_rows(self) -> int | None:  # type: ignore[override]
        inner = self.of.history_rows
        return None if inner is None else inner + self.rows

    def shift_state(self, state: object, rows: int) -> object:
        if state is None:
            return None
        inner, inner_state = state
        return inner[rows:], self.of.shift_state(inner_state, rows)

    def values(self, candles: Columns) -> np.ndarray:
        return _lagged(self.of.values(candles), self.rows)

    def at(self, candles: Columns, rows: np.ndarray) -> np.ndarray:
        return self.earlier(rows, lambda earlier: self.of.at(candles, earlier))

    def earlier(self, rows: np.ndarray, values_at) -> np.ndarray:
        """The values `values_at` gives `rows` candles earlier (NaN before the first)."""
        rows = np.asarray(rows, dtype=np.int64) - self.rows
        if len(rows) == 1 and rows[0] >= 0:  # one row that has a value (a strategy's read)
            return np.asarray(values_at(rows), dtype=np.float64)
        out = np.full(len(rows), np.nan)
        ok = rows >= 0
        if ok.any():
            out[ok] = values_at(rows[ok])
        return out

    def extend(self, candles: Columns, done: np.ndarray, state: object):
        inner, inner_state = state if state is not None else (np.empty(0), None)
        new, inner_state = self.of.extend(candles, inner, inner_state)
        inner = np.concatenate([inner, new])
        return _lagged(inner, self.rows)[len(done):], (inner, inner_state)


class SeriesCache:
    """Indicator values of one run's signal candles, computed once and extended as candles are
    appended (in a buffer that doubles, so a growing run costs O(1) a candle). Equal
    indicators (same class and fields) share one series."""

    def __init__(self, candles: Columns) -> None:
        self.candles = candles
        self._series: dict[Indicator, tuple[np.ndarray, int, object]] = {}

    def series(self, indicator: Indicator) -> np.ndarray:
        """The values of every row of the candles so far."""
        n = len(self.candles.column("close"))
        buffer, done, state = self._series.get(indicator, (np.empty(0), 0, None))
        if done < n:
            new, state = indicator.extend(self.candles, buffer[:done], state)
            if n > len(buffer):
                grown = np.empty(max(n, 2 * len(buffer)))
                grown[:done] = buffer[:done]
                buffer = grown
            buffer[done:n] = new
            done = n
            self._series[indicator] = (buffer, done, state)
        return buffer[:done]

    def extend_all(self, indicators: Iterable[Indicator]) -> None:
        """Bring `indicators` and every series computed so far up to the newest candle."""
        for indicator in {*self._series, *indicators}:
            self.series(indicator)

    def drop_rows(self, rows: int) -> None:
        """The candles forgot their oldest `rows` rows (after `extend_all`): so do the series."""
        for indicator, (buffer, done, state) in list(self._series.items()):
            if done < rows:  # a row-wise series left behind: recomputed when asked
                if not indicator.row_wise:
                    raise RuntimeError(f"{indicator!r} was not extended before candles were "
                                       "forgotten")
                del self._series[indicator]
                continue
            buffer[:done - rows] = buffer[rows:done]
            self._series[indicator] = (buffer, done - rows,
                                       indicator.shift_state(state, rows))

    def at(self, indicator: Indicator, rows: np.ndarray) -> np.ndarray:
        """Values at `rows`: a row-wise indicator computes just those, others their series
        (a `Lag` reads its indicator's earlier rows, through this cache)."""
        if isinstance(indicator, Lag):
            return indicator.earlier(rows, lambda earlier: self.at(indicator.of, earlier))
        if indicator.row_wise and indicator not in self._series:
            return np.asarray(indicator.at(self.candles, rows), dtype=np.float64)
        return self.series(indicator)[rows]

    def value(self, indicator: Indicator, row: int) -> float:
        """`at(indicator, [row])[0]` as a float, the same number, without an array of rows for
        each step (a strategy reads one row's values, a few at each decision)."""
        while isinstance(indicator, Lag):  # Lag.earlier of one row
            row -= indicator.rows
            if row < 0:
                return float("nan")
            indicator = indicator.of
        if indicator.row_wise and indicator not in self._series:
            return float(np.asarray(indicator.at(self.candles, np.array([row])),
                                    dtype=np.float64)[0])
        return float(self.series(indicator)[row])


RESERVED_NAMES = frozenset({"ts_open_ms", *PRICE_VOLUME_COLUMNS, "rows", "narrow"})


def declared(indicators: Mapping[str, Indicator]) -> dict[str, Indicator]:
    """Check a strategy's `indicators()` answer: named so as not to hide a candle column or
    the view's own attributes, each an `Indicator` that can be shared (hashable)."""
    out = {}
    for name, indicator in indicators.items():
        if name in RESERVED_NAMES or name.startswith("_") or not name.isidentifier():
            raise ValueError(f"indicator name {name!r} is not allowed (reserved: "
                             f"{', '.join(sorted(RESERVED_NAMES))})")
        if not isinstance(indicator, Indicator):
            raise TypeError(f"indicator {name!r} is {type(indicator).__name__}, not an Indicator")
        try:
            hash(indicator)
        except TypeError:
            raise TypeError(f"indicator {name!r} ({type(indicator).__name__}) is not hashable: "
                            "declare it as @dataclass(frozen=True)") from None
        out[name] = indicator
    return out
