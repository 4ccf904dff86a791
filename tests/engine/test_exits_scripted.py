"""Hand-checkable SYNTHETIC price paths (jesse-style): exact fills, fees and PnL.

Every path: equity 10,000 USDT, risk 0.5% = 50 USDT, the scripted strategy decides at the close
of the first 15m candle (3 base candles at 100), stop 95, so qty = 50 / (100 - 95) = 10 BTC and
the entry is the open of base candle 3. Fees: taker 0.05%, maker 0.02%.
"""

from __future__ import annotations

import math

import pytest

from cryptobot.engine.trade_orders import standard_targets
from cryptobot.strategy import PositionSide, TargetContext
from tests.engine.conftest import (
    T0_MS,
    ScriptedEntries,
    flat,
    make_engine,
    path_candles,
    run_scripted,
    settings_with,
)

NO_SCALING = {"volatility_scaling": False, "lot_rounding": False}


def _one_trade(engine):
    assert len(engine.trades) == 1, engine.trades
    return engine.trades[0]


def test_gap_through_the_stop_fills_at_the_open_minus_slippage_scripted():
    settings = settings_with(risk=NO_SCALING, exits={"targets": "fixed_r"})
    rows = flat(100, 3) + [(100, 101, 99, 100), (93, 94, 92, 93)]  # opens 2 below the stop
    engine, _ = run_scripted(rows, settings)
    trade = _one_trade(engine)
    assert trade.entry_price == pytest.approx(100 * 1.0005)  # 5 bps slippage: 100.05
    assert trade.qty_base == pytest.approx(10.0)
    leg = trade.legs[0]
    assert (leg.reason, leg.price, leg.ts_ms) == ("stop", pytest.approx(93 * 0.9995),
                                                  T0_MS + 4 * 300_000)
    # (92.9535 - 100.05) x 10 - 100.05 x 10 x 0.0005 - 92.9535 x 10 x 0.0005
    assert trade.fees_usdt == pytest.approx(0.50025 + 0.4647675)
    assert trade.pnl_usdt == pytest.approx(-70.965 - 0.9650175)


def test_candle_touching_stop_and_target_fills_the_stop_first_scripted():
    settings = settings_with(risk=NO_SCALING, exits={"targets": "fixed_r"},
                             costs={"slippage_bps": 0.0})
    rows = flat(100, 3) + [(100, 106, 94, 100)]  # TP1 105 and stop 95 both inside
    engine, recorder = run_scripted(rows, settings)
    trade = _one_trade(engine)
    assert [(leg.reason, leg.price, leg.qty_base) for leg in trade.legs] == [("stop", 95.0, 10.0)]
    assert trade.pnl_usdt == pytest.approx(-50 - 0.5 - 0.475)
    assert trade.r_multiple == pytest.approx(-50.975 / 50)
    canceled = [e.intent.client_id for e in recorder.orders if e.status == "canceled"]
    assert canceled == ["TEST-1-tp1", "TEST-1-tp2"]


def test_breakeven_after_tp1_works_from_the_next_base_candle_scripted():
    settings = settings_with(risk=NO_SCALING, exits={"targets": "fixed_r", "trailing": False},
                             costs={"slippage_bps": 0.0})
    rows = flat(100, 3) + [
        (100, 105.5, 99.5, 105),  # TP1 105 trades through; the dip to 99.5 is before BE works
        (104, 104.5, 99.9, 100),  # break-even stop at 100 fills
    ]
    engine, _ = run_scripted(rows, settings)
    trade = _one_trade(engine)
    assert [(leg.reason, leg.price, leg.qty_base) for leg in trade.legs] == [
        ("tp1", 105.0, 5.0), ("breakeven_stop", 100.0, 5.0)]
    fees = 100 * 10 * 0.0005 + 105 * 5 * 0.0002 + 100 * 5 * 0.0005  # 0.5 + 0.105 + 0.25
    assert trade.fees_usdt == pytest.approx(fees)
    assert trade.pnl_usdt == pytest.approx(25.0 - fees)  # 24.145
    assert trade.exit_price == pytest.approx(102.5)


def test_tp1_and_tp2_in_one_candle_scripted():
    settings = settings_with(risk=NO_SCALING, exits={"targets": "fixed_r"},
                             costs={"slippage_bps": 0.0})
    rows = flat(100, 3) + [(100, 111, 99.5, 110)]  # 105 and 110 both traded through
    engine, _ = run_scripted(rows, settings)
    trade = _one_trade(engine)
    assert [(leg.reason, leg.price) for leg in trade.legs] == [("tp1", 105.0), ("tp2", 110.0)]
    assert trade.pnl_usdt == pytest.approx(25 + 50 - 0.5 - 0.105 - 0.11)
    assert trade.r_multiple == pytest.approx(74.285 / 50)


