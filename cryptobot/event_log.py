"""A Recorder that writes every decision and action to the JSON-lines log, then passes it on.

Wrapping the run's recorder once, where the parts are wired, puts signals, gate decisions,
orders, fills and trades in logs/ for every mode alike. Candles, OI samples and equity points
go only to the store: they would drown the log.

It also follows the run's time from what it is handed (`now_ms`), for a run whose clock the
caller never sees (the backtest's): each event line then carries the time the event happened.
"""

from __future__ import annotations

import logging
from typing import Any

from cryptobot.clock import iso_utc
from cryptobot.model import Candle, Fill, GateDecision, OpenInterest, Signal, Trade
from cryptobot.recorder import CandleBlock, OrderEvent, Recorder, RunInfo, record_signal_candles
from cryptobot.report.serialize import gate_to_dict, signal_to_dict, trade_to_dict

log = logging.getLogger("cryptobot.events")


class EventLogRecorder:
    def __init__(self, inner: Recorder, logger: logging.Logger = log,
                 start_ms: int = 0) -> None:
        self.inner = inner
        self._log = logger
        self._now_ms = start_ms
        self._run_id: str | None = None

    def __getattr__(self, name: str) -> Any:
        # Anything the log has no use for (flush, close, run_id...) goes straight on.
        return getattr(self.inner, name)

    def now_ms(self) -> int:
        """The latest time an event was stamped with (a Clock for the log's `clock_ms`)."""
        return self._now_ms

    def _at(self, ts_ms: int | None) -> None:
        if ts_ms is not None and ts_ms > self._now_ms:
            self._now_ms = ts_ms

    def _event(self, event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
        self._log.log(level, message, extra={"event": event, "run_id": self._run_id, **fields})

    def start_run(self, info: RunInfo) -> str:
        run_id = self.inner.start_run(info)
        self._run_id = str(run_id)
        self._at(info.start_ms)
        self._event("run_start", f"{info.mode} run {run_id} on {info.exchange} {info.symbol}",
                    mode=info.mode, symbol=info.symbol, data_source=info.data_source)
        return run_id

    def signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self.inner.signal(signal, gate)
        self._at(signal.decided_ms)
        self._event("signal", f"signal {iso_utc(signal.spike_ms)} {signal.status}: {signal.reason}",
                    signal=signal_to_dict(signal), gate=gate_to_dict(gate))

    def gate_decision(self, decision: GateDecision, trigger: str) -> None:
        self.inner.gate_decision(decision, trigger)
        self._at(decision.ts_ms)
        self._event("gate", f"gate {decision.action} x{decision.size_factor:g} ({trigger}): "
                    f"{decision.reasons[0] if decision.reasons else ''}",
                    trigger=trigger, gate=gate_to_dict(decision))

    def order(self, event: OrderEvent) -> None:
        self.inner.order(event)
        self._at(event.ts_ms)
        intent = event.intent
        level = logging.WARNING if event.status == "rejected" else logging.INFO
        self._event("order", f"order {intent.client_id} {intent.purpose} {intent.side} "
                    f"{intent.order_type} {intent.qty_base:g} @ {intent.price} {event.status}"
                    + (f": {event.detail}" if event.detail else ""), level,
                    time=iso_utc(event.ts_ms), client_id=intent.client_id,
                    purpose=str(intent.purpose), status=event.status, detail=event.detail)

    def fill(self, fill: Fill) -> None:
        self.inner.fill(fill)
        self._at(fill.ts_ms)
        self._event("fill", f"fill {fill.client_id} {fill.side} {fill.qty_base:g} @ "
                    f"{fill.price:.2f} fee {fill.fee_usdt:.4f}", time=iso_utc(fill.ts_ms),
                    client_id=fill.client_id, price=fill.price, qty=fill.qty_base,
                    fee_usdt=fill.fee_usdt, purpose=str(fill.purpose))

    def trade(self, trade: Trade, gate: GateDecision | None) -> None:
        self.inner.trade(trade, gate)
        self._at(trade.exit_ms)
        self._event("trade", f"trade {trade.signal_id} closed: PnL {trade.pnl_usdt:+.2f} USDT "
                    f"({trade.r_multiple:+.2f}R, {trade.exit_reason})", trade=trade_to_dict(trade))

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.inner.finish_run(summary)
        self._event("run_finish", "run finished", summary=summary)

    # Forwarded explicitly so the class satisfies the Recorder protocol on its own; they move
    # the time on but write no line.
    def equity(self, ts_ms: int, equity_usdt: float) -> None:
        self.inner.equity(ts_ms, equity_usdt)
        self._at(ts_ms)

    def signal_candle(self, candle: Candle) -> None:
        self.inner.signal_candle(candle)
        self._at(candle.ts_close_ms)

    def signal_candles(self, block: CandleBlock) -> None:
        record_signal_candles(self.inner, block)
        if len(block):
            self._at(int(block.ts_open_ms[-1]) + block.interval_ms)

    def open_interest(self, sample: OpenInterest) -> None:
        # No time from here: a backtest hands the whole run's samples over up front.
        self.inner.open_interest(sample)
