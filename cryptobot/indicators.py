"""Indicators as pure functions, plus the incremental state live trading updates candle by candle.

Both paths produce bit-identical numbers: `SignalIndicators` is the one implementation, and
`precompute_signal_indicators` merely runs it (and vectorises what is exact in numpy: rolling max).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from cryptobot.clock import DAY_MS


def true_range(high: float, low: float, prev_close: float | None) -> float:
    if prev_close is None:
        return high - low
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """ATR after each candle: alpha 1/period, seeded with the first candle's range."""
    out = np.empty(len(high), dtype=np.float64)
    atr = 0.0
    prev_close = None
    for i in range(len(high)):
        tr = true_range(float(high[i]), float(low[i]), prev_close)
        atr = tr if prev_close is None else atr + (tr - atr) / period
        out[i] = atr
        prev_close = float(close[i])
    return out


def rolling_max_including(values: np.ndarray, window: int) -> np.ndarray:
    """max(values[i-window+1 .. i]) (shorter at the start)."""
    out = np.empty(len(values), dtype=np.float64)
    if len(values) == 0:
        return out
    head = min(window - 1, len(values))
    out[:head] = np.maximum.accumulate(values[:head])
    if len(values) >= window:
        view = np.lib.stride_tricks.sliding_window_view(values, window)
        out[window - 1:] = view.max(axis=1)
    return out


@dataclass(frozen=True, slots=True)
class CandleFeatures:
    """What the strategy knows about one closed signal candle, all computed by its close."""

    atr_before: float | None  # ATR after the previous candle (None for the first candle)
    atr_after: float
    high_24h: float  # highest high of the last `high_lookback` candles, this one included
    prior_volumes: np.ndarray  # volumes of the previous `volume_window` candles (may be fewer)


class SignalIndicators:
    """Incremental indicators on closed signal candles. `update` returns the candle's features.

    Medians are computed lazily (only when a rule needs them), from the same stored values in
    both the incremental and the precomputed path.
    """

    def __init__(self, atr_period: int, high_lookback: int, volume_window: int,
                 atr_pct_window: int) -> None:
        self.atr_period = atr_period
        self._atr: float | None = None
        self._prev_close: float | None = None
        self._highs: deque[float] = deque(maxlen=high_lookback)
        self._volumes: deque[float] = deque(maxlen=volume_window)
        self._atr_pct: deque[float] = deque(maxlen=atr_pct_window)
        self.count = 0

    def update(self, high: float, low: float, close: float, volume: float) -> CandleFeatures:
        tr = true_range(high, low, self._prev_close)
        atr_before = self._atr
        self._atr = tr if atr_before is None else atr_before + (tr - atr_before) / self.atr_period
        self._prev_close = close
        self._highs.append(high)
        prior = np.fromiter(self._volumes, dtype=np.float64, count=len(self._volumes))
        self._volumes.append(volume)
        self._atr_pct.append(self._atr / close)
        self.count += 1
        return CandleFeatures(atr_before, self._atr, max(self._highs), prior)

    @property
    def atr(self) -> float | None:
        return self._atr

    def atr_pct_median(self) -> float:
        return float(np.median(np.fromiter(self._atr_pct, dtype=np.float64)))

    def atr_pct_history(self) -> int:
        return len(self._atr_pct)


def volume_median(prior_volumes: np.ndarray) -> float | None:
    return float(np.median(prior_volumes)) if len(prior_volumes) else None


def day_vwap_and_prev_close(ts_open_ms: np.ndarray, high: np.ndarray, low: np.ndarray,
                            close: np.ndarray, volume: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each base candle: the UTC day's VWAP through it, and the previous UTC day's last close.

    Typical price x volume, summed from the day's first candle in order (the same running sums
    `SessionVwap` keeps live). Previous close is NaN until a whole day change has been seen.
    """
    n = len(ts_open_ms)
    vwap = np.empty(n, dtype=np.float64)
    prev_close = np.empty(n, dtype=np.float64)
    session = SessionVwap()
    for i in range(n):
        session.update(int(ts_open_ms[i]), float(high[i]), float(low[i]), float(close[i]),
                       float(volume[i]))
        vwap[i] = session.vwap
        prev_close[i] = session.prev_day_close
    return vwap, prev_close


class SessionVwap:
    """Running VWAP of the current UTC day from base candles, and the previous day's close."""

    def __init__(self) -> None:
        self.day_start_ms: int | None = None
        self._pv = 0.0
        self._v = 0.0
        self._last_close = float("nan")
        self.prev_day_close = float("nan")
        self.vwap = float("nan")

    def update(self, ts_open_ms: int, high: float, low: float, close: float,
               volume: float) -> None:
        day = ts_open_ms - ts_open_ms % DAY_MS
        if day != self.day_start_ms:
            if self.day_start_ms is not None:
                # The previous close only counts if the day just ended is the calendar day before.
                self.prev_day_close = (self._last_close if day - self.day_start_ms == DAY_MS
                                       else float("nan"))
            self.day_start_ms = day
            self._pv = 0.0
            self._v = 0.0
        typical = (high + low + close) / 3.0
        self._pv += typical * volume
        self._v += volume
        self.vwap = self._pv / self._v if self._v > 0 else typical
        self._last_close = close


