"""The mirror of liquidation_rebound.py: sell the confirmed lower high after a short squeeze.

A squeeze candle (bullish, body >= 1.5 ATR before it, volume >= 3x the median of the 96 before
it, close >= 104% of the 24h low), open interest down >= 1.5% through the squeeze (or through
the next candle: the shorts were liquidated, not new longs opened), then a setup that waits up
to 16 candles for a candle closing below the highest low of the rallies that held under the
high H. Short at the next base candle, hard stop H + 0.1 ATR. Its targets are the engine's
`[exits]` rule, as the long rule's: the day's VWAP and the previous day's close, below the entry
for a short.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptobot.strategy import (
    ATR,
    Candle,
    CandleView,
    Decision,
    Enter,
    Lag,
    Params,
    PositionSide,
    Reject,
    RollingMedian,
    RollingMin,
    SetupEvent,
    Strategy,
    StrategyContext,
    param,
)


class SqueezeParams(Params):
    atr_period: int = param(14, ge=2, le=500, doc="Wilder's ATR on signal candles")
    spike_body_atr: float = param(1.5, gt=0, le=20,
                                  doc="squeeze: close - open >= this x ATR before the squeeze")
    spike_volume_mult: float = param(3.0, gt=0, le=100,
                                     doc="squeeze: volume >= this x the median volume before it")
    volume_median_candles: int = param(96, ge=2, le=5000,
                                       doc="how many previous candles the median volume uses")
    low_lookback_candles: int = param(96, ge=1, le=5000,
                                      doc="the '24h low' spans this many candles, squeeze included")
    min_close_to_low: float = param(1.04, ge=1.0, le=100,
                                    doc="squeeze: close >= this x the 24h low (a squeeze)")
    oi_confirmation: bool = param(True, doc="require open interest to fall through the squeeze")
    oi_drop_pct: float = param(1.5, ge=0, le=100, doc="... by at least this many percent")
    setup_expiry_candles: int = param(16, ge=1, le=1000,
                                      doc="no confirmed lower high by squeeze + this many: expired")
    stop_atr_buffer: float = param(0.1, ge=0, le=10,
                                   doc="hard stop = H + this x ATR (after the confirming candle)")


@dataclass(slots=True)
class _Setup:
    signal_id: str
    spike_ms: int
    spike_index: int
    spike_interval_ms: int
    high: float  # H
    metrics: dict[str, float | None]
    events: list[SetupEvent]
    candidate_lows: list[float] = field(default_factory=list)
    oi_pending: bool = False


class ShortSqueeze(Strategy):
    Params = SqueezeParams
    side = PositionSide.SHORT

    def __init__(self, params: SqueezeParams, symbol: str) -> None:
        super().__init__(params, symbol)
        self._setup: _Setup | None = None

    def indicators(self):
        p = self.params
        return {
            "atr": ATR(p.atr_period),
            "atr_before": Lag(ATR(p.atr_period)),
            "low_24h": RollingMin("low", p.low_lookback_candles),
            "volume_median": Lag(RollingMedian("volume", p.volume_median_candles)),
        }

    def trigger(self, c: CandleView):
        """A squeeze: each condition is checked only where the ones before held."""
        p = self.params
        yield c.close > c.open
        yield c.atr_before > 0
        yield c.close - c.open >= p.spike_body_atr * c.atr_before
        yield c.close >= p.min_close_to_low * c.low_24h
        yield c.volume_median > 0
        yield c.volume >= p.spike_volume_mult * c.volume_median

    def waiting(self) -> bool:
        return self._setup is not None

    def setup_candles(self) -> int:
        # the spike, then at most setup_expiry_candles more (its open interest is read at the
        # spike and one candle after it; the decision's evidence looks back from the spike)
        return self.params.setup_expiry_candles + 1

    def on_candle(self, ctx: StrategyContext) -> list[Decision]:
        decisions: list[Decision] = []
        candle = ctx.candle
        if ctx.triggered:
            if self._setup is not None:
                old = self._setup
                old.events.append(SetupEvent(candle.ts_open_ms, "superseded", candle.high))
                decisions.append(self._reject(old, "superseded by a new spike"))
            self._start_setup(candle, ctx, decisions)
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
                decisions.append(self._reject(setup, self._oi_reason(change)))
                return decisions
        if confirmed:
            setup.events.append(SetupEvent(candle.ts_open_ms, "confirmed", candle.close))
            self._setup = None
            if ctx.has_position:
                decisions.append(self._reject(setup, "position open"))
            else:
                stop = setup.high + self.params.stop_atr_buffer * ctx.ind.atr
                decisions.append(Enter(setup.signal_id, setup.spike_ms, stop,
                                       dict(setup.metrics), tuple(setup.events),
                                       side=self.side))
        elif ctx.index - setup.spike_index >= self.params.setup_expiry_candles:
            setup.events.append(SetupEvent(candle.ts_open_ms, "expired", candle.close))
            decisions.append(self._reject(
                setup, f"setup expired: no confirmed lower high within "
                       f"{self.params.setup_expiry_candles} candles"))
        return decisions

    # --- the rule -----------------------------------------------------------------------

    def _start_setup(self, candle: Candle, ctx: StrategyContext,
                     decisions: list[Decision]) -> None:
        ind = ctx.ind
        metrics: dict[str, float | None] = {
            "body_atr": (candle.close - candle.open) / ind.atr_before,
            "volume_ratio": candle.volume / ind.volume_median,
            "rise_from_low_pct": (candle.close / ind.low_24h - 1.0) * 100.0,
            "oi_change_pct": None,
            "atr": ind.atr_before,
        }
        setup = _Setup(self.signal_id(candle.ts_open_ms), candle.ts_open_ms, ctx.index,
                       candle.interval_ms, candle.high, metrics,
                       [SetupEvent(candle.ts_open_ms, "spike", candle.high)])
        change = self._oi_change(setup, candle.ts_close_ms, ctx)
        metrics["oi_change_pct"] = change
        self._setup = setup
        if not self.params.oi_confirmation:
            return
        if change is None:
            decisions.append(self._reject(setup, "no open-interest data"))
        elif not self._oi_ok(change):
            setup.oi_pending = True  # one more candle for the open interest to fall

    def _advance(self, setup: _Setup, candle: Candle) -> bool:
        """One step of the setup's state machine; True when the lower high is confirmed."""
        if candle.high > setup.high:
            setup.high = candle.high
            setup.candidate_lows.clear()
            setup.events.append(SetupEvent(candle.ts_open_ms, "new_high", candle.high))
        elif setup.candidate_lows and candle.close < max(setup.candidate_lows):
            return True
        if candle.high < setup.high:
            setup.candidate_lows.append(candle.low)
            setup.events.append(SetupEvent(candle.ts_open_ms, "candidate", candle.low))
        return False

    def _oi_change(self, setup: _Setup, end_ms: int, ctx: StrategyContext) -> float | None:
        """OI change in % from the squeeze's open to `end_ms`; None when no samples cover it."""
        start = ctx.open_interest.last_at_or_before(setup.spike_ms)
        end = ctx.open_interest.last_at_or_before(end_ms)
        if start is None or end is None or end.ts_ms <= start.ts_ms or start.oi_contracts <= 0:
            return None
        if setup.spike_ms - start.ts_ms > setup.spike_interval_ms:
            return None  # the last sample before the squeeze is too old to say anything
        return (end.oi_contracts / start.oi_contracts - 1.0) * 100.0

    def _oi_ok(self, change: float | None) -> bool:
        return change is not None and change <= -self.params.oi_drop_pct

    def _oi_reason(self, change: float | None) -> str:
        if change is None:
            return "no open-interest data"
        # The text before ':' is the same for every such rejection (summaries group by it).
        return (f"open interest did not fall enough: {change:+.2f}% "
                f"(needs <= -{self.params.oi_drop_pct}%)")

    def _reject(self, setup: _Setup, reason: str) -> Reject:
        if self._setup is setup:
            self._setup = None
        return Reject(setup.signal_id, setup.spike_ms, reason, dict(setup.metrics),
                      tuple(setup.events))
