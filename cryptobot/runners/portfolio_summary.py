"""A run's summary over its symbols: the run's own figures, and each symbol's under `symbols`
when it watched several. Backtest, paper and live summarise through `summarize_portfolio`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptobot.config import Settings
from cryptobot.engine.portfolio import Portfolio
from cryptobot.report.summary import FundingFacts, cost_notes, summarize

# A symbol's own summary would show these as if it had the whole equity to itself.
WHOLE_ACCOUNT_KEYS = ("starting_equity_usdt", "final_equity_usdt", "max_drawdown_usdt",
                      "max_drawdown_pct")


@dataclass(frozen=True, slots=True)
class SymbolFacts:
    """What the run saw of one symbol's market, beside what its engine did."""

    first_price: float | None  # the first traded candle's open (buy and hold)
    last_price: float | None  # the last close
    funding: FundingFacts
    oi_synthetic: bool
    oi_samples: int


def summarize_portfolio(settings: Settings, portfolio: Portfolio,
                        facts: Mapping[str, SymbolFacts], span_ms: int) -> dict[str, Any]:
    """One symbol: that symbol's summary. Several: the run's (all trades, one equity; no buy
    and hold; exposure: the time any position was held) with each symbol's own under
    `symbols` (its trades, PnL, exposure, buy and hold; not the account's equity figures)."""
    per_symbol = {}
    for symbol, engine in portfolio.engines.items():
        fact = facts[symbol]
        per_symbol[symbol] = summarize(
            engine.trades, engine.signals, settings.risk.starting_equity_usdt,
            first_price=fact.first_price, last_price=fact.last_price, span_ms=span_ms,
            exposure_ms=engine.exposure_ms,
            funding_charged=settings.costs.funding and bool(fact.funding.charged_ms),
            oi_synthetic=fact.oi_synthetic, oi_samples=fact.oi_samples,
            open_position=engine.open_position(fact.last_price))
        per_symbol[symbol].update(cost_notes(settings.costs, fact.funding))
    if len(per_symbol) == 1:
        return next(iter(per_symbol.values()))
    for one in per_symbol.values():  # figures of the whole account are the run's, not a symbol's
        for key in WHOLE_ACCOUNT_KEYS:
            del one[key]
    funding = FundingFacts.combined(fact.funding for fact in facts.values())
    last_prices = {s: f.last_price for s, f in facts.items() if f.last_price is not None}
    summary = summarize(
        portfolio.trades, portfolio.signals, settings.risk.starting_equity_usdt,
        first_price=None, last_price=None, span_ms=span_ms,
        exposure_ms=portfolio.exposure_ms(portfolio.clock.now_ms()),
        funding_charged=settings.costs.funding and bool(funding.charged_ms),
        oi_synthetic=any(fact.oi_synthetic for fact in facts.values()),
        oi_samples=sum(fact.oi_samples for fact in facts.values()),
        open_position=combined_open_positions(portfolio.open_positions(last_prices)))
    summary.update(cost_notes(settings.costs, funding))
    summary["symbols"] = per_symbol
    return summary


def combined_open_positions(held: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Positions by symbol (`Portfolio.open_positions`) as the summary's `open_position`: the
    cash they already moved, summed (it counts in the run's PnL), and each one under
    `positions`. None when nothing is held."""
    if not held:
        return None
    return {
        "positions": held,
        "realised_usdt": sum(p["realised_usdt"] for p in held.values()),
        "fees_usdt": sum(p["fees_usdt"] for p in held.values()),
        "funding_usdt": sum(p["funding_usdt"] for p in held.values()),
    }
