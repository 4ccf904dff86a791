"""`SqlRecorder`: the engine's Recorder on a SQLAlchemy database.

Rows are buffered and bulk-inserted; signal candles (~41,000 in a 14-month backtest) are kept
as the engine's column blocks and written as a few column rows (store/candle_chunks.py).
`flush()` writes the buffer (paper and live call it once what each event caused is handled:
cli/paper_console.py), `finish_run` flushes and closes the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.exc import SQLAlchemyError

from cryptobot.clock import Clock
from cryptobot.engine.recorder import CandleBlock, OrderEvent, RunInfo
from cryptobot.errors import StoreError
from cryptobot.model import Candle, Fill, GateDecision, OpenInterest, Signal, Trade
from cryptobot.store.bulk import bulk_insert, insert_tuples
from cryptobot.store.candle_chunks import CHUNK_KEYS, PendingChunks
from cryptobot.store.database import masked_url, open_for_writing
from cryptobot.store.tables import (
    Base,
    EquityPointRow,
    FillRow,
    GateDecisionRow,
    OpenInterestRow,
    OrderRow,
    RunRow,
    SignalCandleChunkRow,
    SignalRow,
    TradeLegRow,
    TradeRow,
)

# Each buffered table's columns, in the order its rows are kept (plain tuples, made once per
# event; written column by column). Insert order respects the links inside a run (signals and
# trades name gate decisions).
_COLUMNS: dict[type[Base], tuple[str, ...]] = {
    GateDecisionRow: ("run_id", "seq", "ts_ms", "action", "size_factor", "reasons_json",
                      "inputs_json", "trigger"),
    SignalRow: ("run_id", "seq", "signal_id", "symbol", "spike_ms", "decided_ms", "status",
                "reason", "metrics_json", "setup_events_json", "gate_seq", "evidence_json"),
    OrderRow: ("run_id", "seq", "ts_ms", "client_id", "symbol", "side", "order_type", "purpose",
               "qty_base", "price", "reduce_only", "status", "detail"),
    FillRow: ("run_id", "seq", "ts_ms", "client_id", "symbol", "side", "purpose", "price",
              "qty_base", "fee_usdt", "is_maker"),
    TradeRow: ("run_id", "seq", "signal_id", "symbol", "side", "entry_ms", "exit_ms",
               "entry_price", "qty_base", "initial_stop", "entry_fee_usdt", "funding_usdt",
               "pnl_usdt", "r_multiple", "exit_reason", "gate_seq"),
    TradeLegRow: ("run_id", "trade_seq", "leg_index", "ts_ms", "price", "qty_base", "fee_usdt",
                  "reason"),
    EquityPointRow: ("run_id", "seq", "ts_ms", "equity_usdt"),
    OpenInterestRow: ("run_id", "seq", "symbol", "ts_ms", "oi_contracts", "oi_value_usdt"),
}


def json_safe(value: Any) -> Any:
    """Plain JSON every database accepts: non-finite floats become None, odd types text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return json.loads(json.dumps(value, default=str))


