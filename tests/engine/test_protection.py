"""Protection that never gives up, on SYNTHETIC scripted paths with scripted venues (the paper
broker, made to split fills or refuse orders): an entry is the sum of its fills, under one stop
for all of it once its fills are in; a refused exit or stop is retried and then closed by
the fallback, with the position under a full stop at every candle until it is flat.
(tests/live/ drives the same engine through the live broker and the fake Binance.)"""

from __future__ import annotations

import pytest

from cryptobot.brokers.paper import PaperBroker
from cryptobot.engine.recorder import OrderEvent
from cryptobot.errors import OrderRejectedError, TemporaryExchangeError
from cryptobot.model import Candle, Fill, OrderIntent, OrderPurpose, OrderType, Side
from tests.engine.conftest import feed, flat, make_engine, path_candles, settings_with

SETTINGS = settings_with(risk={"volatility_scaling": False, "lot_rounding": False},
                         costs={"slippage_bps": 0.0}, exits={"targets": "fixed_r"},
                         live={"stop_place_retries": 3})


def stop_cover(broker: PaperBroker) -> float:
    return sum(o.qty_base for o in broker.working_orders()
               if o.order_type is OrderType.STOP_MARKET)


class SplitFillBroker(PaperBroker):
    """SYNTHETIC venue: a market entry fills in `parts` trades, one tick apart; after each,
    what is held and what the working stops cover are noted."""

    parts = 3

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.after_each_fill: list[tuple[float, float]] = []

    def _fill(self, intent: OrderIntent, candle: Candle, price: float, maker: bool) -> None:
        if intent.purpose is not OrderPurpose.ENTRY:
            super()._fill(intent, candle, price, maker)
            self.after_each_fill.append((self._position_qty, stop_cover(self)))
            return
        del self._orders[intent.client_id]
        part = intent.qty_base / self.parts
        for i in range(self.parts):
            self._position_qty += part
            self._on_fill(Fill(intent.client_id, intent.symbol, candle.ts_open_ms, Side.BUY,
                               price + 0.1 * i, part, 0.01, False, OrderPurpose.ENTRY))
            self.after_each_fill.append((self._position_qty, stop_cover(self)))
        self._event(intent, "filled")


def test_an_entry_filled_in_parts_is_one_position_under_one_stop_scripted():
    _, _, clock = make_engine(SETTINGS)
    broker = SplitFillBroker(SETTINGS.costs, clock)
    engine, recorder, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    feed(engine, clock, path_candles(flat(100, 5)))
    held = [qty for qty, _ in broker.after_each_fill]
    assert held == pytest.approx([10 / 3, 20 / 3, 10.0])
    # the three trades came in one answer: one stop for all of it, on its last fill
    assert [cover for _, cover in broker.after_each_fill] == pytest.approx([0, 0, 10.0])
    stops_placed = {e.intent.client_id for e in recorder.orders
                    if e.intent.purpose is OrderPurpose.STOP}
    assert stops_placed == {"TEST-1-stop1"}
    trade = engine._trade
    assert trade.qty_base == pytest.approx(10.0)
    assert trade.entry_price == pytest.approx(100.1)  # the fills' weighted price
    assert trade.entry_fee_usdt == pytest.approx(0.03)
    stops = [o for o in broker.working_orders() if o.order_type is OrderType.STOP_MARKET]
    targets = [o for o in broker.working_orders() if o.order_type is OrderType.LIMIT]
    assert [(s.price, s.qty_base) for s in stops] == [(95.0, pytest.approx(10.0))]
    # the targets go on once, for the whole entry, after its last fill
    assert sum(t.qty_base for t in targets) == pytest.approx(10.0)
    placed = [e for e in recorder.orders if e.intent.purpose in (OrderPurpose.TP1,
                                                                 OrderPurpose.TP2)]
    assert len({e.intent.client_id for e in placed}) == 2


class AnswerFirstBroker(SplitFillBroker):
    """SYNTHETIC live-like venue: the entry's answer says all of it executed (`filled_qty`)
    before its three fills are read."""

    def _fill(self, intent: OrderIntent, candle: Candle, price: float, maker: bool) -> None:
        if intent.purpose is OrderPurpose.ENTRY:
            self._on_order(OrderEvent(self.clock.now_ms(), intent, "open", "", intent.qty_base))
            self.after_each_fill.append((intent.qty_base, stop_cover(self)))  # held, unread
        super()._fill(intent, candle, price, maker)


