"""What the engine knows of the market, point in time: signal candles and the strategy's
indicators, the engine's own ATR (sizing, trailing), the UTC day's VWAP, and the open interest,
funding and liquidations published so far.

Live, paper and the every-candle backtest grow it candle by candle, keeping the signal candles
and indicator series their readers need (`retain_rows`: a fixed-size history however long the
run; rows keep counting from the start). A fast backtest hands it all
signal candles and the day VWAPs up front (`MarketView(..., known=...)`): indicators and the
trigger are then computed once over the whole series, which the causality checks
(`cryptobot.runners.lookahead`) prove equal to computing them candle by candle.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cryptobot.clock import DAY_MS, Clock
from cryptobot.config import Settings
from cryptobot.data.timeframes import ms_to_timeframe, timeframe_to_ms
from cryptobot.engine.liquidations import LiquidationBook
from cryptobot.engine.point_in_time import FundingDue, PointInTimeBook
from cryptobot.errors import ConfigError
from cryptobot.model import Candle, PositionSide
from cryptobot.strategy.api import Strategy, triggered_rows
from cryptobot.strategy.candles import CandleView, Row, SignalCandles
from cryptobot.strategy.indicators import ATR, Indicator, Lag, SeriesCache, declared, median
from cryptobot.strategy.loading import guarded


def _rolled_over(day_start_ms: int, last_close: float, now_ms: int) -> tuple[float, float]:
    """(day VWAP, previous day's close) once the clock has entered a UTC day none of whose
    candles has closed yet: the new day's VWAP is undefined (NaN: that target is skipped), and
    the day that just ended is the previous day, its close the last one seen."""
    day = now_ms - now_ms % DAY_MS
    return float("nan"), last_close if day - day_start_ms == DAY_MS else float("nan")


class SessionVwap:
    """Running VWAP of the current UTC day from base candles, and the previous day's close.
    `as_of(now_ms)` is what they are at the engine's clock: an entry on the first candle of a
    day sees the day just ended as the previous day, and no VWAP until a candle of the new day
    has closed. `at_time(ts_ms)`: what they were at an earlier time (a restored trade's
    targets are its entry's), from the last `HISTORY_DAYS` days of candles."""

    HISTORY_DAYS = 35

    def __init__(self) -> None:
        self.day_start_ms: int | None = None
        self._pv = 0.0
        self._v = 0.0
        self._last_close = float("nan")
        self.prev_day_close = float("nan")
        self.vwap = float("nan")
        self._closes_ms: list[int] = []  # per base candle fed: its close, and the state after it
        self._states: list[tuple[int, float, float, float]] = []  # day, vwap, prev, close

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
        self._remember(candle.ts_close_ms, (day, self.vwap, self.prev_day_close, candle.close))

    def _remember(self, close_ms: int, state: tuple[int, float, float, float]) -> None:
        closes = self._closes_ms
        if closes and closes[0] < close_ms - (self.HISTORY_DAYS + 1) * DAY_MS:  # a day at once
            cut = bisect.bisect_left(closes, close_ms - self.HISTORY_DAYS * DAY_MS)
            del closes[:cut], self._states[:cut]
        closes.append(close_ms)
        self._states.append(state)

    def as_of(self, now_ms: int) -> tuple[float, float]:
        """(day VWAP, previous UTC day's close) at `now_ms`, from the candles fed so far."""
        if self.day_start_ms is None:
            return float("nan"), float("nan")
        if now_ms - now_ms % DAY_MS == self.day_start_ms:
            return self.vwap, self.prev_day_close
        return _rolled_over(self.day_start_ms, self._last_close, now_ms)

    def at_time(self, ts_ms: int) -> tuple[float, float]:
        """`as_of(ts_ms)` as it was when the clock read `ts_ms` (the candles closed by then);
        NaN before the candles remembered."""
        i = bisect.bisect_right(self._closes_ms, ts_ms) - 1
        if i < 0:
            return float("nan"), float("nan")
        day, vwap, prev_close, close = self._states[i]
        if ts_ms - ts_ms % DAY_MS == day:
            return vwap, prev_close
        return _rolled_over(day, close, ts_ms)


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

    def as_of(self, i: int, now_ms: int) -> tuple[float, float]:
        """`SessionVwap.as_of(now_ms)` after base candles up to i were fed (i < 0: none)."""
        if i < 0:
            return float("nan"), float("nan")
        day = int(self._day[i])
        if now_ms - now_ms % DAY_MS == day:
            return self.at(i)
        return _rolled_over(day, float(self._base["close"][i]), now_ms)


class _KnownSessionCursor:
    def __init__(self, known: KnownSession) -> None:
        self.known = known
        self._i = -1
        self._fed_ms: int | None = None  # the candle fed last, until its row is looked up
        self._interval_ms = 0
        self._values: tuple[int, tuple[float, float]] | None = None

    def update(self, candle: Candle) -> None:
        self._fed_ms, self._interval_ms = candle.ts_open_ms, candle.interval_ms
        self._values = None

    def _row(self) -> int:
        """The row of the candle fed last, looked up when first asked (most never are)."""
        if self._fed_ms is not None:
            ts, i = self.known.ts_open_ms, int(np.searchsorted(self.known.ts_open_ms,
                                                              self._fed_ms))
            if i >= len(ts) or ts[i] != self._fed_ms:
                raise KeyError(f"base candle {self._fed_ms} is not in the data")
            self._i, self._fed_ms = i, None
        return self._i

    def as_of(self, now_ms: int) -> tuple[float, float]:
        if self._values is None or self._values[0] != now_ms:
            self._values = now_ms, self.known.as_of(self._row(), now_ms)
        return self._values[1]

    def at_time(self, ts_ms: int) -> tuple[float, float]:
        """`SessionVwap.at_time`: from the candles fed so far that had closed by `ts_ms`."""
        fed = self.known.ts_open_ms[:self._row() + 1]
        i = int(np.searchsorted(fed + self._interval_ms, ts_ms, side="right")) - 1
        return self.known.as_of(i, ts_ms)


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
        self.funding_due = FundingDue(self.funding)
        self.liquidations = LiquidationBook(clock)
        self._trigger_mask: np.ndarray | None = None
        if known is not None:
            self._trigger_mask = np.zeros(len(self.candles), dtype=bool)
            self._trigger_mask[self._triggered(np.arange(len(self.candles)))] = True

    def on_base_candle(self, candle: Candle) -> None:
        self.session.update(candle)

    def bound_history(self, settings: Settings) -> None:
        """Bound what an open-ended run keeps (funding, 3 rates a day, is kept whole); a market
        known up front (the fast backtest) is never bounded."""
        strategy = self.trigger_strategy
        setup = guarded(type(strategy).__name__, "setup_candles", strategy.setup_candles)
        setup_ms = (setup or 0) * self.candles.interval_ms
        # What the liquidation evidence looks back over from a setup's spike (its median's
        # days), a day more, and the setup's own span up to its decision.
        liquidations_ms = (settings.evidence.liquidation_median_days + 2) * DAY_MS + setup_ms
        self.liquidations.retain(liquidations_ms)
        # Signal candles: a restored trade's since its entry (the time stop bounds its age), and a
        # day more; `retain_rows` adds what the indicators and the ATR% median read.
        held_ms = int(settings.exits.time_stop_hours * 3_600_000) + DAY_MS
        self.retain_rows(-(-held_ms // self.candles.interval_ms))
        # Open interest (polled every 30 s live): as long as either; all of it for a strategy
        # that does not say how long its setups run.
        self.open_interest.retain(None if setup is None else max(liquidations_ms, held_ms))

    def retain_rows(self, rows: int | None) -> None:
        """Keep at least the latest `rows` signal candles for the engine's own readers (the
        trailing stop's and a restored trade's), and what the ATR% median and every indicator
        needs; all of them when `rows` is None or an indicator needs the whole history."""
        needs = [indicator.history_rows for indicator in self.indicators.values()]
        if rows is None or None in needs:
            self.candles.retain(None)
            return
        self.candles.retain(max(rows, self.atr_pct_window, *needs) + 1)

    def close_signal_candle(self, candle: Candle) -> int:
        row = self.candles.close(candle)
        if self.candles.full():  # recursive series catch up before their candles go
            self.cache.extend_all(self._recursive())
            self.cache.drop_rows(self.candles.compact())
        return row

    def _recursive(self) -> list[Indicator]:
        """The series that carry state from candle to candle (a `Lag`'s: its indicator's)."""
        found = [self.atr_indicator]
        for indicator in self.indicators.values():
            while isinstance(indicator, Lag):
                indicator = indicator.of
            if not indicator.row_wise:
                found.append(indicator)
        return found

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
        return float(self.cache.series(self.atr_indicator)[self.candles.held_row(i)])

    def atr_series(self) -> np.ndarray:
        return self.cache.series(self.atr_indicator)

    def best_close(self, rows: range, since_ms: int, side: PositionSide) -> float | None:
        """The most favourable close for `side` (a long's highest, a short's lowest) of the
        signal candles in `rows` that opened at or after `since_ms` (None if none did)."""
        first = self.candles.first_row  # rows forgotten are before any trade held
        start, stop = max(rows.start, first) - first, rows.stop - first
        ts = self.candles.column("ts_open_ms")[start:stop]
        after = start + int(ts.searchsorted(since_ms))  # sorted: since_ms onwards
        if after >= stop:
            return None
        closes = self.candles.column("close")[after:stop]
        return float(closes.max() if side is PositionSide.LONG else closes.min())

    def atr_pct_median(self, i: int) -> tuple[float, int]:
        """The median ATR% over the volatility window ending at candle i, and its length."""
        lo = max(0, i + 1 - self.atr_pct_window)
        start, end = self.candles.held_row(lo), self.candles.held_row(i) + 1  # kept: retain_rows
        atr_pct = self.atr_series()[start:end] / self.candles.column("close")[start:end]
        return float(median(atr_pct)), i + 1 - lo

    @property
    def day_vwap(self) -> float:
        """The UTC day's VWAP at the clock (NaN on a day none of whose candles has closed)."""
        return self.session.as_of(self.clock.now_ms())[0]

    def session_at(self, ts_ms: int) -> tuple[float, float]:
        """(day VWAP, previous UTC day's close) as they were at `ts_ms` (a restored trade's
        entry): what `day_vwap` and `prev_day_close` said when the clock read it."""
        return self.session.at_time(ts_ms)

    @property
    def prev_day_close(self) -> float:
        """The previous UTC day's close at the clock (on the first candle of a day: the close
        of the day that just ended)."""
        return self.session.as_of(self.clock.now_ms())[1]
