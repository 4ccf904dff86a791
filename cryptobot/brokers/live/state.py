"""What the live broker must remember across restarts: its orders, fills and positions.

They live in the run store (`store.url`), in its `live_orders`, `live_fills` and
`live_positions` tables (cryptobot/store/tables.py): the broker's current state, kept across
runs, next to the runs it traded. The store is opened the way every store is (created if
missing, brought to the Alembic head under the migration lock), so a live bot, a paper bot and
`cryptobot trades` can share one database. An older bot's own `live_state.sqlite` is copied in
by `cryptobot.store.live_import`.

Every order is written BEFORE it is sent (status "pending"), so a restarted process knows which
client ids it may have sent and looks them up on the exchange instead of sending them again.
Each write is its own transaction: a SIGKILL at any point leaves a consistent state. Every
write commits as the run store does (SQLite WAL, synchronous=NORMAL: a crash or kill -9 of the
bot's process loses nothing, the frames are in the OS page cache), the pre-send one too, which
an order waits on; what a power cut needs is done off the order path: `sync_soon`, called as
the order goes out, fsyncs the WAL on a thread of its own (wal_sync.py). A power cut can so
lose at most the intent of an order sent within that fsync's time (a millisecond or so), and
the last other changes, all of which a restart reads again from the exchange: an order still
"pending" is looked up, fills are read again by REST, positions are reconciled. No write here
checkpoints the WAL (a checkpoint syncs the database file: milliseconds an order would wait
on); the live session runs `checkpoint_if_due` between events.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cryptobot.brokers.live.statements import statements_for
from cryptobot.brokers.live.wal_sync import WalSync
from cryptobot.model import HeldPosition, OrderIntent, PositionSide
from cryptobot.store.database import open_for_writing
from cryptobot.store.tables import (
    FillRow,
    LiveFillRow,
    LiveOrderRow,
    LivePositionRow,
    RunRow,
    TradeRow,
)

__all__ = ["OPEN_STATUSES", "TRADE_LIST_LAG_MS", "FillAmount", "LiveFillRow", "LiveOrderRow",
           "LivePositionRow", "LiveState", "PlannedPosition", "StoredPosition"]

log = logging.getLogger("cryptobot.live.state")
OPEN_STATUSES = ("pending", "open")
# How long a filled entry's trades may stay unlisted on the venue (GET userTrades lags the
# order's status): its symbol is watched, and its position not taken for an unknown one.
TRADE_LIST_LAG_MS = 600_000
ORDERS: Table = LiveOrderRow.__table__  # type: ignore[assignment]
FILLS: Table = LiveFillRow.__table__  # type: ignore[assignment]
POSITIONS: Table = LivePositionRow.__table__  # type: ignore[assignment]


# A write adds its table's page and its indexes' (three on live_orders), often a position's
# too: about 4 pages. SQLite checkpoints by itself after 1,000 pages; here after 250 writes.
CHECKPOINT_AFTER_WRITES = 250


def _no_checkpoint(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # no checkpoint inside a write an order waits on (it syncs the database: milliseconds);
    # `checkpoint_if_due` runs one between events
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


@dataclass(frozen=True, slots=True)
class StoredPosition(HeldPosition):
    adopted: bool = False  # found on the exchange, not opened by the bot


@dataclass(frozen=True, slots=True)
class FillAmount:
    """What a stored fill adds to a realised PnL (its row's columns of these names)."""

    signal_id: str
    purpose: str
    price: float
    qty_base: float
    fee_usdt: float


@dataclass(frozen=True, slots=True)
class PlannedPosition:
    """An entry's position before it opens: its side and planned stop."""

    stop_price: float
    side: PositionSide


def _where(*conditions: tuple[str, tuple[object, ...]] | bool | None
           ) -> tuple[str, tuple[object, ...]]:
    """The conditions given ((SQL with `?`, its values); a false one left out) joined by AND
    (none: every row), and their values in order."""
    kept = [condition for condition in conditions if isinstance(condition, tuple)]
    return (" AND ".join(sql for sql, _ in kept) or "1 = 1",
            tuple(value for _, values in kept for value in values))


def _stored(row: dict[str, Any]) -> StoredPosition:
    return StoredPosition(row["signal_id"], row["symbol"], float(row["qty_base"]),
                          float(row["entry_price"]),
                          None if row["stop_price"] is None else float(row["stop_price"]),
                          row["opened_ms"], PositionSide(row["side"]), adopted=row["adopted"])


def _position_values(signal_id: str, symbol: str, qty_base: float, entry_price: float,
                     stop_price: float | None, opened_ms: int, adopted: bool,
                     side: PositionSide) -> dict[str, object]:
    return {"signal_id": signal_id, "symbol": symbol, "qty_base": qty_base,
            "entry_price": entry_price, "stop_price": stop_price, "opened_ms": opened_ms,
            "is_open": qty_base > 0, "adopted": adopted, "close_reason": "", "side": side.value}


class LiveState:
    """Read and write the live broker's tables in the store at `url` (a StoreError if it
    cannot be opened or is not cryptobot's)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = open_for_writing(url)
        self._durable = self._engine  # what an order waits on: its reads and writes
        self._wal_sync: WalSync | None = None
        database = self._engine.url.database
        if self._engine.dialect.name == "sqlite" and database and database != ":memory:":
            # their own connection: no checkpoint inside them
            self._durable = open_for_writing(url)
            event.listen(self._durable, "connect", _no_checkpoint)
            self._durable.dispose()  # connections made before the listener are not reused
            self._wal_sync = WalSync(Path(database))
        # every read and write of the live tables (statements.py): an order waits on its
        # look-up, the rails' reads, the intent's write before the send and its status after
        self._statements = statements_for(self._durable, (ORDERS, FILLS, POSITIONS))

    def close(self) -> None:
        if self._wal_sync is not None:
            self._wal_sync.close()
        self._statements.close()
        self._engine.dispose()
        self._durable.dispose()

    def checkpoint_if_due(self) -> None:
        """Between events (the live session's, once a candle's orders are out, and its timer
        ticks): the WAL moved into the database after `CHECKPOINT_AFTER_WRITES` of this
        state's writes, about the 1,000 pages after which SQLite's automatic checkpoint runs
        (PASSIVE: it waits on no reader or writer). The run recorder's commits still
        checkpoint by themselves, as before."""
        if self._statements.writes < CHECKPOINT_AFTER_WRITES:
            return
        try:
            self._statements.checkpoint()
        except SQLAlchemyError as exc:  # as SQLite's own checkpoint in a commit: not fatal
            log.warning("checkpoint of the live state's WAL failed (tried again after the "
                        "next writes): %s", exc)

    def sync_soon(self) -> None:
        """Make every commit so far survive a power cut, off the caller's path (SQLite: the
        WAL's fsync on its own thread, wal_sync.py); a server database has done so at commit."""
        if self._wal_sync is not None:
            self._wal_sync.sync_soon()

    # --- orders -----------------------------------------------------------------------

    def record_intent(self, intent: OrderIntent, signal_id: str, now_ms: int,
                      planned: PlannedPosition | None = None) -> None:
        """The order as "pending", before it is sent; `planned`: an entry's position, not open
        yet, with its planned stop, in the same transaction (made durable against a power cut
        by `sync_soon`, as the order goes out)."""
        rows: list[tuple[Table, dict[str, object]]] = [(ORDERS, {
            "client_id": intent.client_id, "signal_id": signal_id, "symbol": intent.symbol,
            "purpose": intent.purpose.value, "side": intent.side.value,
            "order_type": intent.order_type.value, "qty_base": intent.qty_base,
            "price": intent.price, "reduce_only": intent.reduce_only, "status": "pending",
            "exchange_order_id": None, "created_ms": now_ms, "updated_ms": now_ms,
            "detail": ""})]
        if planned is not None:
            rows.append((POSITIONS, _position_values(
                signal_id, intent.symbol, 0.0, 0.0, planned.stop_price, now_ms, False,
                planned.side)))
        self._statements.write(upserts=rows)

    def update_order(self, client_id: str, now_ms: int, status: str | None = None,
                     exchange_order_id: str | None = None, detail: str | None = None) -> None:
        values: dict[str, object] = {"updated_ms": now_ms}
        if status is not None:
            values["status"] = status
        if exchange_order_id is not None:
            values["exchange_order_id"] = exchange_order_id
        if detail is not None:
            values["detail"] = detail[:500]
        self._statements.write(updates=[(ORDERS, client_id, values)])

    def order(self, client_id: str) -> LiveOrderRow | None:
        found = self._statements.rows(ORDERS, "client_id = ?", (client_id,))
        return LiveOrderRow(**found[0]) if found else None

    def orders(self, statuses: tuple[str, ...] | None = None, signal_id: str | None = None,
               symbol: str | None = None) -> list[LiveOrderRow]:
        if statuses is not None and not statuses:
            return []
        where, params = _where(
            statuses and (f"status IN ({', '.join('?' * len(statuses))})", statuses),
            signal_id is not None and ("signal_id = ?", (signal_id,)),
            symbol is not None and ("symbol = ?", (symbol,)))
        return [LiveOrderRow(**row) for row in self._statements.rows(
            ORDERS, where, params, order_by="created_ms, client_id")]

    def entries_awaiting_fills(self, since_ms: int) -> list[LiveOrderRow]:
        """Entries filled on the venue since `since_ms` whose position never opened (its planned
        row, entry price 0, is still closed): their fills are not read yet (the venue's trade
        list can lag its order status)."""
        awaiting = []
        for found in self._statements.rows(
                ORDERS, "purpose = ? AND status IN (?, ?) AND updated_ms >= ?",
                ("entry", "closed", "filled", since_ms)):
            row = LiveOrderRow(**found)
            planned = self.position(row.signal_id)
            if planned is not None and not planned.qty_base and not planned.entry_price:
                awaiting.append(row)
        return awaiting

    def order_by_exchange_id(self, symbol: str, exchange_order_id: str) -> LiveOrderRow | None:
        """Binance numbers orders per symbol: an id alone may be another symbol's."""
        found = self._statements.rows(ORDERS, "exchange_order_id = ? AND symbol = ?",
                                      (exchange_order_id, symbol))
        return LiveOrderRow(**found[0]) if found else None

    # --- fills ------------------------------------------------------------------------

    def has_fill(self, trade_id: str) -> bool:
        return bool(self._statements.rows(FILLS, "trade_id = ?", (trade_id,)))

    def record_fill(self, row: LiveFillRow) -> None:
        self._upsert(FILLS, {column.key: getattr(row, column.key) for column in FILLS.columns})

    def fills(self, signal_id: str | None = None) -> list[LiveFillRow]:
        """In time order; of one signal when given (a fill streamed in: on the held
        statements)."""
        where, params = _where(signal_id is not None and ("signal_id = ?", (signal_id,)))
        return [LiveFillRow(**row) for row in self._statements.rows(
            FILLS, where, params, order_by="ts_ms, trade_id")]

    def fill_amounts(self, since_ms: int) -> list[FillAmount]:
        """The fills from `since_ms` on, in time order, as the numbers a realised PnL needs
        (the rails' daily loss, before an entry: no whole rows)."""
        return [FillAmount(row["signal_id"], row["purpose"], float(row["price"]),
                           float(row["qty_base"]), float(row["fee_usdt"]))
                for row in self._statements.rows(
                    FILLS, "ts_ms >= ?", (since_ms,), order_by="ts_ms, trade_id",
                    columns=FillAmount.__slots__)]

    # --- positions --------------------------------------------------------------------

    def open_position(self, signal_id: str, symbol: str, qty_base: float, entry_price: float,
                      stop_price: float | None, opened_ms: int, adopted: bool = False,
                      side: PositionSide = PositionSide.LONG) -> None:
        """`qty_base` is the size, never signed: `side` says long or short."""
        self._upsert(POSITIONS, _position_values(signal_id, symbol, qty_base, entry_price,
                                                 stop_price, opened_ms, adopted, side))

    def update_position(self, signal_id: str, qty_base: float | None = None,
                        entry_price: float | None = None, stop_price: float | None = None,
                        close_reason: str | None = None) -> None:
        values: dict[str, object] = {}
        if qty_base is not None:
            values["qty_base"], values["is_open"] = qty_base, qty_base > 1e-12
        if entry_price is not None:
            values["entry_price"] = entry_price
        if stop_price is not None:
            values["stop_price"] = stop_price
        if close_reason is not None:
            values["close_reason"], values["is_open"] = close_reason[:500], False
        if values:
            self._statements.write(updates=[(POSITIONS, signal_id, values)])

    def positions(self, open_only: bool = True) -> list[StoredPosition]:
        # `is_open = ?` bound to True: SQLite's 1, PostgreSQL's boolean
        where, params = ("is_open = ?", (True,)) if open_only else ("1 = 1", ())
        return self._positions(where, params)

    def position(self, signal_id: str) -> StoredPosition | None:
        found = self._positions("signal_id = ?", (signal_id,))
        return found[0] if found else None

    def positions_of(self, signal_ids: Collection[str]) -> dict[str, StoredPosition]:
        """The stored positions (open or not) of these signals, by signal id: one read."""
        if not signal_ids:
            return {}
        return {position.signal_id: position for position in self._positions(
            f"signal_id IN ({', '.join('?' * len(signal_ids))})", tuple(signal_ids))}

    def open_positions_and(self, signal_id: str
                           ) -> tuple[list[StoredPosition], StoredPosition | None]:
        """The open positions, and the signal's own (open or not), in one read: an entry's
        rails and its planned stop."""
        rows = self._statements.rows(POSITIONS, "is_open = ? OR signal_id = ?",
                                     (True, signal_id), order_by="opened_ms")
        own = next((_stored(row) for row in rows if row["signal_id"] == signal_id), None)
        return [_stored(row) for row in rows if row["is_open"]], own

    def _positions(self, where: str, params: tuple[object, ...]) -> list[StoredPosition]:
        return [_stored(row) for row in self._statements.rows(POSITIONS, where, params,
                                                              order_by="opened_ms")]

    def _upsert(self, table: Table, values: dict[str, object]) -> None:
        self._statements.write(upserts=[(table, values)])

    # --- what the runs booked (the run store's tables, in the same database) -----------------

    def booked_signal_ids(self) -> set[str]:
        """Signals whose trade a live run has booked (a paper run or a backtest of the same
        candles makes the same signal ids)."""
        query = select(TradeRow.signal_id).join(RunRow, RunRow.id == TradeRow.run_id).where(
            RunRow.mode == "live").distinct()
        with Session(self._engine) as session:
            return set(session.scalars(query))

    def recorded_fills(self, signal_id: str) -> set[tuple[str, int, float]]:
        """(client id, time, quantity) of the signal's fills that a live run has recorded."""
        query = select(FillRow.client_id, FillRow.ts_ms, FillRow.qty_base).join(
            RunRow, RunRow.id == FillRow.run_id).where(
            RunRow.mode == "live", FillRow.client_id.startswith(signal_id + "-", autoescape=True))
        with Session(self._engine) as session:
            rows = session.execute(query)
            return {(cid, int(ts), round(float(qty), 12)) for cid, ts, qty in rows}
