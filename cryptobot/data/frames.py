"""The normalised frames every reader produces, and their validation.

candles: ts_open_ms (int64), open, high, low, close, volume (float64), sorted, unique, every
row passing the one candle rule set (cryptobot.data.candle_checks) that streams pass too.
open interest: ts_ms (int64), oi_contracts, oi_value_usdt (float64, NaN allowed).
funding: ts_ms (int64), rate (float64).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptobot.clock import iso_utc
from cryptobot.data.candle_checks import CandleRule, describe, problem_codes, time_problem
from cryptobot.data.defaults import MAX_SILENT_GAP_MS  # noqa: F401  (re-exported)
from cryptobot.errors import DataError

CANDLE_COLUMNS = ("ts_open_ms", "open", "high", "low", "close", "volume")
OI_COLUMNS = ("ts_ms", "oi_contracts", "oi_value_usdt")
FUNDING_COLUMNS = ("ts_ms", "rate")


def empty_candles() -> pd.DataFrame:
    return _typed(pd.DataFrame({name: [] for name in CANDLE_COLUMNS}), CANDLE_COLUMNS)


def empty_open_interest() -> pd.DataFrame:
    return _typed(pd.DataFrame({name: [] for name in OI_COLUMNS}), OI_COLUMNS)


def empty_funding() -> pd.DataFrame:
    return _typed(pd.DataFrame({name: [] for name in FUNDING_COLUMNS}), FUNDING_COLUMNS)


def _typed(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    out[columns[0]] = frame[columns[0]].to_numpy(dtype=np.int64)
    for name in columns[1:]:
        out[name] = frame[name].to_numpy(dtype=np.float64)
    return out


class RowLocator:
    """Turns a frame position into the words an error shows: 'line 12' of a CSV, 'row 3' else."""

    def __init__(self, source: str, first_line: int | None) -> None:
        self.source = source
        self.first_line = first_line  # file line of frame row 0, None when not a text file

    def where(self, position: int) -> str:
        if self.first_line is None:
            return f"{self.source} row {position + 1}"
        return f"{self.source} line {position + self.first_line}"


def _numeric(frame: pd.DataFrame, columns: tuple[str, ...], locator: RowLocator,
             nullable: tuple[str, ...] = ()) -> pd.DataFrame:
    """Coerce to numbers; the first cell that is not a finite number is an error."""
    out = pd.DataFrame(index=frame.index)
    for name in columns:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if name in nullable:
            bad &= ~np.isnan(values)
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raw = frame[name].iloc[position]
            raw = raw.item() if isinstance(raw, np.generic) else raw  # 1.5, not np.float64(1.5)
            where = locator.where(int(frame.index[position]))
            raise DataError(f"{where}: {name} {raw!r} is not a finite number")
        out[name] = values
    return out


def _check_times(frame: pd.DataFrame, locator: RowLocator, column: str) -> None:
    ts = frame.iloc[:, 0].to_numpy()
    if len(ts) < 2:
        return
    steps = np.diff(ts)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        position = int(bad[0]) + 1
        word = "duplicate" if steps[bad[0]] == 0 else "out of order"
        where = locator.where(int(frame.index[position]))
        raise DataError(f"{where}: {column} {int(ts[position])} ({iso_utc(int(ts[position]))}) "
                        f"is {word}; rows must be sorted, unique")


def validate_candles(frame: pd.DataFrame, locator: RowLocator, interval_ms: int | None = None,
                     now_ms: int | None = None) -> pd.DataFrame:
    """Check a reader's raw candle frame (file order) against the one candle rule set
    (cryptobot.data.candle_checks) and return it typed. `interval_ms` is the candles' timeframe
    if the caller knows it; else it is inferred (two rows at least) for the grid rule. With
    `now_ms` (the clock), a candle closing more than one interval after it is from the future."""
    out = _numeric(frame, CANDLE_COLUMNS, locator)
    out["ts_open_ms"] = out["ts_open_ms"].astype(np.int64)
    _check_times(out, locator, "open time")
    ts = out["ts_open_ms"].to_numpy()
    if interval_ms is None and len(ts) >= 2:
        interval_ms = infer_interval_ms(ts, locator.source)
    o, h, lo, c, v = (out[name].to_numpy() for name in CANDLE_COLUMNS[1:])
    codes = problem_codes(ts, interval_ms, o, h, lo, c, v)
    bad = np.flatnonzero(codes)
    if bad.size:
        i = int(bad[0])
        text = describe(CandleRule(int(codes[i])), int(ts[i]), interval_ms, float(o[i]),
                        float(h[i]), float(lo[i]), float(c[i]), float(v[i]))
        raise DataError(f"{locator.where(int(out.index[i]))}: {text}")
    if now_ms is not None and len(ts) and int(ts[-1]) > now_ms:  # sorted: the last is latest
        i = int(np.searchsorted(ts, now_ms, side="right"))
        text = time_problem(int(ts[i]), interval_ms or 0, now_ms)
        raise DataError(f"{locator.where(int(out.index[i]))}: {text}")
    # Within the rounding the rules forgive, widen high and low to hold the body.
    out["high"] = np.maximum(h, np.maximum(o, c))
    out["low"] = np.minimum(lo, np.minimum(o, c))
    return out.reset_index(drop=True)


def validate_open_interest(frame: pd.DataFrame, locator: RowLocator) -> pd.DataFrame:
    out = _numeric(frame, OI_COLUMNS, locator, nullable=("oi_value_usdt",))
    out["ts_ms"] = out["ts_ms"].astype(np.int64)
    _check_times(out, locator, "time")
    for name in ("oi_contracts", "oi_value_usdt"):
        negative = out[name].to_numpy() < 0
        if negative.any():
            i = int(np.flatnonzero(negative)[0])
            where = locator.where(int(out.index[i]))
            raise DataError(f"{where}: {name} {out[name].iloc[i]} is negative")
    return out.reset_index(drop=True)


def validate_funding(frame: pd.DataFrame, locator: RowLocator) -> pd.DataFrame:
    out = _numeric(frame, FUNDING_COLUMNS, locator)
    out["ts_ms"] = out["ts_ms"].astype(np.int64)
    _check_times(out, locator, "funding time")
    return out.reset_index(drop=True)


def merge_frames(frames: list[pd.DataFrame], time_column: str) -> pd.DataFrame:
    """Concatenate, sort by time, keep the LAST row of each timestamp (newer sources win)."""
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.drop_duplicates(subset=time_column, keep="last")
    return merged.sort_values(time_column, kind="stable").reset_index(drop=True)


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
    steps, counts = np.unique(np.diff(ts_open_ms), return_counts=True)
    return int(steps[np.argmax(counts)])
