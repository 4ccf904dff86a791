"""Walk-forward: every combination on each training window, the best one (by a stated metric)
on the test window that follows; only test windows count, stitched end to end, beside the
chosen combination's in-sample figures.

Each window is its own backtest with the indicator warm-up before it (`feed.warmup_days`, not
traded, not counted). A position still open at a window's end is closed at its last candle's
close (the taker fee and slippage of a market exit charged) and the window says so:
`closed_at_window_end` counts them, and `trades` and `total_pnl_usdt` include them; the
figures in CLOSED_TRADES_ONLY (profit factor, average R, drawdown) are the backtest's own, of
the trades closed before the window's end only, and each window's figures say so.

Stitched, the test windows are one out-of-sample equity path: the starting equity, then every
test window's trades in order, each window's position closed at its end counted where it was
closed. Its drawdown (`max_drawdown_pct`, realised, trade by trade, as a backtest's) spans the
windows' boundaries; a test window's trades are kept in its row for it (`detail`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptobot.clock import DAY_MS
from cryptobot.config import CostSettings
from cryptobot.data.timeframes import timeframe_to_ms
from cryptobot.report.summary import realised_drawdown
from cryptobot.store.sweeps import SweepResult, SweepWriter
from cryptobot.sweep.job import Span
from cryptobot.sweep.metrics import ranking_key
from cryptobot.sweep.runner import SweepPlan, Task, run_tasks
from cryptobot.sweep.windows import WalkForward, Window, windows_over

STITCHED_KEYS = ("trades", "total_pnl_usdt", "closed_at_window_end")
# Figures a position closed at a window's end is not in (they need its whole path: its R, the
# realised equity's peak): the backtest's, of the trades closed before the end.
CLOSED_TRADES_ONLY = ("max_drawdown_pct", "profit_factor", "average_r")


def run_walk_forward(client: Any, plan: SweepPlan, walk: WalkForward, metric: str,
                     writer: SweepWriter, advance: Callable[[SweepResult], None],
                     set_total: Callable[[int], None]) -> dict[str, Any]:
    """Train every combination on every window, then test each window's best; all stored."""
    combinations, warmup_ms = plan.combinations, plan.warmup_ms
    align_ms = timeframe_to_ms(combinations[0].market.signal_timeframe)
    windows = windows_over(walk, *plan.traded, align_ms)
    train = [Task(t.combination, t.params, t.settings, Span(*w.train, warmup_ms), w.index,
                  "train") for w in windows for t in plan.tasks()]
    set_total(len(train) + len(windows))
    trained = run_tasks(client, plan.pack, train, writer, plan.detail, advance)
    chosen = {w.index: _best(trained, w.index, metric) for w in windows}
    tests = [Task(best.combination, best.params, combinations[best.combination],
                  Span(*w.test, warmup_ms), w.index, "test")
             for w in windows if (best := chosen[w.index]) is not None]
    tested = {r.window: r  # with their trades, for the stitched equity path
              for r in run_tasks(client, plan.pack, tests, writer, True, advance)}
    costs = combinations[0].costs
    rows = [_window_row(w, chosen[w.index], tested.get(w.index), costs) for w in windows]
    path = [pnl for w in windows for pnl in _realised_pnls(tested.get(w.index), rows[w.index])]
    return {"sweep_id": writer.sweep_id, "walk_forward": walk.text, "metric": metric,
            "windows": rows,
            "stitched": stitch(rows, path, combinations[0].risk.starting_equity_usdt)}


def _realised_pnls(test: SweepResult | None, row: dict[str, Any]) -> list[float]:
    """A test window's realised PnL, trade by trade, in the order they closed; its position
    closed at the window's end last."""
    if test is None or "out_of_sample" not in row:
        return []
    pnls = [trade["pnl_usdt"] for trade in test.detail["trades"]]
    if row["out_of_sample"]["closed_at_window_end"]:
        pnls.append(row["out_of_sample"]["total_pnl_usdt"] - test.summary["total_pnl_usdt"])
    return pnls


