"""Summary statistics of a run: plain numbers, no formatting."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptobot.config import CostSettings
from cryptobot.data.funding_times import (
    DEFAULT_INTERVAL_MS,
    intervals_ms,
    intervals_text,
    off_hour_count,
    settlement_ms,
)
from cryptobot.model import Signal, SignalStatus, Trade


@dataclass(frozen=True, slots=True)
class FundingFacts:
    """A run's funding data for one symbol (or several, `combined`): where the rates came
    from, the ones that settled within the run's span, the ones charged to a position, and the
    intervals between the settlements (`of` works them out for one symbol)."""

    source: str = ""  # e.g. the file names, or "the venue's funding history"
    settled_ms: tuple[int, ...] = ()  # stamps of the rates settled in the span
    charged_ms: tuple[int, ...] = ()  # stamps of the rates charged
    intervals_ms: tuple[int, ...] = ()

    @staticmethod
    def of(source: str, settled_ms: Iterable[int], charged_ms: Iterable[int]) -> FundingFacts:
        settled = tuple(sorted(settled_ms))
        return FundingFacts(source, settled, tuple(charged_ms), intervals_ms(settled))

    @staticmethod
    def combined(facts: Iterable[FundingFacts]) -> FundingFacts:
        facts = list(facts)
        sources = dict.fromkeys(f.source for f in facts if f.source)
        return FundingFacts("; ".join(sources),
                            tuple(ts for f in facts for ts in f.settled_ms),
                            tuple(ts for f in facts for ts in f.charged_ms),
                            tuple(sorted({ms for f in facts for ms in f.intervals_ms},
                                         reverse=True)))


def cost_notes(costs: CostSettings, funding: FundingFacts) -> dict[str, Any]:
    """What the simulated costs did and did not include, in words, for every summary; and
    exactly which funding rates were charged, from which data."""
    charged, settled = funding.charged_ms, funding.settled_ms
    source = funding.source or "no funding data"
    if not costs.funding:
        note = "not charged: off in config (costs.funding = false)"
    elif not settled:
        note = f"not charged: no funding rate settled in the span ({source})"
    elif not charged:
        note = (f"not charged: no position was held at any of the {len(settled)} settlements "
                f"in the span ({source})")
    else:
        intervals = intervals_text(funding.intervals_ms)
        note = (f"from {len(charged)} rates (of {len(settled)} settled in the span), {source}; "
                f"{_off_grid(charged)} off the 8h grid, {off_hour_count(charged)} stamped off "
                f"the hour" + (f"; intervals {intervals}" if intervals else ""))
    notes: dict[str, Any] = {
        "funding_note": note, "funding_rates_charged": len(charged) if costs.funding else 0,
        "funding_rates_in_span": len(settled), "funding_source": funding.source}
    if costs.stop_trigger == "mark":
        notes["stop_trigger_note"] = ("stop_trigger = mark is honoured live; simulated stops "
                                      "trigger on the last price (mark price is not simulated)")
    return notes


def _off_grid(stamps_ms: Iterable[int]) -> int:
    return sum(1 for ts in stamps_ms if settlement_ms(ts) % DEFAULT_INTERVAL_MS)


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
    max_dd, max_dd_pct = realised_drawdown(pnls, starting_equity_usdt)
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


def realised_drawdown(pnls: list[float], starting_equity_usdt: float) -> tuple[float, float]:
    """(USDT, % of the peak) of the deepest fall of the realised equity, trade by trade."""
    equity = peak = starting_equity_usdt
    deepest = deepest_pct = 0.0
    for pnl in pnls:
        equity += pnl
        peak = max(peak, equity)
        if peak - equity > deepest:
            deepest, deepest_pct = peak - equity, (peak - equity) / peak * 100.0
    return deepest, deepest_pct
