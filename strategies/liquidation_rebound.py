"""The seed's rule example 3: buy the confirmed higher low after a liquidation spike.

Exactly as ../shared/STRATEGY.md defines it: a spike candle (bearish, body >= 1.5 ATR before it,
volume >= 3x the median of the 96 before it, close <= 96% of the 24h high), open interest down
>= 1.5% through the spike (or through the next candle), then a setup that waits up to 16 candles
for a candle closing above the lowest high of the pullbacks that held above the low L.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cryptobot.clock import iso_utc
from cryptobot.indicators import rolling_max_including, volume_median
from cryptobot.model import Candle, SetupEvent
from cryptobot.strategy import (
    Decision,
    EnterLong,
    OpenTradeView,
    Rejected,
    Strategy,
    StrategyContext,
)

# Loose factor for the vectorised pre-filter, so it is a strict superset of the exact rule.
_LOOSE = 1e-9


@dataclass(slots=True)
class _Setup:
    signal_id: str
    spike_ms: int
    spike_index: int
    spike_interval_ms: int
    low: float  # L
    metrics: dict[str, float | None]
    events: list[SetupEvent]
    candidate_highs: list[float] = field(default_factory=list)
    oi_pending: bool = False


class LiquidationRebound(Strategy):
    def __init__(self, settings, symbol: str) -> None:
        super().__init__(settings, symbol)
        self.rules = settings.strategy
        self.exits = settings.exits
        self._setup: _Setup | None = None
        self._compact_symbol = symbol.split(":")[0].replace("/", "")

    # --- the verbs the engine calls -------------------------------------------------------

    def is_idle(self) -> bool:
        return self._setup is None

    def on_candle(self, candle: Candle, ctx: StrategyContext) -> list[Decision]:
        decisions: list[Decision] = []
        spike = self._spike_metrics(candle, ctx)
        if spike is not None:
            if self._setup is not None:
                old = self._setup
                old.events.append(SetupEvent(candle.ts_open_ms, "superseded", candle.low))
                decisions.append(self._reject(old, "superseded by a new spike", ctx))
            self._start_setup(candle, ctx, spike, decisions)
            return decisions
        setup = self._setup
        if setup is None:
            return decisions
        confirmed = self._advance(setup, candle)
        if setup.oi_pending:
            setup.oi_pending = False
            change = self._oi_change(setup, candle.ts_close_ms, ctx)
            setup.metrics["oi_change_pct"] = change
            if not self._oi_ok(change):
                decisions.append(self._reject(setup, self._oi_reason(change), ctx))
                return decisions
        if confirmed:
            setup.events.append(SetupEvent(candle.ts_open_ms, "confirmed", candle.close))
            self._setup = None
            if ctx.has_position:
                decisions.append(self._reject(setup, "position open", ctx, keep_setup=True))
            else:
                atr = ctx.features.atr_after
                stop = setup.low - self.rules.stop_atr_buffer * atr
                decisions.append(EnterLong(setup.signal_id, setup.spike_ms, stop, atr,
                                           dict(setup.metrics), tuple(setup.events)))
        elif ctx.candle_index - setup.spike_index >= self.rules.setup_expiry_candles:
            setup.events.append(SetupEvent(candle.ts_open_ms, "expired", candle.close))
            decisions.append(self._reject(
                setup, f"setup expired: no confirmed higher low within "
                       f"{self.rules.setup_expiry_candles} candles", ctx))
        return decisions

    def exit_targets(self, ctx: StrategyContext, entry_price: float,
                     stop_price: float) -> tuple[float, ...]:
        risk = entry_price - stop_price
        fixed = (entry_price + self.exits.fixed_tp1_r * risk,
                 entry_price + self.exits.fixed_tp2_r * risk)
        if self.exits.targets == "fixed_r":
            return fixed
        floor = entry_price + self.exits.min_target_r * risk
        milestones = sorted({m for m in (ctx.day_vwap, ctx.prev_day_close)
                             if math.isfinite(m) and m >= floor})
        return tuple(milestones) if milestones else fixed

    def trailing_stop(self, ctx: StrategyContext, trade: OpenTradeView) -> float | None:
        if not (self.exits.trailing and trade.tp1_done) or trade.atr is None:
            return None
        level = trade.highest_close - self.exits.trailing_atr_mult * trade.atr
        return max(level, trade.breakeven_price)

    def trails(self, trade: OpenTradeView) -> bool:
        return self.exits.trailing and trade.tp1_done

    def candidate_mask(self, open_, high, low, close, volume, atr_after) -> np.ndarray:
        """Spike candidates by the candle rules (a loose superset; `on_candle` decides exactly)."""
        n = len(open_)
        atr_before = np.full(n, np.nan)
        atr_before[1:] = atr_after[:-1]
        high_24h = rolling_max_including(high, self.rules.high_lookback_candles)
        body = open_ - close
        rough = ((close < open_) & (body >= self.rules.spike_body_atr * atr_before * (1 - _LOOSE))
                 & (close <= self.rules.max_close_to_high * high_24h * (1 + _LOOSE)))
        window = self.rules.volume_median_candles
        mask = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(rough):
            if i < self._min_history():
                continue
            median = float(np.median(volume[i - window:i]))
            mask[i] = volume[i] >= self.rules.spike_volume_mult * median * (1 - _LOOSE)
        return mask

    # --- the rule -----------------------------------------------------------------------

    def _min_history(self) -> int:
        # Full windows only: the median needs 96 earlier candles, the 24h high 96 candles.
        return max(self.rules.volume_median_candles, self.rules.high_lookback_candles - 1, 1)

    def _spike_metrics(self, candle: Candle, ctx: StrategyContext) -> dict | None:
        f = ctx.features
        if candle.close >= candle.open or f.atr_before is None or f.atr_before <= 0:
            return None
        if ctx.candle_index - 1 < self._min_history():
            return None
        body = candle.open - candle.close
        if body < self.rules.spike_body_atr * f.atr_before:
            return None
        if candle.close > self.rules.max_close_to_high * f.high_24h:
            return None
        median = volume_median(f.prior_volumes)
        if not median or candle.volume < self.rules.spike_volume_mult * median:
            return None
        return {
            "body_atr": body / f.atr_before,
            "volume_ratio": candle.volume / median,
            "drop_from_high_pct": (1.0 - candle.close / f.high_24h) * 100.0,
            "oi_change_pct": None,
            "atr": f.atr_before,
        }

    def _start_setup(self, candle: Candle, ctx: StrategyContext, metrics: dict,
                     decisions: list[Decision]) -> None:
        stamp = iso_utc(candle.ts_open_ms)[:16].replace("-", "").replace(":", "")
        signal_id = f"{self._compact_symbol}-{stamp}"  # e.g. BTCUSDT-20240805T0600
        setup = _Setup(signal_id, candle.ts_open_ms, ctx.candle_index, candle.interval_ms,
                       candle.low, metrics, [SetupEvent(candle.ts_open_ms, "spike", candle.low)])
        change = self._oi_change(setup, candle.ts_close_ms, ctx)
        metrics["oi_change_pct"] = change
        self._setup = setup
        if not self.rules.oi_confirmation:
            return
        if change is None:
            decisions.append(self._reject(setup, "no open-interest data", ctx))
        elif not self._oi_ok(change):
            setup.oi_pending = True  # one more candle for the open interest to fall

    def _advance(self, setup: _Setup, candle: Candle) -> bool:
        """One step of the setup's state machine; True when the higher low is confirmed."""
        if candle.low < setup.low:
            setup.low = candle.low
            setup.candidate_highs.clear()
            setup.events.append(SetupEvent(candle.ts_open_ms, "new_low", candle.low))
        elif setup.candidate_highs and candle.close > min(setup.candidate_highs):
            return True
        if candle.low > setup.low:
            setup.candidate_highs.append(candle.high)
            setup.events.append(SetupEvent(candle.ts_open_ms, "candidate", candle.high))
        return False

    def _oi_change(self, setup: _Setup, end_ms: int, ctx: StrategyContext) -> float | None:
        """OI change in % from the spike's open to `end_ms`; None when no samples cover it."""
        start = ctx.open_interest.last_at_or_before(setup.spike_ms)
        end = ctx.open_interest.last_at_or_before(end_ms)
        if start is None or end is None or end.ts_ms <= start.ts_ms or start.oi_contracts <= 0:
            return None
        if setup.spike_ms - start.ts_ms > setup.spike_interval_ms:
            return None  # the last sample before the spike is too old to say anything
        return (end.oi_contracts / start.oi_contracts - 1.0) * 100.0

    def _oi_ok(self, change: float | None) -> bool:
        return change is not None and change <= -self.rules.oi_drop_pct

    def _oi_reason(self, change: float | None) -> str:
        if change is None:
            return "no open-interest data"
        # The text before ':' is the same for every such rejection (summaries group by it).
        return (f"open interest did not fall enough: {change:+.2f}% "
                f"(needs <= -{self.rules.oi_drop_pct}%)")

    def _reject(self, setup: _Setup, reason: str, ctx: StrategyContext,
                keep_setup: bool = False) -> Rejected:
        if not keep_setup and self._setup is setup:
            self._setup = None
        return Rejected(setup.signal_id, setup.spike_ms, reason, dict(setup.metrics),
                        tuple(setup.events))
