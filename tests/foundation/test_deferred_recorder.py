"""Live records what an event caused once its orders are out (runners/deferred_recorder.py):
the same rows and log lines, in the same order and with the same times, as recorded on the
spot; a call that fails keeps the ones after it."""

from __future__ import annotations

import logging

import pytest

from cryptobot.clock import LiveClock, SimClock, parse_utc
from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.recorder import MemoryRecorder, RunInfo
from cryptobot.logs import configure_logging
from cryptobot.model import GateAction, GateDecision
from cryptobot.runners.backtest import run_backtest
from cryptobot.runners.deferred_recorder import CallTime, DeferredRecorder
from cryptobot.runners.event_log import EventLogRecorder
from cryptobot.strategy import Params, Reject, Strategy
from cryptobot.strategy.loading import load_strategy
from tests.conftest import DATA_DIR, REPO_ROOT, backtest_parts
from tests.foundation.test_held_event_log import WRITTEN, _lines

CRASH = DATA_DIR / "btc_2024-08_crash"
SYMBOL = "BTC/USDT:USDT"


def _recorded(log_dir, deferred: bool) -> tuple[MemoryRecorder, list[dict]]:
    """The crash window's backtest, its calls recorded on the spot or kept and made at the
    end (deferred: every call waits for the last one)."""
    settings = load_settings(REPO_ROOT / "config" / "crosscheck.toml")
    market = load_market_data(CRASH, SYMBOL)
    broker, clock = backtest_parts(settings)
    clock.advance_to(int(market.candles["ts_open_ms"][0]))
    configure_logging(log_dir, console=False, clock_ms=clock.now_ms, wall_clock=LiveClock())
    memory, call_time = MemoryRecorder(), CallTime(clock.now_ms)
    events = EventLogRecorder(memory, held_clock_ms=call_time.now_ms)
    recorder = DeferredRecorder(events, call_time) if deferred else events
    recorder.start_run(RunInfo("paper", "binanceusdm", (SYMBOL,), None, None, "x", {}))
    run_backtest(settings, market, load_strategy(settings, SYMBOL), PassThroughGate(),
                 recorder, broker, clock, skip_quiet=False)
    return memory, _lines(log_dir)


def test_deferred_calls_give_the_rows_and_lines_recorded_on_the_spot(tmp_path):
    spot, spot_lines = _recorded(tmp_path / "spot", deferred=False)
    later, later_lines = _recorded(tmp_path / "later", deferred=True)
    assert len(spot.orders) > 10 and len(spot.signals) > 3
    for name in ("signals", "gate_decisions", "orders", "fills", "trades", "equity_points",
                 "candles", "oi_samples", "summary"):
        assert getattr(later, name) == getattr(spot, name), name
    assert len({line["ts_ms"] for line in spot_lines}) > 20  # stamped as the run went
    assert [{k: v for k, v in line.items() if k not in WRITTEN} for line in later_lines] == [
        {k: v for k, v in line.items() if k not in WRITTEN} for line in spot_lines]


def test_nothing_is_recorded_before_play_and_a_failing_call_keeps_the_rest():
    clock = SimClock(parse_utc("2024-08-05"))
    memory, call_time = MemoryRecorder(), CallTime(clock.now_ms)
    recorder = DeferredRecorder(memory, call_time)

    def decision(reason: str) -> GateDecision:
        return GateDecision(clock.now_ms(), GateAction.ALLOW, 1.0, (reason,))

    recorder.gate_decision(decision("first"), "signal")
    recorder.gate_decision(decision("second"), "signal")
    assert memory.gate_decisions == []
    fail = memory.gate_decisions.append
    memory.gate_decisions = _FailOnce(fail)
    with pytest.raises(RuntimeError):
        recorder.play()
    assert call_time.now_ms() == clock.now_ms()  # the clock's again, after the failure
    recorder.flush()  # what was kept after the failing call is made now
    assert [d.reasons for d, _ in memory.gate_decisions.made] == [("second",)]


class _FailOnce:
    def __init__(self, append) -> None:
        self.made, self._failed = [], False

    def append(self, item) -> None:
        if not self._failed:
            self._failed = True
            raise RuntimeError("the store said no")
        self.made.append(item)


def test_each_line_keeps_the_time_its_call_was_made(tmp_path):
    configure_logging(tmp_path, console=False)
    clock = SimClock(parse_utc("2024-08-05"))
    call_time = CallTime(clock.now_ms)
    events = EventLogRecorder(MemoryRecorder(), held_clock_ms=call_time.now_ms)
    recorder = DeferredRecorder(events, call_time)
    recorder.start_run(RunInfo("live", "binanceusdm", (SYMBOL,), None, None, "x", {}))
    made = []
    for step in range(3):
        clock.advance_to(clock.now_ms() + 1_000)
        made.append(clock.now_ms())
        recorder.gate_decision(GateDecision(clock.now_ms(), GateAction.ALLOW, 1.0,
                                            (f"call {step}",)), "signal")
    clock.advance_to(clock.now_ms() + 60_000)
    recorder.play()
    events.write_held_lines()
    gates = [line for line in _lines(tmp_path) if line.get("event") == "gate"]
    assert [line["ts_ms"] for line in gates] == made
    logging.getLogger("cryptobot").handlers.clear()


class _ReusesItsMetrics(Strategy):
    """Rejects every triggered candle with one metrics dict it changes each time."""

    Params = Params

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = {"asked": 0}

    def waiting(self) -> bool:
        return False

    def trigger(self, c):
        return c.close < c.open

    def on_candle(self, ctx):
        self.metrics["asked"] += 1
        return [Reject(self.signal_id(ctx.candle.ts_open_ms), ctx.candle.ts_open_ms,
                       "rejected", self.metrics)]


def test_a_rejection_keeps_the_metrics_it_was_given_not_their_later_values():
    """The engine copies a rejection's metrics: a record made later (live: once the event's
    orders are out) says what the strategy said then."""
    settings = load_settings(REPO_ROOT / "config" / "crosscheck.toml")
    market = load_market_data(CRASH, SYMBOL)
    broker, clock = backtest_parts(settings)
    clock.advance_to(int(market.candles["ts_open_ms"][0]))
    recorder = MemoryRecorder()
    strategy = _ReusesItsMetrics(Params(), SYMBOL)
    run_backtest(settings, market, strategy, PassThroughGate(), recorder, broker, clock,
                 skip_quiet=False)
    asked = [signal.metrics["asked"] for signal, _ in recorder.signals]
    assert len(asked) > 5 and asked == list(range(1, len(asked) + 1))
