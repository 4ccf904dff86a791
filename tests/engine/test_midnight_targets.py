"""Targets of an entry on the first candle of a UTC day (SYNTHETIC scripted price paths).

STRATEGY.md: the milestones are the current UTC day's VWAP and the previous UTC day's close.
An entry that fills at 00:00 is in the new day: the previous day is the one that just ended
(its close is the last close before midnight), and the new day's VWAP is undefined until one
of its candles has closed, so that target is skipped (nothing of the new day is known yet).
"""

from __future__ import annotations

import numpy as np
import pytest

from cryptobot.clock import DAY_MS, HOUR_MS, SimClock
from cryptobot.engine.market_view import KnownSession, SessionVwap, _KnownSessionCursor
from cryptobot.model import OrderPurpose, Position
from tests.engine.conftest import (
    BASE_MS,
    T0_MS,
    ScriptedEntries,
    feed,
    flat,
    make_engine,
    path_candles,
    settings_with,
)

PER_DAY = DAY_MS // BASE_MS  # 288 five-minute candles
SIGNALS_PER_DAY = 96


def _three_days(new_day_rows):
    """D-2 at 120 closing at 130; D-1 at 106 (VWAP 106.01...) closing at 110; then D."""
    return (flat(120, PER_DAY - 1) + [(120, 131, 119, 130)]
            + flat(106, PER_DAY - 1) + [(106, 110.5, 105, 110)] + new_day_rows)


def _entered(entry_signal: int, rows):
    settings = settings_with(risk={"volatility_scaling": False, "lot_rounding": False},
                             costs={"slippage_bps": 0.0})
    strategy = ScriptedEntries(settings, settings.market.symbol)
    strategy.entry_at = (entry_signal,)
    engine, recorder, clock = make_engine(settings, strategy=strategy,
                                          clock=SimClock(T0_MS - 2 * DAY_MS))
    feed(engine, clock, path_candles(rows, start_ms=T0_MS - 2 * DAY_MS))
    targets = {e.intent.purpose: e.intent.price for e in recorder.orders
               if e.intent.purpose in (OrderPurpose.TP1, OrderPurpose.TP2)}
    return engine, targets


def test_an_entry_at_midnight_targets_the_close_of_the_day_that_just_ended_synthetic():
    # The signal candle 23:45-00:00 of D-1 closes; the entry fills at the open of 00:00 (D).
    engine, targets = _entered(2 * SIGNALS_PER_DAY, _three_days(flat(100, 6)))
    (trade,) = [engine._trade]
    assert trade.entry_ms == T0_MS and trade.entry_price == pytest.approx(100.0)
    # R = 5, milestones at least 0.5 R above the entry: D-1's close 110 only. D's VWAP is not
    # known yet; D-1's VWAP (106.01) and D-2's close (130) are the wrong day's.
    assert targets == {OrderPurpose.TP1: 110.0}


def test_an_entry_after_the_first_candle_of_the_day_uses_the_new_days_vwap_synthetic():
    # The entry decided at 00:15 fills at 00:15: D's candles 00:00..00:10 have closed.
    new_day = flat(112, 3) + flat(104, 3)  # D's VWAP through 00:10: 112
    engine, targets = _entered(2 * SIGNALS_PER_DAY + 1, _three_days(new_day))
    assert engine._trade.entry_ms == T0_MS + 3 * BASE_MS
    assert engine._trade.entry_price == pytest.approx(104.0)  # R = 104 - 95 = 9, floor 108.5
    assert targets == {OrderPurpose.TP1: 110.0, OrderPurpose.TP2: 112.0}


def _candles_with_a_missing_day():
    rows = _three_days(flat(100, 10))
    candles = path_candles(rows, start_ms=T0_MS - 2 * DAY_MS)
    candles = candles + [
        c.__class__(c.ts_open_ms + 2 * DAY_MS, c.interval_ms, c.open, c.high, c.low, c.close,
                    c.volume) for c in candles[-10:]]  # D+1 missing: no previous close on D+2
    arrays = {name: np.array([getattr(c, name) for c in candles])
              for name in ("ts_open_ms", "open", "high", "low", "close", "volume")}
    return candles, KnownSession(arrays)


