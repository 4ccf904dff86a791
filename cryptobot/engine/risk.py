"""Position sizing and the pre-trade checks: daily loss limit, kill switch (a file, or never).

Sizing follows STRATEGY.md: qty = equity x risk / R (R: the entry's distance to the stop, below
a long's entry, above a short's), scaled down when volatility is high
(x min(1, median ATR% / ATR%), floored), capped by leverage and max notional, multiplied by the
gate's size factor, then rounded down to the lot size and checked against the minimum notional.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptobot.clock import utc_day_start_ms
from cryptobot.config import RiskSettings
from cryptobot.engine.market_rules import MarketRules
from cryptobot.model import PositionSide


@dataclass(frozen=True, slots=True)
class SizeDecision:
    qty_base: float  # 0 when rejected
    reason: str | None  # why the entry is skipped, else None
    details: dict[str, float] = field(default_factory=dict)


def size_position(risk: RiskSettings, equity_usdt: float, entry_price: float, stop_price: float,
                  atr_pct_now: float | None, atr_pct_median: float | None, history_days: float,
                  gate_size_factor: float, rules: MarketRules | None,
                  side: PositionSide = PositionSide.LONG) -> SizeDecision:
    r_per_unit = side.sign * (entry_price - stop_price)
    if r_per_unit <= 0:
        where = "below" if side is PositionSide.LONG else "above"
        return SizeDecision(0.0, f"stop {stop_price:.2f} is not {where} the entry "
                                 f"{entry_price:.2f}")
    risk_usdt = equity_usdt * risk.risk_per_trade
    qty = risk_usdt / r_per_unit
    vol_factor = 1.0
    if (risk.volatility_scaling and atr_pct_now and atr_pct_median
            and history_days >= risk.volatility_min_history_days):
        vol_factor = max(risk.volatility_floor, min(1.0, atr_pct_median / atr_pct_now))
    qty *= vol_factor
    cap_qty = min(risk.max_leverage * equity_usdt, risk.max_notional_usdt) / entry_price
    capped = qty > cap_qty
    qty = min(qty, cap_qty) * gate_size_factor
    details = {"risk_usdt": risk_usdt, "r_per_unit": r_per_unit, "volatility_factor": vol_factor,
               "gate_size_factor": gate_size_factor, "capped": float(capped),
               "qty_unrounded": qty}
    if risk.lot_rounding and rules is not None:
        qty = rules.round_qty_down(qty)
        problem = rules.check(qty, entry_price)
        if problem is not None:
            return SizeDecision(0.0, f"size too small: {problem}", details)
    if qty <= 0:
        return SizeDecision(0.0, "size is zero", details)
    return SizeDecision(qty, None, details)


class DailyLossLimit:
    """Realised losses of the current UTC day; beyond the limit no new entries that day."""

    def __init__(self, max_daily_loss: float) -> None:
        self.max_daily_loss = max_daily_loss
        self.day_start_ms: int | None = None
        self.day_start_equity = 0.0
        self.realised_usdt = 0.0

    def roll(self, now_ms: int, equity_usdt: float) -> None:
        day = utc_day_start_ms(now_ms)
        if day != self.day_start_ms:
            self.day_start_ms = day
            self.day_start_equity = equity_usdt
            self.realised_usdt = 0.0

    def add(self, pnl_usdt: float) -> None:
        self.realised_usdt += pnl_usdt

    def restore(self, day_ms: int, day_start_equity: float, realised_usdt: float) -> None:
        """After a restart: the day as it stood."""
        self.day_start_ms = utc_day_start_ms(day_ms)
        self.day_start_equity = day_start_equity
        self.realised_usdt = realised_usdt

    def blocked_reason(self) -> str | None:
        if self.max_daily_loss <= 0:
            return None
        limit = self.max_daily_loss * self.day_start_equity
        if -self.realised_usdt >= limit:
            return (f"daily loss limit: lost {-self.realised_usdt:.2f} USDT today "
                    f"(limit {limit:.2f})")
        return None


class KillSwitch:
    """A file whose existence means: flatten, cancel everything, take no new entries.

    Paper and live wire this one; a backtest wires `NeverEngaged`, so that historical results
    never depend on a file on disk (`cryptobot kill` must not change a backtest)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = os.fspath(path) if path else None

    def engaged(self) -> bool:
        return self.path is not None and os.path.exists(self.path)


class NeverEngaged:
    """The kill switch of a backtest: history is replayed as it was, whatever is on disk."""

    def engaged(self) -> bool:
        return False
