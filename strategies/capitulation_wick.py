"""A capitulation wick: a candle that fell hard, was bought back, and closed near its high, on
heavy volume. Buy at once, stop under the wick. The README's example strategy: one file that
imports only the strategy API; a test runs it in backtest, paper replay and live.
"""

from __future__ import annotations

import numpy as np

from cryptobot.strategy import (
    ATR,
    SMA,
    Decision,
    Enter,
    Lag,
    Params,
    Reject,
    Strategy,
    StrategyContext,
    param,
)


class WickParams(Params):
    atr_period: int = param(14, ge=2, le=500, doc="Wilder's ATR on signal candles")
    volume_window: int = param(48, ge=2, le=2000, doc="candles in the average volume")
    volume_mult: float = param(2.5, gt=0, le=100, doc="volume >= this x the average before it")
    wick_atr: float = param(1.0, gt=0, le=20, doc="lower wick >= this x ATR")
    stop_atr_buffer: float = param(0.2, ge=0, le=10, doc="stop = the wick's low - this x ATR")


class CapitulationWick(Strategy):
    Params = WickParams

    def indicators(self):
        p = self.params
        return {"atr": ATR(p.atr_period),
                "avg_volume": Lag(SMA("volume", p.volume_window))}  # the candles before

    def trigger(self, c):
        p = self.params
        lower_wick = np.minimum(c.open, c.close) - c.low
        return (lower_wick >= p.wick_atr * c.atr) & (c.volume >= p.volume_mult * c.avg_volume)

    def waiting(self) -> bool:
        return False  # it decides on the triggering candle itself: nothing is ever pending

    def setup_candles(self) -> int:
        return 1  # decided on the triggering candle

    def on_candle(self, ctx: StrategyContext) -> list[Decision]:
        candle, ind = ctx.candle, ctx.ind
        signal_id = self.signal_id(candle.ts_open_ms)
        metrics = {"wick_atr": (min(candle.open, candle.close) - candle.low) / ind.atr,
                   "volume_ratio": candle.volume / ind.avg_volume}
        if ctx.has_position:
            return [Reject(signal_id, candle.ts_open_ms, "position open", metrics)]
        stop = candle.low - self.params.stop_atr_buffer * ind.atr
        return [Enter(signal_id, candle.ts_open_ms, stop, metrics, ())]
