"""What the engine knows of the market, point in time: signal candles and the strategy's
indicators, the engine's own ATR (sizing, trailing), the UTC day's VWAP, and the open interest,
funding and liquidations published so far.

Live, paper and the every-candle backtest grow it candle by candle. A fast backtest hands it all
signal candles and the day VWAPs up front (`MarketView(..., known=...)`): indicators and the
trigger are then computed once over the whole series, which the causality checks
(`cryptobot.runners.lookahead`) prove equal to computing them candle by candle.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from cryptobot.clock import DAY_MS, Clock
from cryptobot.config import Settings
from cryptobot.data.timeframes import ms_to_timeframe, timeframe_to_ms
from cryptobot.engine.liquidations import LiquidationBook
from cryptobot.errors import ConfigError
from cryptobot.model import Candle, PositionSide
from cryptobot.strategy.api import Strategy, triggered_rows
from cryptobot.strategy.candles import CandleView, Row, SignalCandles
from cryptobot.strategy.indicators import ATR, Indicator, SeriesCache, declared
from cryptobot.strategy.loading import guarded

T = TypeVar("T")
FUNDING_INTERVAL_MS = 8 * 3_600_000


class PointInTimeBook(Generic[T]):
    """Samples in time order; lookups never see a sample later than the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._ts: list[int] = []
        self._items: list[T] = []

    def add(self, ts_ms: int, item: T) -> bool:
        """True if the sample was kept (duplicates and stragglers: the first one seen wins)."""
        if self._ts and ts_ms <= self._ts[-1]:
            return False
        self._ts.append(ts_ms)
        self._items.append(item)
        return True

    def __len__(self) -> int:
        """Samples published by now (a backtest may hold later ones already)."""
        return bisect.bisect_right(self._ts, self.clock.now_ms())

    def last_at_or_before(self, ts_ms: int) -> T | None:
        i = bisect.bisect_right(self._ts, min(ts_ms, self.clock.now_ms())) - 1
        return self._items[i] if i >= 0 else None


class SessionVwap:
    """Running VWAP of the current UTC day from base candles, and the previous day's close."""

    def __init__(self) -> None:
        self.day_start_ms: int | None = None
        self._pv = 0.0
        self._v = 0.0
        self._last_close = float("nan")
        self.prev_day_close = float("nan")
        self.vwap = float("nan")

    def update(self, candle: Candle) -> None:
        ts = candle.ts_open_ms
        day = ts - ts % DAY_MS
        if day != self.day_start_ms:
            if self.day_start_ms is not None:
                # The previous close only counts if the day just ended is the calendar day before.
                self.prev_day_close = (self._last_close if day - self.day_start_ms == DAY_MS
                                       else float("nan"))
            self.day_start_ms = day
            self._pv = 0.0
            self._v = 0.0
        typical = (candle.high + candle.low + candle.close) / 3.0
        self._pv += typical * candle.volume
        self._v += candle.volume
        self.vwap = self._pv / self._v if self._v > 0 else typical
        self._last_close = candle.close


class KnownSession:
    """A backtest's base candles, for the day VWAP and previous close at any candle: the same
    running sums `SessionVwap` keeps, computed only where asked (np.cumsum adds left to right,
    exactly as `SessionVwap` does; a test proves the two equal on every candle)."""

    def __init__(self, base: Mapping[str, np.ndarray]) -> None:
        self.ts_open_ms = base["ts_open_ms"]
        self._base = base
        self._day = self.ts_open_ms - self.ts_open_ms % DAY_MS

    def at(self, i: int) -> tuple[float, float]:
        """(day VWAP through base candle i, previous UTC day's close)."""
        day = self._day[i]
        first = int(np.searchsorted(self._day, day))
        base = self._base
        high, low, close, volume = (base[name][first:i + 1]
                                    for name in ("high", "low", "close", "volume"))
        typical = (high + low + close) / 3.0
        pv, v = float(np.cumsum(typical * volume)[-1]), float(np.cumsum(volume)[-1])
        vwap = pv / v if v > 0 else float(typical[-1])
        follows = first > 0 and day - self._day[first - 1] == DAY_MS
        return vwap, float(base["close"][first - 1]) if follows else float("nan")


class _KnownSessionCursor:
    def __init__(self, known: KnownSession) -> None:
        self.known = known
        self._i = -1
        self._values: tuple[float, float] | None = None

    def update(self, candle: Candle) -> None:
        ts, i = self.known.ts_open_ms, self._i + 1
        if i >= len(ts) or ts[i] != candle.ts_open_ms:
            i = int(np.searchsorted(ts, candle.ts_open_ms))
            if i >= len(ts) or ts[i] != candle.ts_open_ms:
                raise KeyError(f"base candle {candle.ts_open_ms} is not in the data")
        self._i = i
        self._values = None

    def _current(self) -> tuple[float, float]:
        if self._values is None:
            self._values = ((float("nan"), float("nan")) if self._i < 0
                            else self.known.at(self._i))
        return self._values

    @property
    def vwap(self) -> float:
        return self._current()[0]

    @property
    def prev_day_close(self) -> float:
        return self._current()[1]


