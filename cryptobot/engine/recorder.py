"""Where the engine reports everything it decides and does.

`Recorder` is the engine's only view of storage. `cryptobot.store` implements it on SQLAlchemy;
`MemoryRecorder` keeps everything in lists (tests, and the in-process result of a backtest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
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


@dataclass(frozen=True, slots=True)
class CandleBlock:
    """Signal candles as columns (numpy arrays or lists): a backtest records the candles it
    skipped in one call instead of one object each."""

    interval_ms: int
    ts_open_ms: Sequence[int]
    open: Sequence[float]
    high: Sequence[float]
    low: Sequence[float]
    close: Sequence[float]
    volume: Sequence[float]

    def __len__(self) -> int:
        return len(self.ts_open_ms)

    def rows(self) -> zip:
        """(ts_open_ms, open, high, low, close, volume) tuples of plain Python numbers."""
        return zip(*(_plain(column) for column in (self.ts_open_ms, self.open, self.high,
                                                   self.low, self.close, self.volume)),
                   strict=True)

    def candles(self) -> list[Candle]:
        ts, o, h, lo, c, v = (_plain(column) for column in (
            self.ts_open_ms, self.open, self.high, self.low, self.close, self.volume))
        return list(map(Candle, ts, repeat(self.interval_ms), o, h, lo, c, v))


def _plain(column: Sequence) -> list:
    return column.tolist() if hasattr(column, "tolist") else list(column)


def record_signal_candles(recorder: Recorder, block: CandleBlock) -> None:
    """One bulk call where the recorder has it (MemoryRecorder, SqlRecorder), else one by one."""
    if not len(block):
        return
    bulk = getattr(recorder, "signal_candles", None)
    if bulk is not None:
        bulk(block)
    else:
        for candle in block.candles():
            recorder.signal_candle(candle)


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
    def signal_candles(self, block: CandleBlock) -> None:
        """Many signal candles at once, in time order (backtests); same rows as one by one."""
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
        pending = self.__dict__.get("_candle_blocks")
        (pending if pending else self._candles).append(candle)

    def signal_candles(self, block: CandleBlock) -> None:
        # Kept as columns until someone reads `candles`: a backtest need not pay for objects.
        self.__dict__.setdefault("_candle_blocks", []).append(block)

    def open_interest(self, sample: OpenInterest) -> None:
        self.oi_samples.append(sample)

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.summary = summary


def _candles_get(self: MemoryRecorder) -> list[Candle]:
    pending = self.__dict__.get("_candle_blocks")  # blocks and single candles, in order
    if pending:
        for item in pending:
            if isinstance(item, CandleBlock):
                self._candles.extend(item.candles())
            else:
                self._candles.append(item)
        pending.clear()
    return self._candles


def _candles_set(self: MemoryRecorder, value: list[Candle]) -> None:
    self.__dict__["_candle_blocks"] = []
    self._candles = value


# `candles` stays a constructor field and a list to its readers; bulk blocks join it on read.
MemoryRecorder.candles = property(_candles_get, _candles_set)  # type: ignore[assignment]
