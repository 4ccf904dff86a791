"""A short, by hand: the engine and the paper broker on a SYNTHETIC scripted path.

The worked example (settings below: fixed-R targets, no slippage, no trailing, taker 0.05%,
maker 0.02%, equity 10,000 USDT, risk 0.5%):
- A short is entered at the first signal candle's close; its hard stop is 105. It fills at the
  next base candle's open, 100: R = 105 - 100 = 5 per unit, qty = 10000 x 0.005 / 5 = 10 BTC.
  Entry fee (taker) = 100 x 10 x 0.0005 = 0.50.
- Its orders: a BUY stop-market at 105 for 10 (above the price), TP1 a BUY limit at
  100 - 1R = 95 for 5, TP2 a BUY limit at 100 - 2R = 90 for 5.
- Funding settles at 08:00 at +0.01%: a short RECEIVES it, 10 x 100 x 0.0001 = 0.10, booked as
  funding_usdt = -0.10 (what the position paid).
- The price falls: TP1 fills at 95 (maker fee 95 x 5 x 0.0002 = 0.095), the stop moves to
  break-even, 100 (a BUY stop above, for the 5 left); then TP2 fills at 90 (fee 90 x 5 x 0.0002
  = 0.09).
- PnL = (100 - 95) x 5 + (100 - 90) x 5 - (0.50 + 0.095 + 0.09) + 0.10 = 75 - 0.685 + 0.10
  = 74.415 USDT; R multiple 74.415 / 50 = 1.4883.
"""

from __future__ import annotations

import pytest

from cryptobot.model import FundingRate, OrderPurpose, OrderType, PositionSide, Side
from cryptobot.strategy import Enter
from tests.engine.conftest import (
    T0_MS,
    ScriptedEntries,
    flat,
    make_engine,
    path_candles,
    settings_with,
)

SETTINGS = settings_with(risk={"volatility_scaling": False, "lot_rounding": False},
                         costs={"slippage_bps": 0.0},
                         exits={"targets": "fixed_r", "trailing": False})
EIGHT_HOURS_MS = 8 * 3_600_000


class ScriptedShort(ScriptedEntries):
    """SYNTHETIC: a short at the first signal candle's close, stop 105."""

    stop_price = 105.0

    def on_candle(self, ctx):
        return [Enter(f"TEST-{ctx.index + 1}", ctx.candle.ts_open_ms, self.stop_price, {}, (),
                      side=PositionSide.SHORT)] if ctx.index == 0 else []


def test_a_short_trade_matches_the_worked_example_scripted():
    engine, recorder, clock = make_engine(SETTINGS, strategy=ScriptedShort(
        SETTINGS, SETTINGS.market.symbol))
    # flat at 100 until 08:20, then down through TP1 (95) and TP2 (90)
    candles = path_candles(flat(100, 100) + [(100, 100, 94.0, 94.5), (94.5, 95, 89.0, 89.5)])
    for i, candle in enumerate(candles):
        clock.advance_to(candle.ts_close_ms)
        if candle.ts_close_ms == T0_MS + EIGHT_HOURS_MS:
            engine.on_funding(FundingRate(T0_MS + EIGHT_HOURS_MS, 0.0001))
        engine.on_base_candle(candle)
        if i == 3:  # the entry filled at this candle's open
            working = {o.purpose: o for o in engine.broker.working_orders()}
            stop, tp1, tp2 = (working[OrderPurpose.STOP], working[OrderPurpose.TP1],
                              working[OrderPurpose.TP2])
            assert (stop.side, stop.order_type, stop.price, stop.qty_base) == (
                Side.BUY, OrderType.STOP_MARKET, 105.0, pytest.approx(10.0))
            assert (tp1.side, tp1.price, tp1.qty_base) == (Side.BUY, 95.0, pytest.approx(5.0))
            assert (tp2.side, tp2.price, tp2.qty_base) == (Side.BUY, 90.0, pytest.approx(5.0))
    (trade,) = engine.trades
    assert trade.side is Side.SELL
    assert (trade.entry_price, trade.qty_base, trade.initial_stop) == (
        100.0, pytest.approx(10.0), 105.0)
    assert [(leg.reason, leg.price, leg.qty_base) for leg in trade.legs] == [
        ("tp1", 95.0, pytest.approx(5.0)), ("tp2", 90.0, pytest.approx(5.0))]
    assert trade.entry_fee_usdt == pytest.approx(0.50)
    assert [leg.fee_usdt for leg in trade.legs] == [pytest.approx(0.095), pytest.approx(0.09)]
    assert trade.funding_usdt == pytest.approx(-0.10)
    assert trade.pnl_usdt == pytest.approx(74.415)
    assert trade.r_multiple == pytest.approx(74.415 / 50)
    # the break-even stop after TP1: a BUY stop at the entry, for what was left
    moved = [e.intent for e in recorder.orders if e.intent.purpose is OrderPurpose.STOP
             and e.status == "open"]
    assert [(s.side, s.price, s.qty_base) for s in moved] == [
        (Side.BUY, 105.0, pytest.approx(10.0)), (Side.BUY, 100.0, pytest.approx(5.0))]
    assert engine.equity_usdt == pytest.approx(10_000 + 74.415)


def test_a_short_stopped_out_loses_one_r_and_the_fees_scripted():
    """Up through the stop instead: the BUY stop at 105 fills at 105 (no slippage, taker):
    PnL = (100 - 105) x 10 - 0.50 - 105 x 10 x 0.0005 = -50 - 0.50 - 0.525 = -51.025."""
    engine, _, clock = make_engine(SETTINGS, strategy=ScriptedShort(
        SETTINGS, SETTINGS.market.symbol))
    for candle in path_candles(flat(100, 5) + [(100, 106, 99.5, 105.5)]):
        clock.advance_to(candle.ts_close_ms)
        engine.on_base_candle(candle)
    (trade,) = engine.trades
    assert [(leg.reason, leg.price) for leg in trade.legs] == [("stop", 105.0)]
    assert trade.pnl_usdt == pytest.approx(-51.025)