def test_session_as_of_the_clock_is_the_same_candle_by_candle_and_precomputed_synthetic():
    """Every candle, at its close and just after the next one opens (when a fill there is
    handled), with a day missing in the data: SessionVwap and KnownSession agree bit for bit."""
    candles, known = _candles_with_a_missing_day()
    session = SessionVwap()
    assert known.as_of(-1, candles[0].ts_close_ms) == (pytest.approx(np.nan, nan_ok=True),) * 2
    seen_rollover = 0
    for i, candle in enumerate(candles):
        session.update(candle)
        later = candles[i + 1].ts_open_ms + 1 if i + 1 < len(candles) else candle.ts_close_ms
        for now_ms in (candle.ts_close_ms, later):
            got, want = known.as_of(i, now_ms), session.as_of(now_ms)
            assert np.array_equal(np.array(got), np.array(want), equal_nan=True), (i, now_ms)
            seen_rollover += np.isnan(got[0])
    assert seen_rollover >= 3  # midnight D, D+2 (after the hole), and the last close's day


def test_a_restart_just_after_midnight_rebuilds_the_targets_of_the_new_day_synthetic():
    """The process restarts at 00:00:30 holding a long entered at 00:00 with no take-profit
    working: the targets it places are those of an entry at that time (D-1's close only)."""
    settings = settings_with(risk={"volatility_scaling": False, "lot_rounding": False})
    clock = SimClock(T0_MS - 2 * DAY_MS)
    engine, recorder, _ = make_engine(settings, clock=clock)
    engine.warm_up(path_candles(_three_days([]), start_ms=T0_MS - 2 * DAY_MS))
    clock.advance_to(T0_MS + 30_000)
    engine.restore_position(Position("BTC/USDT:USDT", 10.0, 100.0, 95.0, T0_MS, "TEST-9"))
    targets = {o.purpose: o.price for o in engine.broker.working_orders()
               if o.purpose in (OrderPurpose.TP1, OrderPurpose.TP2)}
    assert targets == {OrderPurpose.TP1: 110.0}


def test_the_session_at_an_earlier_time_is_what_it_said_then_both_ways_synthetic():
    """`at_time(t)` after every candle was fed equals `as_of(t)` when the clock read t, for
    SessionVwap (candle by candle) and the precomputed KnownSession alike."""
    candles, known = _candles_with_a_missing_day()
    session, cursor = SessionVwap(), _KnownSessionCursor(known)
    said = []
    for i, candle in enumerate(candles):
        session.update(candle)
        cursor.update(candle)
        later = candles[i + 1].ts_open_ms + 1 if i + 1 < len(candles) else candle.ts_close_ms
        said += [(now_ms, session.as_of(now_ms)) for now_ms in (candle.ts_close_ms, later)]
    for now_ms, then in said:
        for got in (session.at_time(now_ms), cursor.at_time(now_ms)):
            assert np.array_equal(np.array(got), np.array(then), equal_nan=True), now_ms
    assert np.isnan(session.at_time(candles[0].ts_close_ms - 1)).all()


def test_a_late_restart_gives_the_targets_of_the_entry_not_of_the_restart_synthetic():
    """Entered at 00:00 (TP1 at D-1's close, no TP2: D's VWAP unknown then); the process comes
    back at 03:00 with only TP1 in its journal: TP1 is put back, and no TP2 appears at the VWAP
    D has by 03:00 (112)."""
    engine0, original = _entered(2 * SIGNALS_PER_DAY, _three_days(flat(100, 1) + flat(112, 35)))
    assert original == {OrderPurpose.TP1: 110.0} and engine0._trade.entry_ms == T0_MS
    settings = settings_with(risk={"volatility_scaling": False, "lot_rounding": False})
    clock = SimClock(T0_MS - 2 * DAY_MS)
    engine, _, _ = make_engine(settings, clock=clock)
    engine.warm_up(path_candles(_three_days(flat(100, 1) + flat(112, 35)),
                                start_ms=T0_MS - 2 * DAY_MS))
    clock.advance_to(T0_MS + 3 * HOUR_MS + 30_000)
    assert engine.market.day_vwap == pytest.approx(111.7, abs=0.5)  # what "now" would give
    engine.restore_position(Position("BTC/USDT:USDT", 10.0, 100.0, 95.0, T0_MS, "TEST-9"),
                            target_prices={OrderPurpose.TP1: 110.0})
    targets = {o.purpose: o.price for o in engine.broker.working_orders()
               if o.purpose in (OrderPurpose.TP1, OrderPurpose.TP2)}
    assert targets == original
