"""The run's closed signal candles as columns, and the views a strategy reads them through.

`SignalCandles` grows as candles close (live, paper, the every-candle backtest) or holds a
backtest's candles up front (`SignalCandles.known`); either way `close(candle)` returns the row
of a candle that has just closed. Rows count every candle closed since the start; a growing run
that `retain`s a number of rows keeps only the latest ones in a buffer of fixed size (the
columns then start at row `first_row`), so a run of any length holds a bounded history.
`CandleView` is a set of rows with attribute access to the candle columns and the strategy's
indicators (`view.close`, `view.atr`): the trigger reads it, and a backtest narrows it condition
by condition so later conditions are computed only where the earlier ones held. `Row` is one
row's values for `on_candle` (`ctx.ind.atr`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cryptobot.model import Candle
from cryptobot.strategy.indicators import PRICE_VOLUME_COLUMNS, Indicator, SeriesCache

_COLUMNS = ("ts_open_ms", *PRICE_VOLUME_COLUMNS)


class SignalCandles:
    def __init__(self, interval_ms: int, capacity: int = 1024) -> None:
        self.interval_ms = interval_ms
        self._data = {name: np.empty(capacity, dtype=np.int64 if name == "ts_open_ms"
                                     else np.float64) for name in _COLUMNS}
        self._n = 0  # rows held; the first of them is row `first_row`
        self.first_row = 0
        self._keep_rows: int | None = None
        self._known = False

    @classmethod
    def known(cls, interval_ms: int, columns: Mapping[str, np.ndarray]) -> SignalCandles:
        """A backtest's signal candles, all known before the run (rows become current as the
        engine closes them; indicators may be computed on all of them at once)."""
        frame = cls(interval_ms, 0)
        frame._data = {name: np.asarray(columns[name]) for name in _COLUMNS}
        frame._n = len(frame._data["ts_open_ms"])
        frame._known = True
        frame._next = 0
        return frame

    def __len__(self) -> int:
        """Rows closed since the start (those forgotten included)."""
        return self.first_row + self._n

    def column(self, name: str) -> np.ndarray:
        """The rows held, oldest first: index 0 is row `first_row`."""
        return self._data[name][:self._n]

    def held(self, rows: np.ndarray) -> np.ndarray:
        """Rows (counted from the start) as indexes into the columns; IndexError for a row
        already forgotten (never a silent wrap to the end)."""
        if not self.first_row:
            return rows
        held = rows - self.first_row
        if len(held) and held.min() < 0:
            raise IndexError(f"signal candle row {int(rows.min())} is forgotten (rows from "
                             f"{self.first_row} are kept)")
        return held

    def held_row(self, row: int) -> int:
        """`held` for one row."""
        if row < self.first_row:
            raise IndexError(f"signal candle row {row} is forgotten (rows from "
                             f"{self.first_row} are kept)")
        return row - self.first_row

    def retain(self, rows: int | None) -> None:
        """Keep at least the latest `rows` rows (None: all) and forget older ones: the buffer
        holds twice that, and once full its older half is dropped (`compact`), so a row costs
        O(1)."""
        if self._known:
            raise ValueError("a backtest's known candles are all kept")
        self._keep_rows = None if rows is None else max(1, rows)

    def full(self) -> bool:
        """Whether the next `compact` would forget rows (the owner catches up first)."""
        return (self._keep_rows is not None
                and self._n >= max(1024, 2 * self._keep_rows))

    def compact(self) -> int:
        """Forget all but the latest retained rows; returns how many were forgotten."""
        forget = self._n - self._keep_rows if self.full() else 0
        if forget > 0:
            for column in self._data.values():
                column[:self._n - forget] = column[forget:self._n]
            self._n -= forget
            self.first_row += forget
        return max(forget, 0)

    def close(self, candle: Candle) -> int:
        """The row of a signal candle that just closed (appended, unless known up front)."""
        if self._known:
            i = self._next
            ts = self._data["ts_open_ms"]
            if i >= self._n or ts[i] != candle.ts_open_ms:
                i = int(np.searchsorted(ts, candle.ts_open_ms))
                if i >= self._n or ts[i] != candle.ts_open_ms:
                    raise KeyError(f"signal candle {candle.ts_open_ms} is not in the data")
            self._next = i + 1
            return i
        if self._n == len(self._data["ts_open_ms"]):  # (retained: never past its bound)
            for name, column in self._data.items():
                grown = np.empty(max(1024, 2 * len(column)), dtype=column.dtype)
                grown[:self._n] = column
                self._data[name] = grown
        i = self._n
        for name, value in zip(_COLUMNS, (candle.ts_open_ms, candle.open, candle.high,
                                          candle.low, candle.close, candle.volume), strict=True):
            self._data[name][i] = value
        self._n += 1
        return self.first_row + i


class CandleView:
    """Rows of the signal candles: `view.close`, `view.atr` are arrays over those rows (rows
    counted from the start, all of them still held)."""

    def __init__(self, candles: SignalCandles, cache: SeriesCache,
                 indicators: Mapping[str, Indicator], rows: np.ndarray) -> None:
        self._candles = candles
        self._cache = cache
        self._indicators = indicators
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getattr__(self, name: str) -> np.ndarray:
        column, indicator = self._named(name)
        held = self._candles.held(self.rows)  # rows count from the start; the columns from it
        return column[held] if indicator is None else self._cache.at(indicator, held)

    def _named(self, name: str) -> tuple[np.ndarray | None, Indicator | None]:
        """The candle column `name` is (indicator None), or the declared indicator."""
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _COLUMNS:
            return self._candles.column(name), None
        indicator = self._indicators.get(name)
        if indicator is None:
            raise AttributeError(f"no candle column or declared indicator named {name!r}")
        return None, indicator

    def narrow(self, keep: np.ndarray) -> None:
        self.rows = self.rows[keep]

    def value(self, name: str) -> float:
        """`float(getattr(self, name)[0])`, the same number: one row's value read as one."""
        column, indicator = self._named(name)
        held = self._candles.held_row(int(self.rows[0]))
        return float(column[held]) if indicator is None else self._cache.value(indicator, held)


class Row:
    """One signal candle's indicator values: `row.atr` is a float (NaN while undefined)."""

    def __init__(self, view: CandleView) -> None:
        self._view = view
        self._values: dict[str, float] = {}

    def __getattr__(self, name: str) -> float:
        if name.startswith("_"):
            raise AttributeError(name)
        values = self._values
        if name not in values:
            values[name] = self._view.value(name)
        return values[name]
