"""A position still open when a walk-forward window ends is closed at the window's last close,
paying a market exit's slippage and taker fee, and counted as closed there."""

from __future__ import annotations

import pytest

from cryptobot.clock import parse_utc
from cryptobot.config import load_settings
from cryptobot.data.timeframes import timeframe_to_ms
from cryptobot.sweep.job import Span, run_combination
from cryptobot.sweep.runner import load_pack
from cryptobot.sweep.walk_forward import closed_at_window_end
from tests.sweep.conftest import CRASH, DEFAULT_CONFIG


def test_a_position_open_at_the_windows_end_is_closed_at_its_last_close():
    settings = load_settings(DEFAULT_CONFIG)
    pack = load_pack([settings], CRASH, Span(None, None), False, 0)
    whole = run_combination(pack, settings, Span(None, None), detail=True)
    trade = next(t for t in whole["trades"] if t["side"] == "long")
    signal_ms = timeframe_to_ms(settings.market.signal_timeframe)
    entry_ms = parse_utc(trade["entry_time"])
    cut_ms = (entry_ms // signal_ms + 2) * signal_ms  # two signal candles after the entry
    assert cut_ms < parse_utc(trade["exit_time"])
    summary = run_combination(pack, settings, Span(None, cut_ms), detail=False)["summary"]
    held = summary["open_position"]
    assert held is not None and held["side"] == "long"

    figures = closed_at_window_end(summary, settings.costs)
    exit_price = held["last_price"] * (1 - settings.costs.slippage_bps / 10_000)
    move = (exit_price - held["entry_price"]) * held["qty"]
    fee = exit_price * held["qty"] * settings.costs.taker_fee
    assert figures["closed_at_window_end"] == 1
    assert figures["trades"] == summary["trades"] + 1
    assert figures["total_pnl_usdt"] == pytest.approx(summary["total_pnl_usdt"] + move - fee)
    assert move - fee != pytest.approx(held["unrealised_pnl_usdt"])  # the exit is not free

    flat = closed_at_window_end(whole["summary"], settings.costs)
    assert flat["closed_at_window_end"] == 0
    assert flat["total_pnl_usdt"] == whole["summary"]["total_pnl_usdt"]


def test_figures_without_the_position_closed_at_the_end_say_so(run_cli, tmp_path):
    """The walk-forward's terminal and JSON label drawdown, profit factor and average R as of
    the closed trades only (the position closed at a window's end is not in them)."""
    import json

    from tests.sweep.conftest import write_grid

    grid = write_grid(tmp_path, {"strategy.params.spike_body_atr": [1.5]})
    args = ["sweep", "--data", str(CRASH), "--grid", str(grid), "--workers", "1",
            "--walk-forward", "6d/3d", "--from", "2024-08-01", "--to", "2024-08-12",
            "--db", f"sqlite:///{tmp_path / 'wf.sqlite'}"]
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    for window in json.loads(out)["windows"]:
        for phase in ("in_sample", "out_of_sample"):
            assert window[phase]["closed_trades_only"] == ["max_drawdown_pct",
                                                           "profit_factor", "average_r"]
    code, out, err = run_cli(*args)
    assert code == 0, err
    said = " ".join(out.split())
    assert "% (of its closed trades only)" in said and "of the stitched realised equity" in said
    assert "not in a window's drawdown, profit factor, average R" in said