class IncrementalFeatures:
    """Features updated candle by candle (live, paper, and the reference backtest path)."""

    def __init__(self, indicators: SignalIndicators) -> None:
        self.indicators = indicators
        self.session = SessionVwap()

    def on_base_candle(self, ts_open_ms: int, high: float, low: float, close: float,
                       volume: float) -> None:
        self.session.update(ts_open_ms, high, low, close, volume)

    def on_signal_candle(self, ts_open_ms: int, high: float, low: float, close: float,
                         volume: float) -> tuple[CandleFeatures, int]:
        features = self.indicators.update(high, low, close, volume)
        return features, self.indicators.count

    @property
    def day_vwap(self) -> float:
        return self.session.vwap

    @property
    def prev_day_close(self) -> float:
        return self.session.prev_day_close

    def atr_pct_median(self) -> float:
        return self.indicators.atr_pct_median()

    def atr_pct_history(self) -> int:
        return self.indicators.atr_pct_history()


class PrecomputedFeatures:
    """The same features read from arrays computed once (backtests that skip idle candles).

    Built by running the same code over the whole series; a test proves both paths identical.
    """

    def __init__(self, base_ts: np.ndarray, base_vwap: np.ndarray, base_prev_close: np.ndarray,
                 signal_ts: np.ndarray, atr_after: np.ndarray, high_24h: np.ndarray,
                 volume: np.ndarray, atr_pct: np.ndarray, volume_window: int,
                 atr_pct_window: int) -> None:
        self.base_ts, self.base_vwap, self.base_prev_close = base_ts, base_vwap, base_prev_close
        self.signal_ts, self.atr_after, self.high_24h = signal_ts, atr_after, high_24h
        self.volume, self.atr_pct = volume, atr_pct
        self.volume_window, self.atr_pct_window = volume_window, atr_pct_window
        self._base_i = -1
        self._signal_i = -1

    def on_base_candle(self, ts_open_ms: int, high: float, low: float, close: float,
                       volume: float) -> None:
        self._base_i = _index_of(self.base_ts, ts_open_ms, self._base_i)

    def on_signal_candle(self, ts_open_ms: int, high: float, low: float, close: float,
                         volume: float) -> tuple[CandleFeatures, int]:
        i = self._signal_i = _index_of(self.signal_ts, ts_open_ms, self._signal_i)
        atr_before = float(self.atr_after[i - 1]) if i > 0 else None
        prior = self.volume[max(0, i - self.volume_window):i]
        return CandleFeatures(atr_before, float(self.atr_after[i]), float(self.high_24h[i]),
                              prior), i + 1

    @property
    def day_vwap(self) -> float:
        return float(self.base_vwap[self._base_i]) if self._base_i >= 0 else float("nan")

    @property
    def prev_day_close(self) -> float:
        return float(self.base_prev_close[self._base_i]) if self._base_i >= 0 else float("nan")

    def atr_pct_median(self) -> float:
        i = self._signal_i
        return float(np.median(self.atr_pct[max(0, i + 1 - self.atr_pct_window):i + 1]))

    def atr_pct_history(self) -> int:
        return min(self._signal_i + 1, self.atr_pct_window)


def _index_of(ts: np.ndarray, ts_ms: int, hint: int) -> int:
    nxt = hint + 1
    if nxt < len(ts) and ts[nxt] == ts_ms:
        return nxt
    i = int(np.searchsorted(ts, ts_ms))
    if i >= len(ts) or ts[i] != ts_ms:
        raise KeyError(f"candle {ts_ms} is not in the precomputed series")
    return i