def test_an_entry_is_under_a_full_stop_from_its_answer_before_its_fills_are_read():
    _, _, clock = make_engine(SETTINGS)
    broker = AnswerFirstBroker(SETTINGS.costs, clock)
    engine, recorder, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    feed(engine, clock, path_candles(flat(100, 5)))
    # all 10 covered from the answer on, while its fills came in (none grew or moved the stop)
    held = [qty for qty, _ in broker.after_each_fill[:4]]
    covered = [cover for _, cover in broker.after_each_fill[:4]]
    assert held == pytest.approx([10.0, 10 / 3, 20 / 3, 10.0]) and covered == [10.0] * 4
    stops = [e.intent for e in recorder.orders if e.intent.purpose is OrderPurpose.STOP]
    assert {(i.client_id, i.qty_base) for i in stops} == {("TEST-1-stop1", 10.0)}
    trade = engine._trade
    assert trade.qty_base == pytest.approx(10.0) and trade.entry_unread == 0
    assert trade.entry_price == pytest.approx(100.1) and trade.entry_ms == path_candles(
        flat(100, 5))[3].ts_open_ms  # the trade is its fills' (the first one dates it)
    targets = [o for o in broker.working_orders() if o.order_type is OrderType.LIMIT]
    assert sum(t.qty_base for t in targets) == pytest.approx(10.0)


class RefusingBroker(PaperBroker):
    """SYNTHETIC venue that refuses the first `refuse` orders of the `purposes` given: with
    `error` (a refusal, or an answer that never came)."""

    def __init__(self, *args, purposes, refuse, error=OrderRejectedError, **kwargs):
        super().__init__(*args, **kwargs)
        self.purposes, self.refuse, self.error = purposes, refuse, error
        self.refused: list[str] = []
        self.cover_at_each_candle: list[tuple[float, float]] = []

    def submit(self, intent: OrderIntent) -> None:
        if intent.purpose in self.purposes and len(self.refused) < self.refuse:
            self.refused.append(intent.client_id)
            raise self.error(f"{intent.client_id}: refused (scripted)")
        super().submit(intent)

    def on_base_candle(self, candle: Candle) -> None:
        super().on_base_candle(candle)
        self.cover_at_each_candle.append((self._position_qty, stop_cover(self)))


TIME_STOP = settings_with(risk={"volatility_scaling": False, "lot_rounding": False},
                          costs={"slippage_bps": 0.0}, exits={"targets": "fixed_r",
                                                              "time_stop_hours": 1.0},
                          live={"stop_place_retries": 3})


@pytest.mark.parametrize("refuse, last_leg", [(2, "time_stop"), (6, "flatten")])
def test_a_refused_exit_keeps_the_stop_until_the_position_is_flat_scripted(refuse, last_leg):
    """The time stop's market exit is refused `refuse` times: it is retried (same client id);
    past `live.stop_place_retries` failures the fallback flattens. The stop works meanwhile."""
    _, _, clock = make_engine(TIME_STOP)
    broker = RefusingBroker(TIME_STOP.costs, clock, refuse=refuse,
                            purposes=(OrderPurpose.TIME_EXIT, OrderPurpose.FLATTEN))
    engine, recorder, _ = make_engine(TIME_STOP, broker=broker, clock=clock)
    feed(engine, clock, path_candles(flat(100, 30)))
    (trade,) = engine.trades
    assert [leg.reason for leg in trade.legs] == [last_leg]
    assert len(broker.refused) == refuse
    for held, cover in broker.cover_at_each_candle:
        assert held == 0 or cover >= held, broker.cover_at_each_candle
    assert engine.is_idle() and broker.working_orders() == ()
    refused_ids = set(broker.refused)
    if last_leg == "time_stop":
        assert refused_ids == {"TEST-1-time"}  # retried under its own id
    else:
        assert refused_ids == {"TEST-1-time", "TEST-1-flat"}
        said = [e.detail for e in recorder.orders if e.intent.purpose is OrderPurpose.FLATTEN
                and e.status == "submitted"]
        assert said and said[0].startswith("protection fallback")


