"""The read side: stored runs back as model objects and plain data.

Every failure is a StoreError naming the database, the run and, for a corrupted row, its
table and seq. Nothing here creates a database (see `database.open_for_reading`).
A run's per-symbol rows (signals, orders, fills, trades, candles, OI) can be read for some of
its symbols only (`symbols=`); gate decisions and equity are the whole run's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cryptobot.engine.recorder import MemoryRecorder, OrderEvent, RunInfo
from cryptobot.errors import StoreError
from cryptobot.model import Candle, Fill, GateDecision, OpenInterest, Signal, Trade, TradeLeg
from cryptobot.store import decode
from cryptobot.store.candle_chunks import unpacked
from cryptobot.store.database import masked_url, open_for_reading
from cryptobot.store.decode import CORRUPTION, describe
from cryptobot.store.tables import (
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

T = TypeVar("T")
Symbols = Iterable[str] | None  # None: all of the run's symbols


@dataclass(frozen=True, slots=True)
class RunListing:
    """One line of `cryptobot runs`."""

    run_id: str
    mode: str
    exchange: str
    symbols: tuple[str, ...]
    start_ms: int | None
    end_ms: int | None
    data_source: str
    oi_synthetic: bool
    created_ms: int
    finished_ms: int | None
    trade_count: int
    pnl_usdt: float


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
            symbols = self._convert("runs", run.id, run.id, lambda run=run: decode.run_symbols(run))
            listings.append(
                RunListing(
                    str(run.id),
                    run.mode,
                    run.exchange,
                    symbols,
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
        return self._convert("runs", run_id, run.id, lambda: decode.run_info(run))

    def run_symbols(self, run_id: int) -> tuple[str, ...]:
        """The symbols the run watched, in its config's order."""
        run = self._run_row(run_id)
        return self._convert("runs", run_id, run.id, lambda: decode.run_symbols(run))

    def summary(self, run_id: int) -> dict[str, Any] | None:
        summary = self._run_row(run_id).summary_json
        if summary is not None and not isinstance(summary, dict):
            raise StoreError(
                f"{self.name}: run {run_id}: corrupted row in runs: summary is not a JSON object"
            )
        return summary

    def oi_synthetic(self, run_id: int) -> bool:
        return bool(self._run_row(run_id).oi_synthetic)

    # -- a run's events (`symbols`: only those symbols' rows) --------------------------------

    def gate_decisions(self, run_id: int) -> list[tuple[GateDecision, str]]:
        return list(self._gates(run_id).values())

    def signals(self, run_id: int, *, symbols: Symbols = None
                ) -> list[tuple[Signal, GateDecision | None]]:
        gates = self._gates(run_id)
        return self._rows("signals", run_id, SignalRow, lambda row: (
            decode.signal(row), self._gate_of(gates, row.gate_seq)), symbols)

    def trades(self, run_id: int, *, symbols: Symbols = None
               ) -> list[tuple[Trade, GateDecision | None]]:
        gates = self._gates(run_id)
        legs: dict[int, list[TradeLeg]] = {}
        stmt = (
            select(TradeLegRow.__table__)
            .where(TradeLegRow.run_id == run_id)
            .order_by(TradeLegRow.trade_seq, TradeLegRow.leg_index)
        )
        if symbols is not None:
            stmt = stmt.where(TradeLegRow.trade_seq.in_(select(TradeRow.seq).where(
                TradeRow.run_id == run_id, TradeRow.symbol.in_(tuple(symbols)))))
        for row in self._fetch("trade_legs", run_id, stmt):
            leg = self._convert("trade_legs", run_id, row.trade_seq,
                                lambda row=row: decode.trade_leg(row))
            legs.setdefault(row.trade_seq, []).append(leg)
        return self._rows("trades", run_id, TradeRow, lambda row: (
            decode.trade(row, legs), self._gate_of(gates, row.gate_seq)), symbols)

    def orders(self, run_id: int, *, symbols: Symbols = None) -> list[OrderEvent]:
        return self._rows("orders", run_id, OrderRow, decode.order_event, symbols)

    def fills(self, run_id: int, *, symbols: Symbols = None) -> list[Fill]:
        return self._rows("fills", run_id, FillRow, decode.fill, symbols)

    def equity(self, run_id: int) -> list[tuple[int, float]]:
        """The whole run's equity (all symbols share one)."""
        return self._rows("equity_points", run_id, EquityPointRow, decode.equity_point)

    def candles(self, run_id: int, *, symbols: Symbols = None) -> list[Candle]:
        """Signal candles, each tagged with its symbol, in the order they were recorded."""
        chunks = self._rows("signal_candle_chunks", run_id, SignalCandleChunkRow, unpacked,
                            symbols)
        return [candle for chunk in chunks for candle in chunk]

    def signal_candle_chunk_count(self, run_id: int) -> int:
        """How many chunk rows hold the run's signal candles (a resumed run numbers on)."""
        stmt = select(func.count()).where(SignalCandleChunkRow.run_id == run_id)
        return int(self._fetch("signal_candle_chunks", run_id, stmt)[0][0])

    def open_interest(self, run_id: int, *, symbols: Symbols = None) -> list[OpenInterest]:
        return self._rows("oi_samples", run_id, OpenInterestRow, decode.oi_sample, symbols)

    def load_run(self, run_id: int, *, symbols: Symbols = None) -> MemoryRecorder:
        """The whole run in the same shape a backtest's MemoryRecorder has in process; with
        `symbols`, those symbols' rows only (the gate decisions and equity stay whole)."""
        symbols = None if symbols is None else tuple(symbols)
        return MemoryRecorder(
            run_id=str(run_id),
            info=self.run_info(run_id),
            signals=self.signals(run_id, symbols=symbols),
            gate_decisions=self.gate_decisions(run_id),
            orders=self.orders(run_id, symbols=symbols),
            fills=self.fills(run_id, symbols=symbols),
            trades=self.trades(run_id, symbols=symbols),
            equity_points=self.equity(run_id),
            candles=self.candles(run_id, symbols=symbols),
            oi_samples=self.open_interest(run_id, symbols=symbols),
            summary=self.summary(run_id),
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _run_row(self, run_id: int) -> RunRow:
        rows = self._fetch("runs", run_id, select(RunRow).where(RunRow.id == run_id))
        if not rows:
            raise StoreError(f"{self.name}: unknown run id {run_id}")
        return rows[0][0]

    def _gates(self, run_id: int) -> dict[int, tuple[GateDecision, str]]:
        rows = self._rows("gate_decisions", run_id, GateDecisionRow,
                          lambda row: (row.seq, decode.gate_decision(row)))
        return dict(rows)

    @staticmethod
    def _gate_of(
        gates: dict[int, tuple[GateDecision, str]], seq: int | None
    ) -> GateDecision | None:
        if seq is None:
            return None
        return gates[seq][0]  # KeyError: a link to a missing decision is a corrupted row

    def _rows(self, table: str, run_id: int, model: Any, convert: Callable[[Any], T],
              symbols: Symbols = None) -> list[T]:
        # Plain column rows (attribute access like the models): far cheaper than ORM objects.
        stmt = select(model.__table__).where(model.run_id == run_id)
        if symbols is not None:
            stmt = stmt.where(model.symbol.in_(tuple(symbols)))
        return [
            self._convert(table, run_id, row.seq, lambda row=row: convert(row))
            for row in self._fetch(table, run_id, stmt.order_by(model.seq))
        ]

    def _convert(self, table: str, run_id: int, seq: int, make: Callable[[], T]) -> T:
        try:
            return make()
        except CORRUPTION as exc:
            raise StoreError(
                f"{self.name}: run {run_id}: corrupted row in {table} (seq {seq}): "
                f"{describe(exc)}"
            ) from None

    def _fetch(self, table: str, run_id: int | None, stmt: Select[Any]) -> list[Any]:
        """All rows of `stmt`; decoding failures (bad JSON, bad decimal text) name the table."""
        where = f"run {run_id}: " if run_id is not None else ""
        try:
            with Session(self._engine) as session:
                rows = list(session.execute(stmt))
                session.expunge_all()  # plain loaded objects, usable after the session
                return rows
        except (*CORRUPTION, json.JSONDecodeError) as exc:
            raise StoreError(
                f"{self.name}: {where}corrupted row in {table}: {describe(exc)}"
            ) from None
        except SQLAlchemyError as exc:
            first = str(exc).strip().splitlines()[0]
            raise StoreError(f"{self.name}: {where}cannot read {table}: {first}") from None


def open_store(url: str) -> StoreReader:
    """A reader on an existing store; StoreError when it is missing, empty or not ours."""
    return StoreReader(url)
