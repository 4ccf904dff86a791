"""The normalised tables every reader produces (`Table`: named numpy columns), and their
validation.

candles: ts_open_ms (int64), open, high, low, close, volume (float64), sorted, unique, every
row passing the one candle rule set (cryptobot.data.candle_checks) that streams pass too.
open interest: ts_ms (int64), oi_contracts, oi_value_usdt (float64, NaN allowed).
funding: ts_ms (int64), rate (float64).
"""

from __future__ import annotations

import math

import numpy as np

from cryptobot.clock import iso_utc
from cryptobot.data.candle_checks import CandleRule, describe, problem_codes, time_problem
from cryptobot.data.defaults import MAX_SILENT_GAP_MS  # noqa: F401  (re-exported)
from cryptobot.data.table import Table
from cryptobot.errors import DataError

CANDLE_COLUMNS = ("ts_open_ms", "open", "high", "low", "close", "volume")
OI_COLUMNS = ("ts_ms", "oi_contracts", "oi_value_usdt")
FUNDING_COLUMNS = ("ts_ms", "rate")


def empty_candles() -> Table:
    return _empty(CANDLE_COLUMNS)


def empty_open_interest() -> Table:
    return _empty(OI_COLUMNS)


def empty_funding() -> Table:
    return _empty(FUNDING_COLUMNS)


def _empty(columns: tuple[str, ...]) -> Table:
    return Table({name: np.zeros(0, dtype=np.int64 if name == columns[0] else np.float64)
                  for name in columns})


class RowLocator:
    """Turns a table position into the words an error shows: 'line 12' of a CSV, 'row 3' else.
    `rows` maps positions to the file's rows where some were dropped (blank lines)."""

    def __init__(self, source: str, first_line: int | None,
                 rows: np.ndarray | None = None) -> None:
        self.source = source
        self.first_line = first_line  # file line of row 0, None when not a text file
        self.rows = rows

    def keeping(self, rows: np.ndarray) -> RowLocator:
        """The locator of a table that kept only the rows at these positions."""
        kept = rows if self.rows is None else self.rows[rows]
        return RowLocator(self.source, self.first_line, kept)

    def where(self, position: int) -> str:
        if self.rows is not None:
            position = int(self.rows[position])
        if self.first_line is None:
            return f"{self.source} row {position + 1}"
        return f"{self.source} line {position + self.first_line}"


def to_floats(values: np.ndarray) -> np.ndarray:
    """Numbers, or text read as numbers; a cell that is neither becomes NaN."""
    if values.dtype.kind in "iufb":
        return values.astype(np.float64)
    cells = values.tolist()
    text = "".join(cell for cell in cells if isinstance(cell, str))
    if text.isascii() and "_" not in text:  # what pandas reads as a number, float() reads too
        try:
            return values.astype(np.float64)
        except (TypeError, ValueError):
            pass
    return np.fromiter((_float_or_nan(v) for v in cells), np.float64, count=len(values))


def _float_or_nan(value: object) -> float:
    # float() also takes "1_000" and other scripts' digits: pandas (and Binance) never wrote
    # those; a cell holding one is not a number
    if isinstance(value, str) and (not value.isascii() or "_" in value):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def raw_cell(values: np.ndarray, position: int) -> object:
    """A cell as the file gave it, for messages: 1.5, not np.float64(1.5)."""
    raw = values[position]
    return raw.item() if isinstance(raw, np.generic) else raw


