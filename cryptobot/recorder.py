"""Where the engine reports everything it decides and does.

`Recorder` is the engine's only view of storage. `cryptobot.store` implements it on SQLAlchemy;
`MemoryRecorder` keeps everything in lists (tests, and the in-process result of a backtest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptobot.model import Candle, Fill, GateDecision, OpenInterest, OrderIntent, Signal, Trade


@dataclass(frozen=True, slots=True)
class RunInfo:
    mode: str  # backtest, paper, live
    exchange: str
    symbol: str
    start_ms: int | None
    end_ms: int | None
    data_source: str  # folder or stream; says "SYNTHETIC" when any input is synthetic
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    ts_ms: int
    intent: OrderIntent
    status: str  # submitted, open, canceled, rejected, filled
    detail: str = ""


class Recorder(Protocol):
    def start_run(self, info: RunInfo) -> str: ...
    def signal(self, signal: Signal, gate: GateDecision | None) -> None: ...
    def gate_decision(self, decision: GateDecision, trigger: str) -> None: ...
    def order(self, event: OrderEvent) -> None: ...
    def fill(self, fill: Fill) -> None: ...
    def trade(self, trade: Trade, gate: GateDecision | None) -> None: ...
    def equity(self, ts_ms: int, equity_usdt: float) -> None: ...
    def signal_candle(self, candle: Candle) -> None:
        """Each closed signal-timeframe candle the strategy saw (the report draws them)."""
        ...
    def open_interest(self, sample: OpenInterest) -> None: ...
    def finish_run(self, summary: dict[str, Any]) -> None: ...


@dataclass
class MemoryRecorder:
    run_id: str = "memory"
    info: RunInfo | None = None
    signals: list[tuple[Signal, GateDecision | None]] = field(default_factory=list)
    gate_decisions: list[tuple[GateDecision, str]] = field(default_factory=list)
    orders: list[OrderEvent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    trades: list[tuple[Trade, GateDecision | None]] = field(default_factory=list)
    equity_points: list[tuple[int, float]] = field(default_factory=list)
    candles: list[Candle] = field(default_factory=list)
    oi_samples: list[OpenInterest] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    def start_run(self, info: RunInfo) -> str:
        self.info = info
        return self.run_id

    def signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self.signals.append((signal, gate))

    def gate_decision(self, decision: GateDecision, trigger: str) -> None:
        self.gate_decisions.append((decision, trigger))

    def order(self, event: OrderEvent) -> None:
        self.orders.append(event)

    def fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def trade(self, trade: Trade, gate: GateDecision | None) -> None:
        self.trades.append((trade, gate))

    def equity(self, ts_ms: int, equity_usdt: float) -> None:
        self.equity_points.append((ts_ms, equity_usdt))

    def signal_candle(self, candle: Candle) -> None:
        self.candles.append(candle)

    def open_interest(self, sample: OpenInterest) -> None:
        self.oi_samples.append(sample)

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.summary = summary
