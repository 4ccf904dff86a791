"""Aggregate base candles into a higher timeframe: vectorised for backtests, incremental for live.

Both follow the same rules, and a property test proves they agree:
- buckets are aligned to the epoch (UTC) and labelled by their open time;
- open = first base open, high = max, low = min, close = last base close, volume = sum;
- a bucket with missing base candles is still built from the candles it has.
"""

from __future__ import annotations

import numpy as np

from cryptobot.data.frames import CANDLE_COLUMNS, empty_candles
from cryptobot.data.table import Table
from cryptobot.model import Candle


def _check_intervals(base_interval_ms: int, target_interval_ms: int) -> None:
    if base_interval_ms <= 0 or target_interval_ms % base_interval_ms:
        raise ValueError(f"target interval {target_interval_ms} ms is not a multiple of the base "
                         f"interval {base_interval_ms} ms")


def resample_candles(candles: Table, interval_ms: int) -> Table:
    """Candles (ts_open_ms sorted, unique) -> candles of `interval_ms`, open-time labels."""
    if candles.empty:
        return empty_candles()
    columns = {name: np.asarray(candles[name],
                                dtype=np.int64 if name == "ts_open_ms" else np.float64)
               for name in CANDLE_COLUMNS}
    buckets, _ = _buckets(columns, interval_ms)
    return Table({name: buckets[name] for name in CANDLE_COLUMNS})


def bucket_arrays(base: dict[str, np.ndarray], interval_ms: int,
                  base_interval_ms: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Base candle columns -> the `interval_ms` candles `CandleAggregator` emits, and for
    each the index of the base candle whose arrival emits it (len(base) if none does: the
    last bucket, cut short by the end of the data)."""
    _check_intervals(base_interval_ms, interval_ms)
    buckets, ends = _buckets(base, interval_ms)
    # A bucket closes with its last base candle; one a gap cut short closes when the next
    # bucket's first candle arrives (and never, at the end of the data).
    ts = base["ts_open_ms"]
    complete = ts[ends - 1] + base_interval_ms == buckets["ts_open_ms"] + interval_ms
    return buckets, np.where(complete, ends - 1, ends)


def _buckets(base: dict[str, np.ndarray], interval_ms: int):
    """The buckets' columns, and each bucket's end (one past its last base candle)."""
    ts = base["ts_open_ms"]
    bucket = ts - ts % interval_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]]) if len(ts) else ts[:0]
    ends = np.r_[starts[1:], len(ts)].astype(np.int64)
    empty = not len(ts)
    return {
        "ts_open_ms": bucket[starts],
        "open": base["open"][starts],
        "high": base["high"][:0] if empty else np.maximum.reduceat(base["high"], starts),
        "low": base["low"][:0] if empty else np.minimum.reduceat(base["low"], starts),
        "close": base["close"][ends - 1],
        "volume": _sequential_sums(base["volume"], starts, ends),
    }, ends


def _sequential_sums(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sums added left to right, exactly as the incremental aggregator adds them."""
    lengths = ends - starts
    out = np.zeros(len(starts), dtype=np.float64)
    for offset in range(int(lengths.max()) if len(lengths) else 0):
        take = lengths > offset
        out[take] = out[take] + values[starts[take] + offset]
    return out


class CandleAggregator:
    """Feeds base candles one at a time, returns the higher-timeframe candles they close.

    A bucket is emitted when the base candle that ends it arrives; if a gap skipped that candle,
    the unfinished bucket is emitted when a candle of a later bucket arrives. A candle at or
    before the last one seen (a replayed duplicate after a reconnect) is ignored.
    """

    def __init__(self, base_interval_ms: int, target_interval_ms: int) -> None:
        _check_intervals(base_interval_ms, target_interval_ms)
        self.base_interval_ms = base_interval_ms
        self.target_interval_ms = target_interval_ms
        self._bucket_ms: int | None = None
        self._open = self._high = self._low = self._close = self._volume = 0.0
        self._last_ts_ms: int | None = None

    def add(self, candle: Candle) -> list[Candle]:
        if candle.interval_ms != self.base_interval_ms:
            raise ValueError(f"candle of {candle.interval_ms} ms fed to an aggregator of "
                             f"{self.base_interval_ms} ms base candles")
        if self._last_ts_ms is not None and candle.ts_open_ms <= self._last_ts_ms:
            return []
        self._last_ts_ms = candle.ts_open_ms
        closed: list[Candle] = []
        bucket_ms = candle.ts_open_ms - candle.ts_open_ms % self.target_interval_ms
        if self._bucket_ms is not None and bucket_ms != self._bucket_ms:
            closed.append(self._emit())
        if self._bucket_ms is None:
            self._bucket_ms = bucket_ms
            self._open, self._high, self._low = candle.open, candle.high, candle.low
            self._volume = 0.0
        else:
            self._high = max(self._high, candle.high)
            self._low = min(self._low, candle.low)
        self._close = candle.close
        self._volume += candle.volume
        if candle.ts_close_ms == bucket_ms + self.target_interval_ms:
            closed.append(self._emit())
        return closed

    def flush(self) -> Candle | None:
        """The unfinished bucket, if any (end of a backtest's data); the aggregator is reset."""
        return self._emit() if self._bucket_ms is not None else None

    def _emit(self) -> Candle:
        assert self._bucket_ms is not None
        candle = Candle(self._bucket_ms, self.target_interval_ms, self._open, self._high,
                        self._low, self._close, self._volume)
        self._bucket_ms = None
        return candle


def candles_from_frame(candles: Table, interval_ms: int) -> list[Candle]:
    """Model objects from a candle table (for feeding the incremental path)."""
    columns = [candles[name] for name in CANDLE_COLUMNS]
    return [Candle(int(ts), interval_ms, float(o), float(h), float(lo), float(c), float(v))
            for ts, o, h, lo, c, v in zip(*columns, strict=True)]