def without_passwords(value: Any) -> Any:
    """JSON with every URL's password masked (the settings name the store and state URLs)."""
    if isinstance(value, str):
        return masked_url(value) if "://" in value and "@" in value else value
    if isinstance(value, dict):
        return {key: without_passwords(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_passwords(item) for item in value]
    return value


# The gate-decision key's JSON parts, sorted as the stored JSON would be
_KEY_ENCODER = json.JSONEncoder(sort_keys=True)


def _gate_key(decision: GateDecision) -> tuple[Any, ...]:
    """Equal for decisions whose stored rows would be equal: each part as its JSON would compare
    (the size factor and inputs as JSON text; most decisions have no inputs)."""
    inputs, size_factor = decision.inputs, decision.size_factor
    return (decision.ts_ms, str(decision.action),
            repr(size_factor) if type(size_factor) is float and math.isfinite(size_factor)
            else _KEY_ENCODER.encode(size_factor),  # a finite float's JSON is its repr
            tuple(decision.reasons), _KEY_ENCODER.encode(json_safe(dict(inputs))) if inputs
            else "{}")


class SqlRecorder:
    """Implements `cryptobot.engine.recorder.Recorder`; one instance records one run at a time."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock,
        flush_every: int | None = 5000,
    ) -> None:
        self.url = url
        self._engine: Engine = open_for_writing(url)
        self._clock = clock  # stamps when the run was recorded (the wall clock), not market time
        self._flush_every = flush_every
        self._run_id: int | None = None
        self._buffer: dict[type[Base], list[tuple[Any, ...]]] = {t: [] for t in _COLUMNS}
        # Signal candles as columns, packed into chunk rows when written (after the other tables)
        self._candles = PendingChunks()
        self._buffered = 0
        self._seq: dict[type[Base], int] = {}
        self._gate_seq_by_key: dict[tuple[Any, ...], int] = {}
        # the last decision asked about and its seq (an entry's gate comes with its decision,
        # its signal and its trade: one key made, not three)
        self._last_gate: tuple[GateDecision, int] | None = None

    @property
    def run_id(self) -> str:
        if self._run_id is None:
            raise StoreError("SqlRecorder: no run started (call start_run first)")
        return str(self._run_id)

    # -- Recorder protocol ------------------------------------------------------------------

    def start_run(self, info: RunInfo) -> str:
        self._reset()
        row = {
            "mode": info.mode,
            "exchange": info.exchange,
            "symbols_json": list(info.symbols),
            "start_ms": info.start_ms,
            "end_ms": info.end_ms,
            "data_source": info.data_source,
            "oi_synthetic": "SYNTHETIC" in info.data_source.upper(),
            "settings_json": without_passwords(json_safe(info.settings)),
            "created_ms": self._clock.now_ms(),
            "finished_ms": None,
            "summary_json": None,
        }
        with self._writing() as connection:
            result = connection.execute(insert(RunRow).values(**row))
            self._run_id = int(result.inserted_primary_key[0])
        return str(self._run_id)

    def resume_run(self, run_id: int, row_counts: dict[type[Base], int],
                   gate_decisions: list[GateDecision]) -> str:
        """Go on writing a stored run (a resumed paper run): it is not finished any more, new
        rows are numbered after the stored ones (`row_counts`, per table), and the gate
        decisions it stored are known (signals refer to them)."""
        self._reset()
        self._run_id = run_id
        self._seq.update(row_counts)
        for seq, decision in enumerate(gate_decisions, start=1):
            self._gate_seq_by_key.setdefault(_gate_key(decision), seq)
        with self._writing() as connection:
            connection.execute(update(RunRow).where(RunRow.id == run_id)
                               .values(finished_ms=None, summary_json=None))
        return str(run_id)

    def gate_decision(self, decision: GateDecision, trigger: str) -> None:
        self._gate_seq(decision, trigger)
        self._after_event()

    def signal(self, signal: Signal, gate: GateDecision | None) -> None:
        gate_seq = self._gate_seq(gate, "signal") if gate is not None else None
        self._add(SignalRow, (
            signal.signal_id, signal.symbol, signal.spike_ms, signal.decided_ms,
            str(signal.status), signal.reason, json_safe(dict(signal.metrics)),
            [[e.ts_ms, e.kind, json_safe(e.price)] for e in signal.setup_events], gate_seq,
            [item.as_dict() for item in signal.evidence]))
        self._after_event()

    def order(self, event: OrderEvent) -> None:
        intent = event.intent
        self._add(OrderRow, (
            event.ts_ms, intent.client_id, intent.symbol, str(intent.side),
            str(intent.order_type), str(intent.purpose), intent.qty_base, intent.price,
            intent.reduce_only, event.status, event.detail))
        self._after_event()

    def fill(self, fill: Fill) -> None:
        self._add(FillRow, (
            fill.ts_ms, fill.client_id, fill.symbol, str(fill.side), str(fill.purpose),
            fill.price, fill.qty_base, fill.fee_usdt, fill.is_maker))
        self._after_event()

    def trade(self, trade: Trade, gate: GateDecision | None) -> None:
        gate_seq = self._gate_seq(gate, "signal") if gate is not None else None
        trade_seq = self._add(TradeRow, (
            trade.signal_id, trade.symbol, str(trade.side), trade.entry_ms, trade.exit_ms,
            trade.entry_price, trade.qty_base, trade.initial_stop, trade.entry_fee_usdt,
            trade.funding_usdt, trade.pnl_usdt, trade.r_multiple, trade.exit_reason, gate_seq))
        for index, leg in enumerate(trade.legs):
            self._buffer[TradeLegRow].append((self._run_id, trade_seq, index, leg.ts_ms,
                                              leg.price, leg.qty_base, leg.fee_usdt, leg.reason))
            self._buffered += 1
        self._after_event()

    def equity(self, ts_ms: int, equity_usdt: float) -> None:
        self._add(EquityPointRow, (ts_ms, equity_usdt))
        self._after_event()

    def signal_candle(self, symbol: str, candle: Candle) -> None:
        if self._run_id is None:
            raise StoreError("SqlRecorder: no run started (call start_run first)")
        self._candles.add_candle(symbol, candle)
        self._buffered += 1
        self._after_event()

    def signal_candles(self, symbol: str, block: CandleBlock) -> None:
        """Signal candles, kept as the block's columns (tens of thousands in a backtest): no
        Candle, tuple or dict per candle; packed into chunk rows when written."""
        if self._run_id is None:
            raise StoreError("SqlRecorder: no run started (call start_run first)")
        self._candles.add(symbol, block)
        self._buffered += len(block)
        self._after_event()

    def open_interest(self, symbol: str, sample: OpenInterest) -> None:
        self._add(OpenInterestRow, (symbol, sample.ts_ms, sample.oi_contracts,
                                     sample.oi_value_usdt))
        self._after_event()

    def finish_run(self, summary: dict[str, Any]) -> None:
        with self._writing() as connection:  # the rows still buffered and the summary: at once
            self._write_buffer(connection)
            connection.execute(
                update(RunRow)
                .where(RunRow.id == self._run_id)
                .values(finished_ms=self._clock.now_ms(), summary_json=json_safe(summary))
            )

    # -- buffering ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write every buffered row in one transaction."""
        if not self._buffered:
            return
        with self._writing() as connection:
            self._write_buffer(connection)

    def _write_buffer(self, connection: Connection) -> None:
        for table, keys in _COLUMNS.items():
            rows = self._buffer[table]
            if rows:
                bulk_insert(connection, table.__table__, keys, rows)
        if len(self._candles):
            first = self._seq.get(SignalCandleChunkRow, 0) + 1
            insert_tuples(connection, SignalCandleChunkRow.__table__, CHUNK_KEYS,
                          self._candles.rows(self._run_id, first), copy=False)
            self._seq[SignalCandleChunkRow] = first + len(self._candles) - 1
        for rows in self._buffer.values():
            rows.clear()
        self._candles.clear()
        self._buffered = 0

    def close(self) -> None:
        self.flush()
        self._engine.dispose()

    def __enter__(self) -> SqlRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _reset(self) -> None:
        self.flush()
        self._seq.clear()
        self._gate_seq_by_key.clear()
        self._last_gate = None

    def _add(self, table: type[Base], values: tuple[Any, ...]) -> int:
        """Buffer a row: its run and number, then `values` (the table's `_COLUMNS` after those)."""
        if self._run_id is None:
            raise StoreError("SqlRecorder: no run started (call start_run first)")
        seq = self._seq.get(table, 0) + 1
        self._seq[table] = seq
        self._buffer[table].append((self._run_id, seq, *values))
        self._buffered += 1
        return seq

    def _gate_seq(self, decision: GateDecision, trigger: str) -> int:
        # The decision at entry is usually the one already stored with the signal: store it once.
        last = self._last_gate
        if last is not None and last[0] is decision:  # the very object: its key is known
            return last[1]
        key = _gate_key(decision)
        seq = self._gate_seq_by_key.get(key)
        if seq is None:
            seq = self._add(GateDecisionRow, (
                decision.ts_ms, str(decision.action), decision.size_factor,
                list(decision.reasons), json_safe(dict(decision.inputs)), trigger))
            self._gate_seq_by_key[key] = seq
        self._last_gate = (decision, seq)
        return seq

    def _after_event(self) -> None:
        if self._flush_every is not None and self._buffered >= self._flush_every:
            self.flush()

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A transaction whose database errors become one-line StoreErrors."""
        try:
            with self._engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            first = str(exc).strip().splitlines()[0]
            raise StoreError(f"{masked_url(self.url)}: write failed: {first}") from None
