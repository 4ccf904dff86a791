"""A signal's gate decision is made at its candle's close; live, it is made before the
candle's frame comes (engine/gate.py's DecisionsAhead), and it is the one the gate makes when
asked then."""

from __future__ import annotations

import numpy as np

from cryptobot.clock import LiveClock, parse_utc
from cryptobot.config import Settings
from cryptobot.engine.gate import DecisionsAhead, PassThroughGate
from cryptobot.macro import build_gate
from tests.engine.conftest import T0_MS, flat, make_engine, path_candles, settings_with


class CountingGate:
    """The real macro gate, counting what it is asked."""

    def __init__(self) -> None:
        self.gate = build_gate(Settings(), LiveClock())
        self.asked: list[int] = []

    def decide(self, now_ms: int):
        self.asked.append(now_ms)
        return self.gate.decide(now_ms)


def test_a_decision_made_ahead_is_the_one_made_when_asked():
    rng = np.random.default_rng(3)
    moments = sorted(rng.integers(parse_utc("2023-06-01"), parse_utc("2024-12-01"), 40).tolist())
    fresh = build_gate(Settings(), LiveClock())
    counting = CountingGate()
    ahead = DecisionsAhead(counting)
    for now_ms in moments:
        ahead.decide_ahead(now_ms)
        ahead.decide_ahead(now_ms)  # made once
        assert counting.asked[-1] == now_ms and counting.asked.count(now_ms) == 1
        assert ahead.decide(now_ms) == fresh.decide(now_ms)
        assert counting.asked.count(now_ms) == 1  # handed over, not made again
        other = now_ms + 1  # a moment not made ahead: the gate is asked
        assert ahead.decide(other) == fresh.decide(other)
        assert counting.asked[-1] == other


def test_only_the_latest_decisions_made_ahead_are_kept():
    counting = CountingGate()
    ahead = DecisionsAhead(counting)
    start = parse_utc("2024-08-05T00:00:00Z")
    moments = [start + i * 900_000 for i in range(DecisionsAhead.KEEP + 3)]
    for now_ms in moments:
        ahead.decide_ahead(now_ms)
    asked = len(counting.asked)
    ahead.decide(moments[-1])
    ahead.decide(moments[-DecisionsAhead.KEEP])
    assert len(counting.asked) == asked  # kept
    ahead.decide(moments[0])
    assert len(counting.asked) == asked + 1  # dropped: made again


class RecordingGate(PassThroughGate):
    def __init__(self) -> None:
        self.asked: list[int] = []

    def decide(self, now_ms: int):
        self.asked.append(now_ms)
        return super().decide(now_ms)


def _live_like_run(gate, ahead: bool):
    """Scripted candles (SYNTHETIC) whose frames come 400 ms after their closes, as live; an
    entry at the close of the first 15m candle; `ahead`: the session's between-events call."""
    engine, recorder, clock = make_engine(settings_with(), gate=gate)
    for candle in path_candles(flat(100.0, 6)):
        clock.advance_to(candle.ts_close_ms + 400)
        engine.on_base_candle(candle)
        if ahead:
            engine.decide_gate_ahead()
    return engine, recorder


def test_a_signal_is_gated_at_its_candle_close_not_when_its_frame_came():
    gate = RecordingGate()
    engine, recorder = _live_like_run(gate, ahead=False)
    first_close = T0_MS + 900_000
    assert engine.signals and engine.signals[0].decided_ms == first_close + 400
    signal_decisions = [d for d, trigger in recorder.gate_decisions if trigger == "signal"]
    assert [d.ts_ms for d in signal_decisions] == [first_close]
    assert first_close in gate.asked


def test_between_events_the_next_signal_close_is_decided_before_its_frame():
    inner = RecordingGate()
    engine, recorder = _live_like_run(DecisionsAhead(inner), ahead=True)
    # the day's decision at its start, then each coming 15m close decided ahead once (the
    # first before its candle came), and not again when the entry at that close asked
    assert inner.asked == [T0_MS + k * 900_000 for k in range(4)], inner.asked
    assert [d.ts_ms for d, trigger in recorder.gate_decisions if trigger == "signal"] == [
        T0_MS + 900_000]