@dataclass(frozen=True)
class KnownMarket:
    """What a fast backtest knows before it starts: every signal candle and day VWAP."""

    signal: Mapping[str, np.ndarray]  # ts_open_ms, open, high, low, close, volume
    session: KnownSession


def signal_interval_ms(settings: Settings, base_interval_ms: int | None = None) -> int:
    """market.signal_timeframe in ms, checked (against the base candles' interval if known):
    a signal candle must be a whole number of base candles, or buckets would straddle them."""
    text = settings.market.signal_timeframe
    try:
        signal_ms = timeframe_to_ms(text)
    except ValueError as exc:
        raise ConfigError(f"market.signal_timeframe: {exc}") from None
    if base_interval_ms is not None and (base_interval_ms <= 0 or signal_ms % base_interval_ms):
        raise ConfigError(
            f"market.signal_timeframe {text!r} is not a whole multiple of the base candles' "
            f"interval {ms_to_timeframe(base_interval_ms)}")
    return signal_ms


class MarketView:
    def __init__(self, strategy: Strategy, signal_interval_ms: int, atr_period: int,
                 atr_pct_window: int, clock: Clock, known: KnownMarket | None = None) -> None:
        name = type(strategy).__name__
        # The trigger is asked on a fresh copy: never on the state `on_candle` keeps, so a
        # backtest asking once for the whole history and live asking once a candle agree.
        self.trigger_strategy = guarded(name, "__init__", type(strategy), strategy.params,
                                        strategy.symbol)
        self.indicators: dict[str, Indicator] = guarded(
            name, "indicators", lambda: declared(strategy.indicators()))
        self.atr_indicator = ATR(atr_period)
        self.atr_pct_window = atr_pct_window
        self.candles = (SignalCandles(signal_interval_ms) if known is None
                        else SignalCandles.known(signal_interval_ms, known.signal))
        self.cache = SeriesCache(self.candles)
        self.session = SessionVwap() if known is None else _KnownSessionCursor(known.session)
        self.clock = clock
        self.open_interest = PointInTimeBook(clock)
        self.funding = PointInTimeBook(clock)
        self.liquidations = LiquidationBook(clock)
        self._trigger_mask: np.ndarray | None = None
        if known is not None:
            self._trigger_mask = np.zeros(len(self.candles), dtype=bool)
            self._trigger_mask[self._triggered(np.arange(len(self.candles)))] = True

    def on_base_candle(self, candle: Candle) -> None:
        self.session.update(candle)

    def close_signal_candle(self, candle: Candle) -> int:
        return self.candles.close(candle)

    def view(self, rows: np.ndarray) -> CandleView:
        return CandleView(self.candles, self.cache, self.indicators, rows)

    def row(self, i: int) -> Row:
        return Row(self.view(np.array([i])))

    def triggered(self, i: int) -> bool:
        if self._trigger_mask is not None:
            return bool(self._trigger_mask[i])
        return len(self._triggered(np.array([i]))) == 1

    def trigger_mask(self) -> np.ndarray | None:
        """Per signal candle, where the trigger holds (known data only)."""
        return self._trigger_mask

    def _triggered(self, rows: np.ndarray) -> np.ndarray:
        strategy = self.trigger_strategy
        return guarded(type(strategy).__name__, "trigger", triggered_rows, strategy,
                       self.view(rows))

    def atr(self, i: int) -> float:
        return float(self.cache.series(self.atr_indicator)[i])

    def atr_series(self) -> np.ndarray:
        return self.cache.series(self.atr_indicator)

    def best_close(self, rows: range, since_ms: int, side: PositionSide) -> float | None:
        """The most favourable close for `side` (a long's highest, a short's lowest) of the
        signal candles in `rows` that opened at or after `since_ms` (None if none did)."""
        ts = self.candles.column("ts_open_ms")[rows.start:rows.stop]
        after = rows.start + int((ts < since_ms).sum())  # sorted: since_ms onwards
        if after >= rows.stop:
            return None
        closes = self.candles.column("close")[after:rows.stop]
        return float(closes.max() if side is PositionSide.LONG else closes.min())

    def atr_pct_median(self, i: int) -> tuple[float, int]:
        """The median ATR% over the volatility window ending at candle i, and its length."""
        lo = max(0, i + 1 - self.atr_pct_window)
        atr_pct = self.atr_series()[lo:i + 1] / self.candles.column("close")[lo:i + 1]
        return float(np.median(atr_pct)), i + 1 - lo

    def funding_settled_in(self, candle: Candle) -> float | None:
        """The funding rate settled inside this base candle (at an 8h mark), if published."""
        end = candle.ts_close_ms
        due = end - end % FUNDING_INTERVAL_MS
        if not candle.ts_open_ms < due <= end or due > self.clock.now_ms():
            return None
        rate = self.funding.last_at_or_before(due)
        return rate.rate if rate is not None and rate.ts_ms == due else None

    @property
    def day_vwap(self) -> float:
        return self.session.vwap

    @property
    def prev_day_close(self) -> float:
        return self.session.prev_day_close
