"""The seed's rule example 3: buy the confirmed higher low after a liquidation spike.

Exactly as ../shared/STRATEGY.md defines it: a spike candle (bearish, body >= 1.5 ATR before it,
volume >= 3x the median of the 96 before it, close <= 96% of the 24h high), open interest down
>= 1.5% through the spike (or through the next candle), then a setup that waits up to 16 candles
for a candle closing above the lowest high of the pullbacks that held above the low L.
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
    Reject,
    RollingMax,
    RollingMedian,
    SetupEvent,
    Strategy,
    StrategyContext,
    param,
)


class RuleParams(Params):
    atr_period: int = param(14, ge=2, le=500, doc="Wilder's ATR on signal candles")
    spike_body_atr: float = param(1.5, gt=0, le=20,
                                  doc="spike: open - close >= this x ATR before the spike")
    spike_volume_mult: float = param(3.0, gt=0, le=100,
                                     doc="spike: volume >= this x the median volume before it")
    volume_median_candles: int = param(96, ge=2, le=5000,
                                       doc="how many previous candles the median volume uses")
    high_lookback_candles: int = param(96, ge=1, le=5000,
                                       doc="the '24h high' spans this many candles, spike included")
    max_close_to_high: float = param(0.96, gt=0, le=1.0,
                                     doc="spike: close <= this x the 24h high (a crash)")
    oi_confirmation: bool = param(True, doc="require open interest to fall through the spike")
    oi_drop_pct: float = param(1.5, ge=0, le=100, doc="... by at least this many percent")
    setup_expiry_candles: int = param(16, ge=1, le=1000,
                                      doc="no confirmed higher low by spike + this many: expired")
    stop_atr_buffer: float = param(0.1, ge=0, le=10,
                                   doc="hard stop = L - this x ATR (after the confirming candle)")


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
    Params = RuleParams

    def __init__(self, params: RuleParams, symbol: str) -> None:
        super().__init__(params, symbol)
        self._setup: _Setup | None = None

    def indicators(self):
        p = self.params
        return {
            "atr": ATR(p.atr_period),
            "atr_before": Lag(ATR(p.atr_period)),
            "high_24h": RollingMax("high", p.high_lookback_candles),
            "volume_median": Lag(RollingMedian("volume", p.volume_median_candles)),
        }

    def trigger(self, c: CandleView):
        """A spike: each condition is checked only where the ones before held."""
        p = self.params
        yield c.close < c.open
        yield c.atr_before > 0
        yield c.open - c.close >= p.spike_body_atr * c.atr_before
        yield c.close <= p.max_close_to_high * c.high_24h
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
                old.events.append(SetupEvent(candle.ts_open_ms, "superseded", candle.low))
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
                stop = setup.low - self.params.stop_atr_buffer * ctx.ind.atr
                decisions.append(Enter(setup.signal_id, setup.spike_ms, stop,
                                       dict(setup.metrics), tuple(setup.events)))
        elif ctx.index - setup.spike_index >= self.params.setup_expiry_candles:
            setup.events.append(SetupEvent(candle.ts_open_ms, "expired", candle.close))
            decisions.append(self._reject(
                setup, f"setup expired: no confirmed higher low within "
                       f"{self.params.setup_expiry_candles} candles"))
        return decisions

    # --- the rule -----------------------------------------------------------------------

    def _start_setup(self, candle: Candle, ctx: StrategyContext,
                     decisions: list[Decision]) -> None:
        ind = ctx.ind
        metrics: dict[str, float | None] = {
            "body_atr": (candle.open - candle.close) / ind.atr_before,
            "volume_ratio": candle.volume / ind.volume_median,
            "drop_from_high_pct": (1.0 - candle.close / ind.high_24h) * 100.0,
            "oi_change_pct": None,
            "atr": ind.atr_before,
        }
        setup = _Setup(self.signal_id(candle.ts_open_ms), candle.ts_open_ms, ctx.index,
                       candle.interval_ms, candle.low, metrics,
                       [SetupEvent(candle.ts_open_ms, "spike", candle.low)])
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
