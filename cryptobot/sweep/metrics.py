"""The figures a sweep shows of each combination, by the backtest summary's own names, and
which way each one is better (a walk-forward chooses by one; `cryptobot sweeps --sort` too)."""

from __future__ import annotations

from typing import Any

from cryptobot.errors import ConfigError

METRICS = ("trades", "total_pnl_usdt", "max_drawdown_pct", "profit_factor", "average_r",
           "exposure_pct")
LOWER_IS_BETTER = frozenset({"max_drawdown_pct"})
# Also offered for sorting and choosing: other figures of the summary.
MORE_METRICS = ("total_pnl_pct", "win_rate_pct", "final_equity_usdt", "max_drawdown_usdt",
                "fees_usdt", "signals", "signals_entered")
LOWER_IS_BETTER_MORE = frozenset({"max_drawdown_usdt", "fees_usdt"})


def check_metric(metric: str, option: str) -> str:
    if metric not in METRICS + MORE_METRICS:
        raise ConfigError(f"{option} {metric!r}: not a summary figure (one of "
                          f"{', '.join(METRICS + MORE_METRICS)})")
    return metric


def ranking_key(metric: str):
    """A sort key putting the best value of `metric` first and rows without one last. A profit
    factor of None with winning trades (no losing one) is infinite: the best; with none, last."""
    lower = metric in LOWER_IS_BETTER or metric in LOWER_IS_BETTER_MORE

    def key(summary: dict[str, Any] | None) -> tuple[int, float]:
        value = None if summary is None else summary.get(metric)
        if value is None and metric == "profit_factor" and (summary or {}).get("wins"):
            value = float("inf")
        if value is None:
            return (1, 0.0)
        return (0, float(value) if lower else -float(value))

    return key


def headline(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The summary's figures by METRICS (None where a failed combination has none)."""
    return {name: None if summary is None else summary.get(name) for name in METRICS}