def _ladder(prices):
    """Each price is a 15m candle of 3 base candles at it, range +-1: ATR stays exactly 2."""
    rows = []
    for price in prices:
        rows += flat(price, 3)
    return rows


def test_trailing_stop_follows_two_atr_below_the_highest_close_scripted():
    settings = settings_with(risk=NO_SCALING, exits={"targets": "fixed_r"},
                             costs={"slippage_bps": 0.0})
    # 15m candles at 100 (decision), then 100..108; the base candle at 105 has high 106 > TP1.
    rows = _ladder([100, 100, 101, 102, 103, 104, 105, 106, 107, 108])
    rows += [(108, 108.5, 103.5, 104)]  # falls through the trailing stop 108 - 2 x 2 = 104
    engine, recorder = run_scripted(rows, settings)
    trade = _one_trade(engine)
    assert [(leg.reason, leg.price, leg.qty_base) for leg in trade.legs] == [
        ("tp1", 105.0, 5.0), ("trailing_stop", 104.0, 5.0)]
    stops = [e.intent.price for e in recorder.orders
             if e.status == "open" and e.intent.purpose == "stop"]
    # initial, break-even, then one step per 15m close: 105-4, 106-4, 107-4, 108-4
    assert stops == [95.0, 100.0, 101.0, 102.0, 103.0, 104.0]
    assert trade.pnl_usdt == pytest.approx(25 + 20 - 0.5 - 0.105 - 0.26)


def test_time_stop_closes_at_market_24h_after_entry_scripted():
    settings = settings_with(risk=NO_SCALING, exits={"targets": "fixed_r"})
    rows = flat(100, 3 + 288 + 2)
    engine, _ = run_scripted(rows, settings)
    trade = _one_trade(engine)
    leg = trade.legs[0]
    assert leg.reason == "time_stop"
    assert leg.ts_ms - trade.entry_ms == 24 * 3_600_000
    assert leg.price == pytest.approx(100 * 0.9995)
    assert trade.pnl_usdt == pytest.approx((99.95 - 100.05) * 10 - 0.50025 - 0.49975)




@pytest.mark.parametrize(("vwap", "prev_close", "expected"), [
    (103.0, 112.0, (112.0,)),  # VWAP 0.3R above entry: skipped; one milestone left
    (106.0, 112.0, (106.0, 112.0)),  # both >= 0.5R: TP1 and TP2, ascending
    (112.0, 105.0, (105.0, 112.0)),  # sorted
    (104.0, 98.0, (110.0, 120.0)),  # none usable: 1R and 2R
    (math.nan, 115.0, (115.0,)),  # no VWAP yet
])
def test_milestone_targets_and_the_half_r_rule(vwap, prev_close, expected):
    ctx = TargetContext(PositionSide.LONG, 100.0, 90.0, vwap, prev_close)  # R = 10
    assert standard_targets(settings_with().exits, ctx) == expected


def test_one_milestone_puts_tp1_there_and_the_rest_rides_scripted():
    """Day VWAP 100 (all candles at 100, below entry+0.5R); previous day close 104 -> TP1 104."""
    settings = settings_with(risk=NO_SCALING, costs={"slippage_bps": 0.0},
                             exits={"trailing": False})
    day = 288
    rows = flat(100, day - 1) + [(104, 105, 103, 104)]  # previous UTC day closes at 104
    rows += flat(100, 6) + [(100, 104.5, 99.5, 104)] + flat(104, 300)
    strategy = ScriptedEntries(settings, "BTC/USDT:USDT")
    strategy.entry_at = (day // 3 + 2,)  # 00:30 on day 2
    engine, _, clock = make_engine(settings, strategy=strategy)
    for candle in path_candles(rows):
        clock.advance_to(candle.ts_close_ms)
        engine.on_base_candle(candle)
    trade = _one_trade(engine)
    # entry 100, stop 95 (R 5): VWAP ~100.2 is < 0.5R above; 104 >= 102.5 -> TP1 = 104 (5 BTC).
    assert trade.legs[0].reason == "tp1" and trade.legs[0].price == 104.0
    assert trade.legs[0].qty_base == pytest.approx(5.0)
    assert trade.legs[-1].reason == "time_stop"  # no TP2: the rest waits for the time stop
    assert trade.legs[-1].price == 104.0
