"""What the live broker needs from the engine, on SYNTHETIC scripted paths with the paper broker:
the entry carries its planned stop, a refused stop never causes a second market close, and an
engine restarted mid-trade takes the position over from the broker's state."""

from __future__ import annotations

import pytest

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock
from cryptobot.errors import OrderRejectedError, ReconciliationError
from cryptobot.model import (
    Fill,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Position,
    Side,
)
from tests.engine.conftest import (
    T0_MS,
    feed,
    flat,
    make_engine,
    path_candles,
    run_scripted,
    settings_with,
)

SETTINGS = settings_with(risk={"volatility_scaling": False, "lot_rounding": False},
                         costs={"slippage_bps": 0.0}, exits={"targets": "fixed_r"})


def test_the_entry_order_carries_its_planned_stop_scripted():
    _, recorder = run_scripted(flat(100, 5), SETTINGS)
    entry = next(e.intent for e in recorder.orders if e.intent.purpose is OrderPurpose.ENTRY)
    assert entry.stop_price == 95.0 and entry.price is None


class StopRefusingBroker(PaperBroker):
    """SYNTHETIC venue that refuses every stop. As the live broker does after its retries, it
    may first close the position itself: `closes_itself` "fill" reports the close's fill at
    once, "order" only its open market order (filled at the next candle), "no" does nothing."""

    closes_itself = "fill"

    def submit(self, intent: OrderIntent) -> None:
        if intent.order_type is not OrderType.STOP_MARKET:
            return super().submit(intent)
        flat_id = intent.client_id.rsplit("-", 1)[0] + "-flat0"
        if self.closes_itself == "fill":
            qty = self._position_qty
            self._position_qty = 0.0
            self._on_fill(Fill(flat_id, intent.symbol, self.clock.now_ms(), Side.SELL, 99.0,
                               qty, 0.0, False, OrderPurpose.FLATTEN))
        elif self.closes_itself == "order":
            super().submit(OrderIntent(flat_id, intent.symbol, Side.SELL, OrderType.MARKET,
                                       self._position_qty, OrderPurpose.FLATTEN,
                                       reduce_only=True))
        raise OrderRejectedError(f"{intent.client_id}: stop refused")


@pytest.mark.parametrize("closes_itself", ["fill", "order", "no"])
def test_a_refused_stop_closes_the_position_exactly_once_scripted(closes_itself):
    clock = SimClock(T0_MS)
    broker = StopRefusingBroker(SETTINGS.costs, clock)
    broker.closes_itself = closes_itself
    engine, recorder, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    feed(engine, clock, path_candles(flat(100, 8)))
    (trade,) = engine.trades
    assert [leg.reason for leg in trade.legs] == ["flatten"]
    assert trade.legs[0].qty_base == trade.qty_base == 10.0
    closes = {e.intent.client_id for e in recorder.orders
              if e.intent.purpose is OrderPurpose.FLATTEN}
    flatten_fills = [f for f in recorder.fills if f.purpose is OrderPurpose.FLATTEN]
    assert len(flatten_fills) == 1
    if closes_itself == "fill":  # the broker closed it: the engine sends nothing more
        assert closes == set()
        assert trade.exit_ms == T0_MS + 4 * 300_000  # the clock when the fill was reported
    elif closes_itself == "order":  # the broker's close fills at the next candle's open
        assert closes == {"TEST-1-flat0"} and trade.legs[0].price == 100.0
    else:  # the engine closes it at the next base candle's open
        assert closes == {"TEST-1-flat"} and trade.legs[0].price == 100.0
    assert not any(e.intent.purpose in (OrderPurpose.TP1, OrderPurpose.TP2)
                   for e in recorder.orders)
    assert engine.is_idle() and broker.working_orders() == ()


def _ladder(prices):
    rows = []
    for price in prices:
        rows += flat(price, 3)
    return rows


