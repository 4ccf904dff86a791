"""A Recorder that writes every decision and action to the JSON-lines log, then passes it on.

Wrapping the run's recorder once, where the parts are wired, puts signals, gate decisions,
orders, fills and trades in logs/ for every mode alike. Candles, OI samples and equity points
go only to the store: they would drown the log.
Line times come from the run's clock, given to `configure_logging` where the run is wired
(`ts_ms`: when the run learned of the event); a fill's own time is its `fill_time` (the paper
simulator's: its candle's open; live: the exchange's trade time).

A backtest holds its lines after `run_start` (`held_clock_ms`: the run's clock, which stamps
each line when its event happens) and writes them in one go when the run finishes, or when
`write_held_lines` is called on the way out of a failed run: the same lines in the same order,
without a log record, a filter pass and a flush per event. Live holds them the same way while
an event is handled, and writes them once its orders are out (cli/live_run.py); paper writes
each line as it happens.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from json.encoder import encode_basestring_ascii as _text
from typing import Any

from cryptobot.clock import iso_utc
from cryptobot.engine.recorder import (
    CandleBlock,
    OrderEvent,
    Recorder,
    RunInfo,
    record_signal_candles,
)
from cryptobot.logs import HeldLine, LineText, write_held_lines
from cryptobot.model import Candle, Fill, GateDecision, OpenInterest, Signal, Trade
from cryptobot.report.serialize import gate_to_dict, signal_to_dict, trade_to_dict

log = logging.getLogger("cryptobot.events")


class EventLogRecorder:
    def __init__(self, inner: Recorder, logger: logging.Logger = log, *,
                 held_clock_ms: Callable[[], int] | None = None) -> None:
        self.inner = inner
        self._log = logger
        self._run_id: str | None = None
        self._held_clock_ms = held_clock_ms
        self._held: list[HeldLine] = []
        # What writes no line goes straight to the recorder it wraps, without a call of ours
        # (the methods below say so for the protocol): a backtest's ~1,500 equity points and
        # signal candles
        self.equity, self.signal_candle = inner.equity, inner.signal_candle
        self.open_interest = inner.open_interest

    def __getattr__(self, name: str) -> Any:
        # Anything the log has no use for (flush, close, run_id...) goes straight on.
        return getattr(self.inner, name)

    def _event(self, event: str, message: str, level: int = logging.INFO, *, now: bool = False,
               text: LineText | None = None, **fields: Any) -> None:
        fields["event"], fields["run_id"] = event, self._run_id  # the line sorts its keys
        if self._held_clock_ms is None or now:
            self._log.log(level, message, extra=fields)
        else:
            self._held.append(HeldLine(self._held_clock_ms(), level, message, fields, text))

    def write_held_lines(self) -> None:
        """Write the lines held so far (none unless `held_clock_ms` was given)."""
        held, self._held = self._held, []
        write_held_lines(self._log, held)

    def start_run(self, info: RunInfo) -> str:
        run_id = self.inner.start_run(info)
        self._run_id = str(run_id)
        # Written at once, held or not: `logs tail` finds a run by this line, and whatever
        # else the process logs during the run then follows it in the file.
        self._event("run_start", f"{info.mode} run {run_id} on {info.exchange} "
                    f"{', '.join(info.symbols)}", mode=info.mode, symbols=list(info.symbols),
                    data_source=info.data_source, now=True)
        return run_id

    def signal(self, signal: Signal, gate: GateDecision | None) -> None:
        self.inner.signal(signal, gate)
        self._event("signal", f"signal {iso_utc(signal.spike_ms)} {signal.status}: {signal.reason}",
                    signal=signal_to_dict(signal), gate=gate_to_dict(gate))

    def gate_decision(self, decision: GateDecision, trigger: str) -> None:
        self.inner.gate_decision(decision, trigger)
        self._event("gate", f"gate {decision.action} x{decision.size_factor:g} ({trigger}): "
                    f"{decision.reasons[0] if decision.reasons else ''}",
                    text=_gate_line, trigger=trigger, gate=gate_to_dict(decision))

    def order(self, event: OrderEvent) -> None:
        self.inner.order(event)
        intent = event.intent
        level = logging.WARNING if event.status == "rejected" else logging.INFO
        self._event("order", f"order {intent.client_id} {intent.purpose} {intent.side} "
                    f"{intent.order_type} {intent.qty_base:g} @ {intent.price} {event.status}"
                    + (f": {event.detail}" if event.detail else ""), level, text=_order_line,
                    time=iso_utc(event.ts_ms), symbol=intent.symbol, client_id=intent.client_id,
                    purpose=str(intent.purpose), status=event.status, detail=event.detail)

    def fill(self, fill: Fill) -> None:
        self.inner.fill(fill)
        self._event("fill", f"fill {fill.client_id} {fill.side} {fill.qty_base:g} @ "
                    f"{fill.price:.2f} fee {fill.fee_usdt:.4f}", text=_fill_line,
                    fill_time=iso_utc(fill.ts_ms),
                    symbol=fill.symbol, client_id=fill.client_id, price=fill.price,
                    qty=fill.qty_base, fee_usdt=fill.fee_usdt, purpose=str(fill.purpose))

    def trade(self, trade: Trade, gate: GateDecision | None) -> None:
        self.inner.trade(trade, gate)
        self._event("trade", f"trade {trade.signal_id} closed: PnL {trade.pnl_usdt:+.2f} USDT "
                    f"({trade.r_multiple:+.2f}R, {trade.exit_reason})", trade=trade_to_dict(trade))

    def finish_run(self, summary: dict[str, Any]) -> None:
        self.inner.finish_run(summary)
        self._event("run_finish", "run finished", summary=summary)
        self.write_held_lines()

    # Forwarded explicitly so the class satisfies the Recorder protocol on its own (an
    # instance takes the wrapped recorder's own methods); no line.
    def equity(self, ts_ms: int, equity_usdt: float) -> None:
        self.inner.equity(ts_ms, equity_usdt)

    def signal_candle(self, symbol: str, candle: Candle) -> None:
        self.inner.signal_candle(symbol, candle)

    def signal_candles(self, symbol: str, block: CandleBlock) -> None:
        record_signal_candles(self.inner, symbol, block)

    def open_interest(self, symbol: str, sample: OpenInterest) -> None:
        self.inner.open_interest(symbol, sample)


# The JSON text of the three lines a backtest writes most of (order, gate, fill: ~1,500 of its
# ~1,670), written straight from their parts: the bytes the encoder gives the whole line with
# its keys sorted (logs.HeldLine.text), without its sorting and writing each key.
def _fixed_shape(field_count: int) -> Callable[[LineText], LineText]:
    """A line's own text where its fields are the `field_count` the event gives and each value
    is of the type it gives (else TypeError, KeyError: None, the line is left to the
    encoder)."""
    def shape(write: LineText) -> LineText:
        def text(ts_ms: int, level: str, message: str, fields: dict[str, Any], logger: str,
                 tail: str) -> str | None:
            if len(fields) != field_count:
                return None
            try:
                return write(ts_ms, level, message, fields, logger, tail)
            except (TypeError, KeyError):
                return None
        return text
    return shape


@_fixed_shape(8)
def _order_line(ts_ms: int, level: str, message: str, f: dict[str, Any], logger: str,
                tail: str) -> str | None:
    return (f'{{"client_id": {_text(f["client_id"])}, "detail": {_text(f["detail"])}, '
            f'"event": "order", "level": {_text(level)}, "logger": {logger}, '
            f'"message": {_text(message)}, "purpose": {_text(f["purpose"])}, '
            f'"run_id": {_text(f["run_id"])}, "status": {_text(f["status"])}, '
            f'"symbol": {_text(f["symbol"])}, "time": {_text(f["time"])}, '
            f'"ts_ms": {_number(ts_ms)}{tail}')


@_fixed_shape(9)
def _fill_line(ts_ms: int, level: str, message: str, f: dict[str, Any], logger: str,
               tail: str) -> str | None:
    return (f'{{"client_id": {_text(f["client_id"])}, "event": "fill", '
            f'"fee_usdt": {_number(f["fee_usdt"])}, "fill_time": {_text(f["fill_time"])}, '
            f'"level": {_text(level)}, "logger": {logger}, "message": {_text(message)}, '
            f'"price": {_number(f["price"])}, "purpose": {_text(f["purpose"])}, '
            f'"qty": {_number(f["qty"])}, "run_id": {_text(f["run_id"])}, '
            f'"symbol": {_text(f["symbol"])}, "ts_ms": {_number(ts_ms)}{tail}')


@_fixed_shape(4)
def _gate_line(ts_ms: int, level: str, message: str, f: dict[str, Any], logger: str,
               tail: str) -> str | None:
    gate = f["gate"]
    if type(gate) is not dict or len(gate) != 4 or type(gate["reasons"]) is not list:
        return None
    return (f'{{"event": "gate", "gate": {{"action": {_text(gate["action"])}, '
            f'"reasons": [{", ".join(map(_text, gate["reasons"]))}], '
            f'"size_factor": {_number(gate["size_factor"])}, "time": {_text(gate["time"])}}}, '
            f'"level": {_text(level)}, "logger": {logger}, "message": {_text(message)}, '
            f'"run_id": {_text(f["run_id"])}, "trigger": {_text(f["trigger"])}, '
            f'"ts_ms": {_number(ts_ms)}{tail}')


def _number(value: Any) -> str:
    """An int's or a finite float's JSON text (their repr); TypeError for anything else."""
    kind = type(value)
    if kind is float and math.isfinite(value) or kind is int:
        return repr(value)
    raise TypeError(f"not a plain number: {value!r}")
