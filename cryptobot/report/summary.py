"""Summary statistics of a run: plain numbers, no formatting."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cryptobot.config import CostSettings
from cryptobot.model import Signal, SignalStatus, Trade


def cost_notes(costs: CostSettings, funding_data: bool) -> dict[str, str]:
    """What the simulated costs did and did not include, in words, for every summary."""
    if not costs.funding:
        funding = "not charged: off in config (costs.funding = false)"
    elif not funding_data:
        funding = "not charged: no funding data in the span"
    else:
        funding = "charged every 8h on the open notional, from the funding data"
    notes = {"funding_note": funding}
    if costs.stop_trigger == "mark":
        notes["stop_trigger_note"] = ("stop_trigger = mark is honoured live; simulated stops "
                                      "trigger on the last price (mark price is not simulated)")
    return notes


def rejection_kind(reason: str) -> str:
    """What a rejection is counted under: the reason up to its first colon; a portfolio
    refusal under the cap it names ("portfolio: max_open_positions")."""
    if reason.startswith("portfolio: "):
        cap = reason.removeprefix("portfolio: ").split(":")[0]
        return "portfolio: " + (cap.split()[0] if cap.startswith("max_") else cap)
    return reason.split(":")[0]


def summarize(
    trades: list[Trade],
    signals: list[Signal],
    starting_equity_usdt: float,
    *,
    first_price: float | None,
    last_price: float | None,
    span_ms: int,
    exposure_ms: int,
    funding_charged: bool,
    oi_synthetic: bool,
    oi_samples: int,
    open_position: dict[str, Any] | None,
) -> dict[str, Any]:
    """`open_position`: the position held at the end (`Engine.open_position`), or None. Its
    cash already moved (entry fee, partial exits, funding) counts in fees, PnL and equity, as
    the account would show it; its unrealised PnL at the last close is reported, not booked."""
    pnls = [t.pnl_usdt for t in trades]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p <= 0]
    equity = peak = starting_equity_usdt
    max_dd = 0.0
    max_dd_pct = 0.0
    for pnl in pnls:  # drawdown on realised equity, trade by trade
        equity += pnl
        peak = max(peak, equity)
        if peak - equity > max_dd:
            max_dd = peak - equity
            max_dd_pct = max_dd / peak * 100.0
    held = open_position or {}
    total = sum(pnls) + held.get("realised_usdt", 0.0)
    gross_loss = -sum(losses)
    reasons = Counter(rejection_kind(s.reason) for s in signals
                      if s.status is SignalStatus.REJECTED)
    buy_hold = (last_price / first_price - 1.0) * 100.0 if first_price and last_price else None
    return {
        "trades": len(trades),
        "wins": len(wins),
        "win_rate_pct": len(wins) / len(trades) * 100.0 if trades else 0.0,
        "total_pnl_usdt": total,
        "total_pnl_pct": total / starting_equity_usdt * 100.0,
        "max_drawdown_usdt": max_dd,
        "max_drawdown_pct": max_dd_pct,
        "profit_factor": (sum(wins) / gross_loss) if gross_loss > 0 else None,
        "average_r": sum(t.r_multiple for t in trades) / len(trades) if trades else 0.0,
        "exposure_pct": exposure_ms / span_ms * 100.0 if span_ms > 0 else 0.0,
        "fees_usdt": sum(t.fees_usdt for t in trades) + held.get("fees_usdt", 0.0),
        "funding_usdt": sum(t.funding_usdt for t in trades) + held.get("funding_usdt", 0.0),
        "funding_charged": funding_charged,
        "buy_and_hold_pct": buy_hold,
        "starting_equity_usdt": starting_equity_usdt,
        "final_equity_usdt": starting_equity_usdt + total,
        "signals": len(signals),
        "signals_entered": sum(1 for s in signals if s.status is SignalStatus.ENTERED),
        "rejections": dict(sorted(reasons.items())),
        "exit_reasons": dict(sorted(Counter(t.exit_reason for t in trades).items())),
        "oi_samples": oi_samples,
        "oi_synthetic": oi_synthetic,
        "open_position_at_end": open_position is not None,
        "open_position": open_position,
    }


def symbol_figures(trades: list[Trade], signals: list[Signal]) -> dict[str, Any]:
    """One symbol's own figures in a several-symbol run, from its stored trades and signals
    (the equity is the portfolio's: no drawdown or return of its own)."""
    pnls = [t.pnl_usdt for t in trades]
    wins = sum(1 for p in pnls if p > 0)
    gross_loss = -sum(p for p in pnls if p <= 0)
    refused = [s for s in signals if s.status is SignalStatus.REJECTED]
    return {
        "trades": len(trades),
        "wins": wins,
        "win_rate_pct": wins / len(trades) * 100.0 if trades else 0.0,
        "total_pnl_usdt": sum(pnls),
        "profit_factor": sum(p for p in pnls if p > 0) / gross_loss if gross_loss > 0 else None,
        "average_r": sum(t.r_multiple for t in trades) / len(trades) if trades else 0.0,
        "fees_usdt": sum(t.fees_usdt for t in trades),
        "funding_usdt": sum(t.funding_usdt for t in trades),
        "signals": len(signals),
        "signals_entered": sum(1 for s in signals if s.status is SignalStatus.ENTERED),
        "refused_by_portfolio_caps": sum(1 for s in refused if s.reason.startswith("portfolio:")),
    }
