"""A walk-forward on the terminal: each window's chosen combination, its in-sample (training)
figures beside its out-of-sample (test) ones, and the test windows stitched."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:+,.2f}"


def _day(ts_ms: int) -> str:
    from cryptobot.clock import iso_utc

    return iso_utc(ts_ms)[:10]


def print_walk_forward(console: Console, outcome: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"walk-forward {outcome['walk_forward']}, chosen by "
                        f"{outcome['metric']} (sweep {outcome['sweep_id']})")
    for column in ("window", "train", "test", "chosen", "in-sample PnL", "trades",
                   "out-of-sample PnL", "trades", "max DD % (closed trades only)",
                   "closed at end"):
        table.add_column(column)
    for row in outcome["windows"]:
        chosen = ", ".join(f"{k.removeprefix('strategy.params.')}={v}"
                           for k, v in row.get("params", {}).items())
        ins, oos = row.get("in_sample", {}), row.get("out_of_sample")
        table.add_row(
            str(row["window"]), f"{_day(row['train'][0])} .. {_day(row['train'][1])}",
            f"{_day(row['test'][0])} .. {_day(row['test'][1])}", chosen or "-",
            _money(ins.get("total_pnl_usdt")), str(ins.get("trades", "-")),
            _money(oos["total_pnl_usdt"]) if oos else f"error: {row.get('error')}",
            str(oos["trades"]) if oos else "", f"{oos['max_drawdown_pct']:.2f}" if oos else "",
            f"{oos['closed_at_window_end']} (in-sample {ins.get('closed_at_window_end', 0)})"
            if oos else "")
    console.print(table)
    stitched = outcome["stitched"]
    out, ins = stitched["out_of_sample"], stitched["in_sample"]
    worst = out["worst_window_drawdown_pct"]
    console.print(
        f"out-of-sample, {stitched['windows']} test windows stitched: {out['trades']} trades, "
        f"PnL {_money(out['total_pnl_usdt'])} USDT ({_money(out['pnl_per_30d_usdt'])} per 30 "
        f"days; in-sample {_money(ins['pnl_per_30d_usdt'])} per 30 days), max drawdown "
        f"{out['max_drawdown_pct']:.2f}% ({_money(out['max_drawdown_usdt'])} USDT) of the "
        f"stitched realised equity, worst single window "
        f"{'-' if worst is None else f'{worst:.2f}%'} (of its closed trades only); "
        f"{out['closed_at_window_end']} closed at a window's end (in the trades, PnL and "
        "stitched drawdown; not in a window's drawdown, profit factor, average R)",
        highlight=False, markup=False)