@pytest.mark.parametrize("failures, legs", [(2, ["stop"]), (5, ["flatten"])])
def test_a_stop_the_venue_does_not_answer_is_retried_then_the_fallback_closes_scripted(
        failures, legs):
    """The first stop's answers never come (`failures` times): it is retried every candle
    under the same client id; past `live.stop_place_retries` the position is flattened."""
    _, _, clock = make_engine(SETTINGS)
    broker = RefusingBroker(SETTINGS.costs, clock, refuse=failures,
                            purposes=(OrderPurpose.STOP,), error=TemporaryExchangeError)
    engine, recorder, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    feed(engine, clock, path_candles(flat(100, 12) + [(100, 100.5, 90.0, 91.0)]))
    (trade,) = engine.trades
    assert [leg.reason for leg in trade.legs] == legs
    assert set(broker.refused) == {"TEST-1-stop1"}
    if legs == ["stop"]:
        assert trade.legs[0].price == 95.0
        unprotected = [c for c in broker.cover_at_each_candle if c[0] > 0 and c[1] < c[0]]
        # noted as each candle's fills resolve, before the engine's retry in that candle
        assert len(unprotected) == failures + 1


def test_an_entry_whose_answer_never_came_waits_for_the_broker_to_say_scripted():
    """The entry's answer is lost (it reached the venue): the engine keeps waiting for it, and
    its fill opens the trade with its stop. Lost and never sent: the broker's reconciliation
    reports it rejected, and the engine stops waiting."""

    class LostAnswer(PaperBroker):
        reached = True

        def submit(self, intent):
            if intent.purpose is OrderPurpose.ENTRY:
                if self.reached:
                    super().submit(intent)
                raise TemporaryExchangeError("timed out: outcome unknown")
            super().submit(intent)

    _, _, clock = make_engine(SETTINGS)
    broker = LostAnswer(SETTINGS.costs, clock)
    engine, _, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    feed(engine, clock, path_candles(flat(100, 5)))
    assert engine._trade is not None and stop_cover(broker) == pytest.approx(10.0)

    _, _, clock = make_engine(SETTINGS)
    broker = LostAnswer(SETTINGS.costs, clock)
    broker.reached = False
    engine, _, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    feed(engine, clock, path_candles(flat(100, 4)))
    assert not engine.is_idle()  # still waiting: the outcome is unknown
    entry = OrderIntent("TEST-1-entry", "BTC/USDT:USDT", Side.BUY, OrderType.MARKET, 10.0,
                        OrderPurpose.ENTRY)
    broker._event(entry, "rejected")  # what reconciliation reports when it was never sent
    assert engine.is_idle()


def test_an_entry_whose_fills_come_apart_is_covered_at_each_protection_check_scripted():
    """The venue reports the entry's first trade now and the rest later (a partly filled
    order): what has filled gets its stop at the check that ends the broker's call, and the
    stop grows when the rest fills."""

    class SlowFills(PaperBroker):
        def _fill(self, intent, candle, price, maker):
            if intent.purpose is not OrderPurpose.ENTRY:
                return super()._fill(intent, candle, price, maker)
            if not getattr(self, "first_done", False):
                self.first_done = True
                self._position_qty += 4.0
                self._on_fill(Fill(intent.client_id, intent.symbol, candle.ts_open_ms,
                                   Side.BUY, price, 4.0, 0.0, False, OrderPurpose.ENTRY))
                return  # the order keeps working: the rest fills on the next candle
            del self._orders[intent.client_id]
            self._position_qty += 6.0
            self._on_fill(Fill(intent.client_id, intent.symbol, candle.ts_open_ms, Side.BUY,
                               price, 6.0, 0.0, False, OrderPurpose.ENTRY))

    _, _, clock = make_engine(SETTINGS)
    broker = SlowFills(SETTINGS.costs, clock)
    engine, _, _ = make_engine(SETTINGS, broker=broker, clock=clock)
    candles = path_candles(flat(100, 6))
    feed(engine, clock, candles[:4])
    assert engine._trade.qty_base == 4.0 and stop_cover(broker) == 4.0
    feed(engine, clock, candles[4:])
    assert engine._trade.qty_base == 10.0 and stop_cover(broker) == 10.0
    assert sum(o.qty_base for o in broker.working_orders()
               if o.order_type is OrderType.LIMIT) == pytest.approx(10.0)
