"""The read side: stored runs back as model objects and plain data.

Every failure is a StoreError naming the database, the run and, for a corrupted row, its
table and seq. Nothing here creates a database (see `database.open_for_reading`).
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cryptobot.engine.recorder import MemoryRecorder, OrderEvent, RunInfo
from cryptobot.errors import StoreError
from cryptobot.model import (
    Candle,
    Fill,
    GateAction,
    GateDecision,
    OpenInterest,
    OrderIntent,
    OrderPurpose,
    OrderType,
    SetupEvent,
    Side,
    Signal,
    SignalStatus,
    Trade,
    TradeLeg,
)
from cryptobot.store.database import masked_url, open_for_reading
from cryptobot.store.tables import (
    EquityPointRow,
    FillRow,
    GateDecisionRow,
    OpenInterestRow,
    OrderRow,
    RunRow,
    SignalCandleRow,
    SignalRow,
    TradeLegRow,
    TradeRow,
)

T = TypeVar("T")
_CORRUPTION = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, AttributeError)


@dataclass(frozen=True, slots=True)
class RunListing:
    """One line of `cryptobot runs`."""

    run_id: str
    mode: str
    exchange: str
    symbol: str
    start_ms: int | None
    end_ms: int | None
    data_source: str
    oi_synthetic: bool
    created_ms: int
    finished_ms: int | None
    trade_count: int
    pnl_usdt: float


def _num(value: Decimal | float | None) -> float:
    if value is None:
        raise ValueError("missing number")
    return float(value)


class StoreReader:
    def __init__(self, url: str) -> None:
        self.url = url
        self.name = masked_url(url)
        self._engine = open_for_reading(url)

    def close(self) -> None:
        self._engine.dispose()

    # -- runs ---------------------------------------------------------------------------------

    def runs(self) -> list[RunListing]:
        """Every stored run, oldest first, with its trade count and PnL from the stored trades."""
        pnl_by_run: dict[int, tuple[int, Decimal]] = {}
        for run_id, pnl in self._fetch("trades", None, select(TradeRow.run_id, TradeRow.pnl_usdt)):
            count, total = pnl_by_run.get(run_id, (0, Decimal(0)))
            pnl_by_run[run_id] = (count + 1, total + (pnl or Decimal(0)))
        listings = []
        for row in self._fetch("runs", None, select(RunRow).order_by(RunRow.id)):
            run = row[0]
            count, total = pnl_by_run.get(run.id, (0, Decimal(0)))
            listings.append(
                RunListing(
                    str(run.id),
                    run.mode,
                    run.exchange,
                    run.symbol,
                    run.start_ms,
                    run.end_ms,
                    run.data_source,
                    bool(run.oi_synthetic),
                    run.created_ms,
                    run.finished_ms,
                    count,
                    float(total),
                )
            )
        return listings

    def resolve_run(self, run_id: str | int | None) -> int:
        """The run's numeric id; None means the latest run."""
        if run_id is None:
            latest = self._fetch("runs", None, select(func.max(RunRow.id)))[0][0]
            if latest is None:
                raise StoreError(f"{self.name}: empty database: no runs stored yet")
            return int(latest)
        try:
            wanted = int(str(run_id).strip())
        except ValueError:
            raise StoreError(f"{self.name}: unknown run id {run_id!r} (ids are numbers)") from None
        if not self._fetch("runs", None, select(RunRow.id).where(RunRow.id == wanted)):
            raise StoreError(
                f"{self.name}: unknown run id {wanted} (`cryptobot runs` lists the stored runs)"
            )
        return wanted

    def run_info(self, run_id: int) -> RunInfo:
        run = self._run_row(run_id)
        return self._convert(
            "runs",
            run_id,
            run.id,
            lambda: RunInfo(
                mode=run.mode,
                exchange=run.exchange,
                symbol=run.symbol,
                start_ms=run.start_ms,
                end_ms=run.end_ms,
                data_source=run.data_source,
                settings=dict(run.settings_json),
            ),
        )

    def summary(self, run_id: int) -> dict[str, Any] | None:
        summary = self._run_row(run_id).summary_json
        if summary is not None and not isinstance(summary, dict):
            raise StoreError(
                f"{self.name}: run {run_id}: corrupted row in runs: summary is not a JSON object"
            )
        return summary

    def oi_synthetic(self, run_id: int) -> bool:
        return bool(self._run_row(run_id).oi_synthetic)

    # -- a run's events -----------------------------------------------------------------------

    def gate_decisions(self, run_id: int) -> list[tuple[GateDecision, str]]:
        return [(decision, trigger) for _, (decision, trigger) in self._gates(run_id).items()]

    def signals(self, run_id: int) -> list[tuple[Signal, GateDecision | None]]:
        gates = self._gates(run_id)

        def convert(row: SignalRow) -> tuple[Signal, GateDecision | None]:
            signal = Signal(
                signal_id=row.signal_id,
                symbol=row.symbol,
                spike_ms=int(row.spike_ms),
                decided_ms=int(row.decided_ms),
                status=SignalStatus(row.status),
                reason=row.reason,
                metrics=dict(row.metrics_json),
                setup_events=tuple(
                    SetupEvent(int(ts), str(kind), float(price))
                    for ts, kind, price in row.setup_events_json
                ),
            )
            return signal, self._gate_of(gates, row.gate_seq)

        return self._rows("signals", run_id, SignalRow, convert)

    def trades(self, run_id: int) -> list[tuple[Trade, GateDecision | None]]:
        gates = self._gates(run_id)
        legs: dict[int, list[TradeLeg]] = {}

        def convert_leg(row: TradeLegRow) -> None:
            legs.setdefault(row.trade_seq, []).append(
                TradeLeg(
                    ts_ms=int(row.ts_ms),
                    price=_num(row.price),
                    qty_base=_num(row.qty_base),
                    fee_usdt=_num(row.fee_usdt),
                    reason=row.reason,
                )
            )

        stmt = (
            select(TradeLegRow.__table__)
            .where(TradeLegRow.run_id == run_id)
            .order_by(TradeLegRow.trade_seq, TradeLegRow.leg_index)
        )
        for row in self._fetch("trade_legs", run_id, stmt):
            self._convert("trade_legs", run_id, row.trade_seq, lambda row=row: convert_leg(row))

        def convert(row: TradeRow) -> tuple[Trade, GateDecision | None]:
            if row.seq not in legs:
                raise ValueError("trade has no exit legs")
            trade = Trade(
                signal_id=row.signal_id,
                symbol=row.symbol,
                side=Side(row.side),
                entry_ms=int(row.entry_ms),
                entry_price=_num(row.entry_price),
                qty_base=_num(row.qty_base),
                initial_stop=_num(row.initial_stop),
                legs=tuple(legs[row.seq]),
                entry_fee_usdt=_num(row.entry_fee_usdt),
                funding_usdt=_num(row.funding_usdt),
            )
            return trade, self._gate_of(gates, row.gate_seq)

        return self._rows("trades", run_id, TradeRow, convert)

    def orders(self, run_id: int) -> list[OrderEvent]:
        def convert(row: OrderRow) -> OrderEvent:
            intent = OrderIntent(
                client_id=row.client_id,
                symbol=row.symbol,
                side=Side(row.side),
                order_type=OrderType(row.order_type),
                qty_base=_num(row.qty_base),
                purpose=OrderPurpose(row.purpose),
                price=None if row.price is None else float(row.price),
                reduce_only=bool(row.reduce_only),
            )
            return OrderEvent(int(row.ts_ms), intent, row.status, row.detail)

        return self._rows("orders", run_id, OrderRow, convert)

    def fills(self, run_id: int) -> list[Fill]:
        return self._rows(
            "fills",
            run_id,
            FillRow,
            lambda row: Fill(
                client_id=row.client_id,
                symbol=row.symbol,
                ts_ms=int(row.ts_ms),
                side=Side(row.side),
                price=_num(row.price),
                qty_base=_num(row.qty_base),
                fee_usdt=_num(row.fee_usdt),
                is_maker=bool(row.is_maker),
                purpose=OrderPurpose(row.purpose),
            ),
        )

    def equity(self, run_id: int) -> list[tuple[int, float]]:
        return self._rows(
            "equity_points",
            run_id,
            EquityPointRow,
            lambda row: (int(row.ts_ms), _num(row.equity_usdt)),
        )

    def candles(self, run_id: int) -> list[Candle]:
        return self._rows(
            "signal_candles",
            run_id,
            SignalCandleRow,
            lambda row: Candle(
                int(row.ts_open_ms),
                int(row.interval_ms),
                float(row.open),
                float(row.high),
                float(row.low),
                float(row.close),
                float(row.volume),
            ),
        )

    def open_interest(self, run_id: int) -> list[OpenInterest]:
        return self._rows(
            "oi_samples",
            run_id,
            OpenInterestRow,
            lambda row: OpenInterest(
                int(row.ts_ms),
                float(row.oi_contracts),
                None if row.oi_value_usdt is None else float(row.oi_value_usdt),
            ),
        )

    def load_run(self, run_id: int) -> MemoryRecorder:
        """The whole run in the same shape a backtest's MemoryRecorder has in process."""
        return MemoryRecorder(
            run_id=str(run_id),
            info=self.run_info(run_id),
            signals=self.signals(run_id),
            gate_decisions=self.gate_decisions(run_id),
            orders=self.orders(run_id),
            fills=self.fills(run_id),
            trades=self.trades(run_id),
            equity_points=self.equity(run_id),
            candles=self.candles(run_id),
            oi_samples=self.open_interest(run_id),
            summary=self.summary(run_id),
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _run_row(self, run_id: int) -> RunRow:
        rows = self._fetch("runs", run_id, select(RunRow).where(RunRow.id == run_id))
        if not rows:
            raise StoreError(f"{self.name}: unknown run id {run_id}")
        return rows[0][0]

    def _gates(self, run_id: int) -> dict[int, tuple[GateDecision, str]]:
        rows = self._rows(
            "gate_decisions",
            run_id,
            GateDecisionRow,
            lambda row: (
                row.seq,
                (
                    GateDecision(
                        ts_ms=int(row.ts_ms),
                        action=GateAction(row.action),
                        size_factor=float(row.size_factor),
                        reasons=tuple(str(reason) for reason in row.reasons_json),
                        inputs=dict(row.inputs_json),
                    ),
                    row.trigger,
                ),
            ),
        )
        return dict(rows)

    @staticmethod
    def _gate_of(
        gates: dict[int, tuple[GateDecision, str]], seq: int | None
    ) -> GateDecision | None:
        if seq is None:
            return None
        return gates[seq][0]  # KeyError: a link to a missing decision is a corrupted row

    def _rows(self, table: str, run_id: int, model: Any, convert: Callable[[Any], T]) -> list[T]:
        # Plain column rows (attribute access like the models): far cheaper than ORM objects.
        stmt = select(model.__table__).where(model.run_id == run_id).order_by(model.seq)
        return [
            self._convert(table, run_id, row.seq, lambda row=row: convert(row))
            for row in self._fetch(table, run_id, stmt)
        ]

    def _convert(self, table: str, run_id: int, seq: int, make: Callable[[], T]) -> T:
        try:
            return make()
        except _CORRUPTION as exc:
            raise StoreError(
                f"{self.name}: run {run_id}: corrupted row in {table} (seq {seq}): "
                f"{_describe(exc)}"
            ) from None

    def _fetch(self, table: str, run_id: int | None, stmt: Select[Any]) -> list[Any]:
        """All rows of `stmt`; decoding failures (bad JSON, bad decimal text) name the table."""
        where = f"run {run_id}: " if run_id is not None else ""
        try:
            with Session(self._engine) as session:
                rows = list(session.execute(stmt))
                session.expunge_all()  # plain loaded objects, usable after the session
                return rows
        except (*_CORRUPTION, json.JSONDecodeError) as exc:
            raise StoreError(
                f"{self.name}: {where}corrupted row in {table}: {_describe(exc)}"
            ) from None
        except SQLAlchemyError as exc:
            first = str(exc).strip().splitlines()[0]
            raise StoreError(f"{self.name}: {where}cannot read {table}: {first}") from None


def open_store(url: str) -> StoreReader:
    """A reader on an existing store; StoreError when it is missing, empty or not ours."""
    return StoreReader(url)


def _describe(exc: BaseException) -> str:
    """What is wrong with a stored value, in words (a decimal error's repr says nothing)."""
    if isinstance(exc, decimal.InvalidOperation):
        return "a stored number is not a number"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
