"""Live: what an event caused is recorded once the orders it caused are out.

The engine reports a signal, its gate decision, an order's states and fills as it decides
them, on the way to the order they lead to. Building their rows and log lines there (the gate
decision's inputs and the signal's metrics turned into JSON, each row's dedup key) delayed
every order by what its recording costs. `DeferredRecorder` keeps each call with the time it
was made and makes them, in order, at `play()`: the live session plays them once what an event
caused is sent (and before any wait inside it), then writes the event's log lines and commits
its rows, as before. Nothing waits longer to be durable: a live run's rows are committed only
then anyway. The event log stamps each line with the time its call was made (`CallTime`).

Signal candles in blocks (a backtest's) go through at once, after what is pending: a block's
columns may be views the engine goes on writing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptobot.engine.recorder import (
    CandleBlock,
    OrderEvent,
    Recorder,
    RunInfo,
    record_signal_candles,
)
from cryptobot.model import Candle, Fill, GateDecision, OpenInterest, Signal, Trade


class CallTime:
    """The clock's time; while deferred calls are made, the time each was made at."""

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now_ms = now_ms
        self.held_ms: int | None = None

    def now_ms(self) -> int:
        return self._now_ms() if self.held_ms is None else self.held_ms


class DeferredRecorder:
    """Implements `Recorder`: each event's call is kept and made at `play()`; starting,
    flushing and finishing the run play what is pending first."""

    def __init__(self, inner: Recorder, call_time: CallTime) -> None:
        self.inner = inner
        self.call_time = call_time
        self._pending: list[tuple[Callable[..., None], tuple[Any, ...], int]] = []

    def __getattr__(self, name: str) -> Any:  # run_id, close ... of the store
        return getattr(self.inner, name)

    def play(self) -> None:
        """Make the kept calls, in the order they came, each at the time it was made. A call
        that raises leaves the ones after it kept."""
        pending, self._pending = self._pending, []
        try:
            for index, (method, args, made_ms) in enumerate(pending):
                self.call_time.held_ms = made_ms
                try:
                    method(*args)
                except BaseException:
                    self._pending[:0] = pending[index + 1:]
                    raise
        finally:
            self.call_time.held_ms = None

    def _keep(self, method: Callable[..., None], *args: Any) -> None:
        self._pending.append((method, args, self.call_time.now_ms()))

    # -- Recorder ---------------------------------------------------------------------------

    def start_run(self, info: RunInfo) -> str:
        self.play()
        return self.inner.start_run(info)

    def signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self._keep(self.inner.signal, signal, gate)

    def gate_decision(self, decision: GateDecision, trigger: str) -> None:
        self._keep(self.inner.gate_decision, decision, trigger)

    def order(self, event: OrderEvent) -> None:
        self._keep(self.inner.order, event)

    def fill(self, fill: Fill) -> None:
        self._keep(self.inner.fill, fill)

    def trade(self, trade: Trade, gate: GateDecision | None) -> None:
        self._keep(self.inner.trade, trade, gate)

    def equity(self, ts_ms: int, equity_usdt: float) -> None:
        self._keep(self.inner.equity, ts_ms, equity_usdt)

    def signal_candle(self, symbol: str, candle: Candle) -> None:
        self._keep(self.inner.signal_candle, symbol, candle)

    def signal_candles(self, symbol: str, block: CandleBlock) -> None:
        self.play()
        record_signal_candles(self.inner, symbol, block)

    def open_interest(self, symbol: str, sample: OpenInterest) -> None:
        self._keep(self.inner.open_interest, symbol, sample)

    def flush(self) -> None:
        self.play()
        flush = getattr(self.inner, "flush", None)
        if flush is not None:
            flush()

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.play()
        self.inner.finish_run(summary)
