"""A heartbeat held until the commit (paper and live print once a candle's orders are out)
says what the candle's heartbeat said when it was made: the position and gate as of the
candle, not what the candle's own orders changed before the commit."""

from __future__ import annotations

import io

from rich.console import Console

from cryptobot.cli.paper_console import ConsoleRecorder
from cryptobot.engine.recorder import MemoryRecorder, RunInfo
from cryptobot.model import (
    Candle,
    Fill,
    GateAction,
    GateDecision,
    OpenInterest,
    OrderPurpose,
    Side,
)

T0 = 1_722_816_000_000  # 2024-08-05 00:00 UTC
SYMBOL = "BTC/USDT:USDT"


def _printed(commit_per_event: bool) -> list[str]:
    out = io.StringIO()
    console = ConsoleRecorder(MemoryRecorder(), Console(file=out, width=200, color_system=None),
                              commit_per_event=commit_per_event)
    console.start_run(RunInfo("paper", "binanceusdm", (SYMBOL,), T0, None, "test", {}))
    for k in range(3):
        open_ms = T0 + k * 900_000
        for oi_ms, contracts in ((open_ms, 100.0 + k), (open_ms + 600_000, 97.0 + k)):
            console.on_event(OpenInterest(oi_ms, contracts, None, SYMBOL))
        console.gate_decision(GateDecision(open_ms, GateAction.REDUCE if k else GateAction.ALLOW,
                                           0.5, ("test",)), "signal")
        candle = Candle(open_ms, 900_000, 60000.0, 60100.0, 59000.0, 59500.0 + k, 10.0, SYMBOL)
        console.signal_candle(SYMBOL, candle)
        if k == 1:  # the candle's entry fills before its commit
            console.fill(Fill(f"E{k}-entry", SYMBOL, candle.ts_close_ms, Side.BUY, 59500.0,
                              0.01, 0.2, False, OrderPurpose.ENTRY))
        console.on_event(candle)  # the commit
    return [line for line in out.getvalue().splitlines() if " close " in line]


def test_a_held_heartbeat_says_what_it_said_when_made():
    held, at_once = _printed(commit_per_event=True), _printed(commit_per_event=False)
    assert len(held) == 3 and held == at_once, (held, at_once)
    assert "gate REDUCE" in held[1] and held[1].endswith("flat")  # filled after the candle
    assert "long 0.010000" in held[2] and "OI -2.97%" in held[1]