# Entry at 100 (candle 3), TP1 105 fills at candle 18, trailing stops 101..104, out at 104.
LADDER = _ladder([100, 100, 101, 102, 103, 104, 105, 106, 107, 108]) + [(108, 108.5, 103.5, 104)]


@pytest.mark.parametrize("cut", [4, 10, 19, 23, 28])
def test_restart_takes_the_position_over_from_the_broker_scripted(cut):
    """Run A straight through; run B stops after `cut` base candles, a new engine takes over
    the same broker with `restore_position` and goes on: the same trade, leg for leg."""
    ref_engine, ref_recorder = run_scripted(LADDER, SETTINGS)
    (reference,) = ref_engine.trades

    first, _, clock = make_engine(SETTINGS)
    candles = path_candles(LADDER)
    feed(first, clock, candles[:cut])
    held = first._trade
    position = Position("BTC/USDT:USDT", held.remaining_qty, held.entry_price, held.stop_price,
                        held.entry_ms, held.signal_id)  # what the broker's store keeps
    second, recorder, _ = make_engine(SETTINGS, broker=first.broker, clock=clock)
    second.restore_position(position, entry_qty_base=held.qty_base,
                            entry_fee_usdt=held.entry_fee_usdt, legs=tuple(held.legs),
                            best_close=held.best_close)
    with pytest.raises(ReconciliationError):
        second.restore_position(position)
    feed(second, clock, candles[cut:])
    (restored,) = second.trades
    assert restored.legs == reference.legs
    assert restored.pnl_usdt == reference.pnl_usdt
    after_cut = [e.intent.client_id for e in ref_recorder.orders
                 if e.status == "open" and e.ts_ms > candles[cut - 1].ts_close_ms]
    assert [e.intent.client_id for e in recorder.orders if e.status == "open"] == after_cut


def test_restart_with_no_working_stop_places_one_at_once_scripted():
    """The crash came between the entry fill and the stop: the broker holds 10 BTC and no
    orders. The restored engine places the stop at once, and it protects the position; the
    take-profits it never placed go on too (under new ids)."""
    clock = SimClock(T0_MS)
    broker = PaperBroker(SETTINGS.costs, clock)
    broker.bind(lambda fill: None, lambda event: None)
    broker.submit(OrderIntent("TEST-1-entry", "BTC/USDT:USDT", Side.BUY, OrderType.MARKET, 10.0,
                              OrderPurpose.ENTRY, stop_price=95.0))
    candles = path_candles(flat(100, 4) + [(100, 100.5, 94.0, 94.5)])
    clock.advance_to(candles[0].ts_close_ms)
    broker.on_base_candle(candles[0])  # the entry fills; the process dies here
    engine, recorder, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    engine.restore_position(Position("BTC/USDT:USDT", 10.0, 100.0, 95.0,
                                     candles[0].ts_open_ms, "TEST-1"))
    stop, tp1, tp2 = broker.working_orders()
    assert (stop.client_id, stop.order_type, stop.price, stop.qty_base) == (
        "TEST-1-stop1", OrderType.STOP_MARKET, 95.0, 10.0)
    exits = SETTINGS.exits
    assert [(o.client_id, o.purpose, o.price, o.qty_base) for o in (tp1, tp2)] == [
        ("TEST-1-tp1r1", OrderPurpose.TP1, 100 + 5 * exits.fixed_tp1_r, 10 * exits.tp1_fraction),
        ("TEST-1-tp2r1", OrderPurpose.TP2, 100 + 5 * exits.fixed_tp2_r,
         10 * (1 - exits.tp1_fraction))]
    feed(engine, clock, candles[1:])
    (trade,) = engine.trades
    assert [(leg.reason, leg.price) for leg in trade.legs] == [("stop", 95.0)]
    assert trade.pnl_usdt == pytest.approx(-50.0 - 95.0 * 10 * 0.0005)  # entry fee unknown: 0