def _numeric(raw: Table, columns: tuple[str, ...], locator: RowLocator,
             nullable: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Coerce to numbers; the first cell that is not a finite number is an error."""
    out = {}
    for name in columns:
        values = to_floats(raw[name])
        bad = ~np.isfinite(values)
        if name in nullable:
            bad &= ~np.isnan(values)
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise DataError(f"{locator.where(position)}: {name} "
                            f"{raw_cell(raw[name], position)!r} is not a finite number")
        out[name] = values
    out[columns[0]] = out[columns[0]].astype(np.int64)
    return out


def _check_times(ts: np.ndarray, locator: RowLocator, column: str) -> None:
    if len(ts) < 2:
        return
    steps = np.diff(ts)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        position = int(bad[0]) + 1
        word = "duplicate" if steps[bad[0]] == 0 else "out of order"
        raise DataError(f"{locator.where(position)}: {column} {int(ts[position])} "
                        f"({iso_utc(int(ts[position]))}) is {word}; rows must be sorted, unique")


def validate_candles(raw: Table, locator: RowLocator, interval_ms: int | None = None,
                     now_ms: int | None = None) -> Table:
    """Check a reader's raw candle columns (file order) against the one candle rule set
    (cryptobot.data.candle_checks) and return them typed. `interval_ms` is the candles'
    timeframe if the caller knows it; else it is inferred (two rows at least) for the grid
    rule. With `now_ms` (the clock), a candle closing more than one interval after it is from
    the future."""
    return validated_candles(raw, locator, interval_ms, now_ms)[0]


def validated_candles(raw: Table, locator: RowLocator, interval_ms: int | None = None,
                      now_ms: int | None = None) -> tuple[Table, int | None]:
    """`validate_candles`, and the interval it checked the grid with (None: one candle of an
    unknown timeframe)."""
    out = _numeric(raw, CANDLE_COLUMNS, locator)
    ts = out["ts_open_ms"]
    _check_times(ts, locator, "open time")
    if interval_ms is None and len(ts) >= 2:
        interval_ms = infer_interval_ms(ts, locator.source)
    o, h, lo, c, v = (out[name] for name in CANDLE_COLUMNS[1:])
    codes = problem_codes(ts, interval_ms, o, h, lo, c, v)
    bad = np.flatnonzero(codes)
    if bad.size:
        i = int(bad[0])
        text = describe(CandleRule(int(codes[i])), int(ts[i]), interval_ms, float(o[i]),
                        float(h[i]), float(lo[i]), float(c[i]), float(v[i]))
        raise DataError(f"{locator.where(i)}: {text}")
    if now_ms is not None and len(ts) and int(ts[-1]) > now_ms:  # sorted: the last is latest
        i = int(np.searchsorted(ts, now_ms, side="right"))
        text = time_problem(int(ts[i]), interval_ms or 0, now_ms)
        raise DataError(f"{locator.where(i)}: {text}")
    # Within the rounding the rules forgive, widen high and low to hold the body.
    out["high"] = np.maximum(h, np.maximum(o, c))
    out["low"] = np.minimum(lo, np.minimum(o, c))
    return Table(out), interval_ms


def validate_open_interest(raw: Table, locator: RowLocator) -> Table:
    out = _numeric(raw, OI_COLUMNS, locator, nullable=("oi_value_usdt",))
    _check_times(out["ts_ms"], locator, "time")
    for name in ("oi_contracts", "oi_value_usdt"):
        negative = out[name] < 0
        if negative.any():
            i = int(np.flatnonzero(negative)[0])
            raise DataError(f"{locator.where(i)}: {name} {out[name][i]} is negative")
    return Table(out)


def validate_funding(raw: Table, locator: RowLocator) -> Table:
    out = _numeric(raw, FUNDING_COLUMNS, locator)
    _check_times(out["ts_ms"], locator, "funding time")
    return Table(out)


def merge_frames(tables: list[Table]) -> Table:
    """Concatenate, sort by time (the first column), keep the LAST row of each time (newer
    sources win)."""
    columns = tables[0].columns
    joined = {name: np.concatenate([t[name] for t in tables]) for name in columns}
    ts = joined[columns[0]]
    # np.unique gives each time's first position in the reversed rows: its last one here.
    _, first_reversed = np.unique(ts[::-1], return_index=True)
    keep = len(ts) - 1 - first_reversed
    return Table({name: values[keep] for name, values in joined.items()})


def find_gaps(ts_open_ms: np.ndarray, interval_ms: int) -> tuple[tuple[int, int], ...]:
    """Holes between consecutive candles as (first missing open time, next present open time)."""
    if len(ts_open_ms) < 2:
        return ()
    steps = np.diff(ts_open_ms)
    holes = np.flatnonzero(steps > interval_ms)
    return tuple((int(ts_open_ms[i]) + interval_ms, int(ts_open_ms[i + 1])) for i in holes)


def uncovered_edges(ts_open_ms: np.ndarray, interval_ms: int, start_ms: int | None,
                    end_ms: int | None) -> tuple[tuple[int, int], ...]:
    """The parts of [start_ms, end_ms) before the first and after the last candle, as (from,
    to), where at least one whole candle is missing."""
    edges = []
    if start_ms is not None and int(ts_open_ms[0]) - start_ms >= interval_ms:
        edges.append((start_ms, int(ts_open_ms[0])))
    after_last_ms = int(ts_open_ms[-1]) + interval_ms
    if end_ms is not None and end_ms - after_last_ms >= interval_ms:
        edges.append((after_last_ms, end_ms))
    return tuple(edges)


def infer_interval_ms(ts_open_ms: np.ndarray, source: str) -> int:
    """The most common step between candles (robust to gaps)."""
    if len(ts_open_ms) < 2:
        raise DataError(f"{source}: one candle is not enough to tell its timeframe")
    steps = np.diff(ts_open_ms)
    if np.count_nonzero(steps == steps[0]) * 2 > len(steps):  # a majority is the mode
        return int(steps[0])
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])
