"""Where the engine reports everything it decides and does.

`Recorder` is the engine's only view of storage. `cryptobot.store` implements it on SQLAlchemy;
`MemoryRecorder` keeps everything in lists (tests, and the in-process result of a backtest).
A run may watch several symbols: market data (signal candles, OI samples) is recorded with the
symbol it is of, given explicitly; signals, orders, fills and trades carry their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from typing import Any, Protocol, TypeVar

from cryptobot.model import Candle, Fill, GateDecision, OpenInterest, OrderIntent, Signal, Trade

_Tagged = TypeVar("_Tagged", Candle, OpenInterest)


@dataclass(frozen=True, slots=True)
class RunInfo:
    mode: str  # backtest, paper, live
    exchange: str
    symbols: tuple[str, ...]  # the symbols the run watches, in the config's order
    start_ms: int | None
    end_ms: int | None
    data_source: str  # folder or stream; says "SYNTHETIC" when any input is synthetic
    settings: dict[str, Any]

    def __post_init__(self) -> None:
        if isinstance(self.symbols, str):  # one symbol passed where the list goes: say so
            raise TypeError("RunInfo.symbols is a tuple of symbols, not one string")
        object.__setattr__(self, "symbols", tuple(self.symbols))


@dataclass(frozen=True, slots=True)
class OrderEvent:
    ts_ms: int
    intent: OrderIntent
    status: str  # submitted, open, canceled, rejected, filled
    detail: str = ""
    # what of the order the venue's answer says has executed (a live broker's; None: not
    # told): an entry's position exists before its fills are read, and is protected at once
    filled_qty: float | None = None


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
        return zip(*self.columns(), strict=True)

    def columns(self) -> tuple[list, ...]:
        """ts_open_ms, open, high, low, close and volume as lists of plain Python numbers."""
        return tuple(_plain(column) for column in (self.ts_open_ms, self.open, self.high,
                                                   self.low, self.close, self.volume))

    def candles(self, symbol: str = "") -> list[Candle]:
        """The block as Candle objects, tagged with `symbol`."""
        ts, o, h, lo, c, v = (_plain(column) for column in (
            self.ts_open_ms, self.open, self.high, self.low, self.close, self.volume))
        return list(map(Candle, ts, repeat(self.interval_ms), o, h, lo, c, v, repeat(symbol)))


def _plain(column: Sequence) -> list:
    return column.tolist() if hasattr(column, "tolist") else list(column)


def record_signal_candles(recorder: Recorder, symbol: str, block: CandleBlock) -> None:
    """One bulk call where the recorder has it (MemoryRecorder, SqlRecorder), else one by one."""
    if not len(block):
        return
    bulk = getattr(recorder, "signal_candles", None)
    if bulk is not None:
        bulk(symbol, block)
    else:
        for candle in block.candles(symbol):
            recorder.signal_candle(symbol, candle)


def tagged(candle_or_sample: _Tagged, symbol: str) -> _Tagged:
    """The candle or OI sample with its `symbol` field set (the recorder's argument wins)."""
    if candle_or_sample.symbol == symbol:
        return candle_or_sample
    return replace(candle_or_sample, symbol=symbol)


class Recorder(Protocol):
    def start_run(self, info: RunInfo) -> str: ...
    def signal(self, signal: Signal, gate: GateDecision | None) -> None: ...
    def gate_decision(self, decision: GateDecision, trigger: str) -> None: ...
    def order(self, event: OrderEvent) -> None: ...
    def fill(self, fill: Fill) -> None: ...
    def trade(self, trade: Trade, gate: GateDecision | None) -> None: ...
    def equity(self, ts_ms: int, equity_usdt: float) -> None: ...
    def signal_candle(self, symbol: str, candle: Candle) -> None:
        """Each closed signal-timeframe candle the strategy saw (the report draws them)."""
        ...
    def signal_candles(self, symbol: str, block: CandleBlock) -> None:
        """Many signal candles of one symbol at once, in time order (backtests); the same rows
        as one by one."""
        ...
    def open_interest(self, symbol: str, sample: OpenInterest) -> None: ...
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
    candles: list[Candle] = field(default_factory=list)  # each tagged with its symbol
    oi_samples: list[OpenInterest] = field(default_factory=list)  # each tagged too
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

    def signal_candle(self, symbol: str, candle: Candle) -> None:
        pending = self.__dict__.get("_candle_blocks")
        (pending if pending else self._candles).append(tagged(candle, symbol))

    def signal_candles(self, symbol: str, block: CandleBlock) -> None:
        # Kept as columns until someone reads `candles`: a backtest need not pay for objects.
        self.__dict__.setdefault("_candle_blocks", []).append((symbol, block))

    def open_interest(self, symbol: str, sample: OpenInterest) -> None:
        self.oi_samples.append(tagged(sample, symbol))

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.summary = summary


def _candles_get(self: MemoryRecorder) -> list[Candle]:
    pending = self.__dict__.get("_candle_blocks")  # blocks and single candles, in order
    if pending:
        for item in pending:
            if isinstance(item, Candle):
                self._candles.append(item)
            else:
                symbol, block = item
                self._candles.extend(block.candles(symbol))
        pending.clear()
    return self._candles


def _candles_set(self: MemoryRecorder, value: list[Candle]) -> None:
    self.__dict__["_candle_blocks"] = []
    self._candles = value


# `candles` stays a constructor field and a list to its readers; bulk blocks join it on read.
MemoryRecorder.candles = property(_candles_get, _candles_set)  # type: ignore[assignment]
