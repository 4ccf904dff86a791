"""A position still open when a run ends is reported, and its entry fee is counted (SYNTHETIC
hand-made price path: flat at 100, the scripted entry with stop 95, nothing exits it)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cryptobot.report.summary import summarize
from tests.engine.conftest import flat, run_scripted, settings_with


def _summary(engine, last_price):
    return summarize(engine.trades, engine.signals, 10_000.0, first_price=100.0,
                     last_price=last_price, span_ms=1, exposure_ms=0, funding_charged=False,
                     oi_synthetic=False, oi_samples=0,
                     open_position=engine.open_position(last_price))


def test_an_open_position_at_the_end_is_reported_with_its_entry_fee_scripted():
    settings = settings_with(risk={"volatility_scaling": False, "lot_rounding": False},
                             costs={"slippage_bps": 0.0})
    engine, recorder = run_scripted(flat(100, 8), settings)
    assert engine.trades == []
    (entry,) = recorder.fills
    assert entry.fee_usdt > 0
    s = _summary(engine, 101.0)
    held = s["open_position"]
    assert s["open_position_at_end"] and held["qty"] == entry.qty_base
    assert held["entry_price"] == entry.price and held["stop_price"] == 95.0
    assert held["entry_time"].endswith("Z") and held["entry_fee_usdt"] == entry.fee_usdt
    assert held["unrealised_pnl_usdt"] == pytest.approx((101.0 - entry.price) * entry.qty_base)
    # the fee is paid: it is in fees, PnL and equity; the unrealised move is not booked
    assert s["fees_usdt"] == entry.fee_usdt
    assert s["total_pnl_usdt"] == pytest.approx(-entry.fee_usdt)
    assert s["final_equity_usdt"] == pytest.approx(10_000.0 - entry.fee_usdt)

    from cryptobot.cli.backtest_command import _print_report

    out = io.StringIO()
    _print_report(Console(file=out, width=200), {
        **s, "symbol": "BTC/USDT:USDT", "from": "a", "to": "b", "data": "SYNTHETIC",
        "warmup": "-"}, [], 8, 0.1)
    text = out.getvalue()
    assert "0 closed + 1 open at the end" in text
    assert "open at end" in text and "stop 95.0" in text and "unrealised" in text
    assert f"{entry.fee_usdt:,.2f} USDT paid" in text