def _best(results: list[SweepResult], window: int, metric: str) -> SweepResult | None:
    """The window's best training result by `metric` (ties: the first combination)."""
    candidates = [r for r in results if r.window == window and r.summary is not None]
    if not candidates:
        return None
    key = ranking_key(metric)
    return min(candidates, key=lambda r: (key(r.summary), r.combination))


def _window_row(window: Window, best: SweepResult | None, test: SweepResult | None,
                costs: CostSettings) -> dict[str, Any]:
    row: dict[str, Any] = {"window": window.index, "train": list(window.train),
                           "test": list(window.test)}
    if best is None:
        return {**row, "error": "no combination ran on the training window"}
    row.update(params=best.params, combination=best.combination,
               in_sample=closed_at_window_end(best.summary, costs))
    if test is None or test.summary is None:
        row["error"] = test.error if test is not None else "the test window did not run"
        return row
    row["out_of_sample"] = closed_at_window_end(test.summary, costs)
    return row


def closed_at_window_end(summary: dict[str, Any], costs: CostSettings) -> dict[str, Any]:
    """The summary's headline figures, with what is still open closed at the last close (in
    `trades` and `total_pnl_usdt`; not in CLOSED_TRADES_ONLY, as `closed_trades_only` says)."""
    figures = {k: summary.get(k) for k in ("trades", "total_pnl_usdt", "max_drawdown_pct",
                                            "profit_factor", "average_r", "exposure_pct")}
    held = summary.get("open_position")
    positions = ([] if held is None else list(held["positions"].values())
                 if "positions" in held else [held])
    close_usdt = 0.0
    for position in positions:
        sign = 1.0 if position["side"] == "long" else -1.0
        exit_price = position["last_price"] * (1 - sign * costs.slippage_bps / 10_000)
        close_usdt += (sign * (exit_price - position["entry_price"]) * position["qty"]
                       - exit_price * position["qty"] * costs.taker_fee)
    figures["trades"] = (figures["trades"] or 0) + len(positions)
    figures["total_pnl_usdt"] = (figures["total_pnl_usdt"] or 0.0) + close_usdt
    figures["closed_at_window_end"] = len(positions)
    figures["closed_trades_only"] = list(CLOSED_TRADES_ONLY)
    return figures


def stitch(rows: list[dict[str, Any]], realised_pnls: list[float],
           starting_equity_usdt: float) -> dict[str, Any]:
    """The test windows end to end, beside the chosen combinations' training figures: sums,
    the drawdown of the stitched realised equity (`realised_pnls`: every test window's, in
    order) and the worst single window's, and PnL per 30 days (training windows overlap, so
    their PnL is compared per day, not summed)."""
    done = [r for r in rows if "out_of_sample" in r]
    out = {k: sum(r["out_of_sample"][k] or 0 for r in done) for k in STITCHED_KEYS}
    out["max_drawdown_usdt"], out["max_drawdown_pct"] = realised_drawdown(
        realised_pnls, starting_equity_usdt)
    test_days = sum((r["test"][1] - r["test"][0]) / DAY_MS for r in done)
    out["worst_window_drawdown_pct"] = max(
        (r["out_of_sample"]["max_drawdown_pct"] or 0.0 for r in done), default=None)
    out["pnl_per_30d_usdt"] = out["total_pnl_usdt"] / test_days * 30 if test_days else None
    in_rates = [r["in_sample"]["total_pnl_usdt"] / ((r["train"][1] - r["train"][0]) / DAY_MS)
                * 30 for r in done]
    return {"windows": len(done), "out_of_sample": out,
            "in_sample": {"pnl_per_30d_usdt": sum(in_rates) / len(in_rates) if in_rates
                          else None,
                          "closed_at_window_end": sum(r["in_sample"]["closed_at_window_end"]
                                                      for r in done)}}

