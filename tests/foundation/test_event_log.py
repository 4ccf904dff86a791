import json
import logging

from cryptobot.engine.recorder import MemoryRecorder, OrderEvent, RunInfo
from cryptobot.logs import configure_logging, process_log_path
from cryptobot.model import (
    Fill,
    GateAction,
    GateDecision,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Side,
    Signal,
    SignalStatus,
)
from cryptobot.runners.event_log import EventLogRecorder

SPIKE_MS = 1_722_838_500_000  # 2024-08-05T06:15:00Z


def _lines(directory):
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    return [json.loads(line) for line in process_log_path(directory).read_text().splitlines()]


def test_every_decision_is_one_json_line_and_reaches_the_store(tmp_path):
    configure_logging(tmp_path, console=False)
    memory = MemoryRecorder()
    recorder = EventLogRecorder(memory)
    recorder.start_run(RunInfo("backtest", "binanceusdm", ("BTC/USDT:USDT",), None, None, "x", {}))
    gate = GateDecision(SPIKE_MS, GateAction.REDUCE, 0.5, ("QT active",))
    signal = Signal("BTCUSDT-20240805T0615", "BTC/USDT:USDT", SPIKE_MS, SPIKE_MS + 900_000,
                    SignalStatus.REJECTED, "open interest did not fall enough",
                    {"oi_change_pct": -1.18})
    recorder.signal(signal, gate)
    recorder.gate_decision(gate, "daily")
    intent = OrderIntent("BTCUSDT-20240805T0615-entry", "BTC/USDT:USDT", Side.BUY,
                         OrderType.MARKET, 0.01, OrderPurpose.ENTRY)
    recorder.order(OrderEvent(SPIKE_MS, intent, "rejected", "below min notional"))
    recorder.fill(Fill(intent.client_id, intent.symbol, SPIKE_MS, Side.BUY, 50_000.0, 0.01, 0.25,
                       False, OrderPurpose.ENTRY))
    recorder.equity(SPIKE_MS, 10_000.0)
    recorder.finish_run({"trades": 0})

    events = [line["event"] for line in _lines(tmp_path)]
    assert events == ["run_start", "signal", "gate", "order", "fill", "run_finish"]
    signal_line = _lines(tmp_path)[1]
    assert signal_line["signal"]["time"] == "2024-08-05T06:15:00Z"
    assert signal_line["signal"]["oi_change_pct"] == -1.18
    assert signal_line["gate"]["action"] == "REDUCE"
    assert _lines(tmp_path)[3]["level"] == "WARNING"
    assert len(memory.signals) == len(memory.fills) == len(memory.equity_points) == 1
    assert memory.summary == {"trades": 0}
    assert recorder.run_id == memory.run_id  # anything else is forwarded


def test_an_error_that_stops_a_session_is_logged_and_tail_shows_it(tmp_path, run_cli):
    """A feed that fails after one candle (SYNTHETIC candle, hand-made)."""
    import asyncio

    import pytest

    from cryptobot.clock import SimClock
    from cryptobot.errors import ExchangeError
    from cryptobot.model import Candle
    from cryptobot.runners.stream_session import TradingSession, advance_sim_clock

    class FailingFeed:
        async def events(self):
            yield Candle(SPIKE_MS, 300_000, 1.0, 1.0, 1.0, 1.0, 1.0)
            raise ExchangeError("binanceusdm: 418 I'm a teapot")

        async def close(self):
            pass

    class Engine:
        candles = 0

        def on_base_candle(self, candle):
            self.candles += 1

    clock = SimClock(SPIKE_MS)
    configure_logging(tmp_path, console=False, clock_ms=clock.now_ms)
    session = TradingSession(Engine(), FailingFeed(), advance_sim_clock(clock))
    with pytest.raises(ExchangeError):
        asyncio.run(session.run())
    [line] = [line for line in _lines(tmp_path) if line.get("event") == "error"]
    assert line["level"] == "ERROR" and "418 I'm a teapot" in line["message"]
    assert "ExchangeError" in line["exception"]
    assert line["ts_ms"] == line["last_event_ms"] == SPIKE_MS + 300_000  # the candle's close
    code, out, err = run_cli("logs", "tail", "--dir", str(tmp_path))
    assert code == 0, err
    assert "session stopped by an error after 1 candles" in out and "418" in out
