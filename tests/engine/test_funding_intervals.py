"""Funding by settlement, whatever the interval and the timestamp's milliseconds.

Scripted SYNTHETIC paths (tiny, hand-checkable): a long of 10 BTC entered at 00:15 at 100 (the
open of base candle 3), held on a flat market; the rates are in the engine's book from the
start (as the fast backtest feeds them) and the clock hides each until its own timestamp. The
rule (cryptobot.data.funding_times): a rate settles at its timestamp floored to the minute and
is charged on what was held at that time, at the open of the first base candle opening at or
after it, once published; each settlement once.
"""

from __future__ import annotations

import pytest

from cryptobot.clock import HOUR_MS
from cryptobot.model import FundingRate
from cryptobot.runners.stream_session import advance_sim_clock
from tests.engine.conftest import (
    BASE_MS,
    T0_MS,
    feed,
    flat,
    make_engine,
    path_candles,
    settings_with,
)

SETTINGS = settings_with(risk={"volatility_scaling": False, "lot_rounding": False},
                         exits={"targets": "fixed_r", "time_stop_hours": 48.0},
                         costs={"slippage_bps": 0.0})
QTY = 10.0  # 50 USDT risk / (100 - 95)


def _held_over(rates: list[tuple[int, float]], rows=None, hours: int = 18):
    """The engine after a flat path of `hours` (or `rows`) with `rates` (stamp, rate)."""
    engine, _, clock = make_engine(SETTINGS)
    for ts_ms, rate in rates:
        engine.on_funding(FundingRate(ts_ms, rate))
    feed(engine, clock, path_candles(rows or flat(100, hours * HOUR_MS // BASE_MS)))
    return engine


def _paid(engine) -> float:
    trade = engine._trade if engine._trade is not None else engine.trades[0]
    return trade.funding_usdt


def test_rates_stamped_milliseconds_and_seconds_off_the_hour_are_charged_synthetic():
    engine = _held_over([(T0_MS + 8 * HOUR_MS + 1, 0.0001),  # 1 ms late
                         (T0_MS + 16 * HOUR_MS + 4_321, 0.0002)])  # 4.321 s late
    assert _paid(engine) == pytest.approx(QTY * 100 * (0.0001 + 0.0002))
    assert engine.market.funding_due.charged_ms == [T0_MS + 8 * HOUR_MS + 1,
                                                    T0_MS + 16 * HOUR_MS + 4_321]


def test_every_4h_every_rate_is_charged_synthetic():
    rates = [(T0_MS + h * HOUR_MS + 3, 0.0001 * h) for h in range(4, 17, 4)]  # 04:00 .. 16:00
    engine = _held_over(rates)
    assert _paid(engine) == pytest.approx(QTY * 100 * 0.0001 * (4 + 8 + 12 + 16))
    assert len(engine.market.funding_due.charged_ms) == 4


def test_an_interval_change_mid_run_8h_then_4h_then_1h_synthetic():
    hours = [8, 16, 20, 24, 25, 26, 27]
    engine = _held_over([(T0_MS + h * HOUR_MS, 0.0001) for h in hours], hours=28)
    assert _paid(engine) == pytest.approx(QTY * 100 * 0.0001 * len(hours))


def test_a_rate_settled_before_the_entry_is_not_charged_nor_one_twice_synthetic():
    engine = _held_over([(T0_MS, 0.01),  # 00:00, before the 00:15 entry
                         (T0_MS + 8 * HOUR_MS, 0.0001),
                         (T0_MS + 8 * HOUR_MS + 5, 0.0001)])  # the same settlement again
    assert _paid(engine) == pytest.approx(QTY * 100 * 0.0001)


def test_a_rate_exactly_at_a_candle_boundary_applies_to_what_was_held_then_synthetic():
    """08:00:00.000: what was held at 08:00 pays it, at the 08:00 candle's open (102 here),
    even though the stop fills inside that very candle."""
    before = 8 * HOUR_MS // BASE_MS
    rows = flat(100, before) + [(102, 102, 90, 92)] + flat(92, 2)
    engine = _held_over([(T0_MS + 8 * HOUR_MS, 0.0001)], rows=rows)
    (trade,) = engine.trades
    assert trade.legs[0].reason == "stop" and trade.legs[0].ts_ms >= T0_MS + 8 * HOUR_MS
    assert trade.funding_usdt == pytest.approx(QTY * 102 * 0.0001)


def test_a_rate_inside_a_candle_is_charged_at_the_next_open_once_published_synthetic():
    """Stamped 08:07:30 (settles 08:07, inside the 08:05 candle): charged at the 08:10 open
    (104), never at a close before the rate was published."""
    start = 8 * HOUR_MS // BASE_MS
    rows = flat(100, start + 1) + [(104, 105, 103, 104)] * 3
    engine = _held_over([(T0_MS + 8 * HOUR_MS + 7 * 60_000 + 30_000, 0.0001)], rows=rows)
    assert _paid(engine) == pytest.approx(QTY * 104 * 0.0001)


def test_an_entry_at_the_settlement_does_not_pay_it_synthetic():
    """The entry fills at the 00:15 open; a rate settled exactly then is not the position's."""
    engine = _held_over([(T0_MS + 15 * 60_000, 0.01), (T0_MS + 15 * 60_000 + 60_000, 0.0001)])
    assert _paid(engine) == pytest.approx(QTY * 100 * 0.0001)


def test_a_rate_that_arrives_late_is_charged_on_what_was_held_at_its_settlement_synthetic():
    """Live: the 08:00 rate's poll comes back only at 08:20, after TP1 (105, half the position)
    filled at 08:05: it is charged on the 10 BTC held at 08:00, at the 08:00 open (101), not
    on the 5 left at the 08:20 open."""
    engine, _, clock = make_engine(SETTINGS)
    before = 8 * HOUR_MS // BASE_MS
    candles = path_candles(flat(100, before) + [(101, 101.5, 100.5, 101), (104, 106, 103, 105)]
                           + flat(105, 6))
    arrived = before + 4  # the candles up to 08:20 have closed when the rate comes in
    feed(engine, clock, candles[:arrived])
    trade = engine._trade
    assert [leg.reason for leg in trade.legs] == ["tp1"] and trade.remaining_qty == QTY / 2
    engine.on_funding(FundingRate(T0_MS + 8 * HOUR_MS + 500, 0.0001))
    feed(engine, clock, candles[arrived:])
    assert _paid(engine) == pytest.approx(QTY * 101 * 0.0001)
    assert engine.market.funding_due.charged_ms == [T0_MS + 8 * HOUR_MS + 500]


class _HeldThroughout:
    """A journal that says 10 BTC were held all along (engine/restart.py PositionHistory)."""

    def busy(self, now_ms):
        return True

    def held(self, before_ms):
        return ("TEST-1", QTY)


def test_a_restart_replays_a_late_rate_at_the_open_it_fell_due_on_synthetic():
    """The run's history had the 08:00 rate come in after the 08:15 candle: the replay charges
    it at the 08:00 open (101), as the run did, not at the 08:20 one (105)."""
    engine, _, clock = make_engine(SETTINGS)
    before = 8 * HOUR_MS // BASE_MS
    candles = path_candles(flat(100, before) + [(101, 101.5, 100.5, 101)] + flat(105, 5))
    late = FundingRate(T0_MS + 8 * HOUR_MS + 500, 0.0001)
    history = [*candles[:before + 4], late, *candles[before + 4:]]
    paid = engine.replay_history(history, advance_sim_clock(clock), _HeldThroughout())
    assert paid == {"TEST-1": pytest.approx(QTY * 101 * 0.0001)}
