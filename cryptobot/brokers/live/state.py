"""What the live broker must remember across restarts: its orders, fills and positions.

They live in the run store (`store.url`), in its `live_orders`, `live_fills` and
`live_positions` tables (cryptobot/store/tables.py): the broker's current state, kept across
runs, next to the runs it traded. The store is opened the way every store is (created if
missing, brought to the Alembic head under the migration lock), so a live bot, a paper bot and
`cryptobot trades` can share one database. An older bot's own `live_state.sqlite` is copied in
by `cryptobot.store.live_import`.

Every order is written BEFORE it is sent (status "pending"), so a restarted process knows which
client ids it may have sent and looks them up on the exchange instead of sending them again.
Each write is its own transaction: a SIGKILL at any point leaves a consistent state.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import Session

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

__all__ = ["OPEN_STATUSES", "LiveFillRow", "LiveOrderRow", "LivePositionRow", "LiveState",
           "StoredPosition"]

OPEN_STATUSES = ("pending", "open")


def _synchronous_full(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


@dataclass(frozen=True, slots=True)
class StoredPosition(HeldPosition):
    adopted: bool = False  # found on the exchange, not opened by the bot


class LiveState:
    """Read and write the live broker's tables in the store at `url` (a StoreError if it
    cannot be opened or is not cryptobot's)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = open_for_writing(url)
        if self._engine.dialect.name == "sqlite":
            # an order is written before it is sent: that write must survive a power cut too
            # (the run store's synchronous=NORMAL survives a crash of the process only)
            event.listen(self._engine, "connect", _synchronous_full)
            self._engine.dispose()  # connections made before the listener are not reused

    def close(self) -> None:
        self._engine.dispose()

    # --- orders -----------------------------------------------------------------------

    def record_intent(self, intent: OrderIntent, signal_id: str, now_ms: int) -> None:
        with Session(self._engine) as session, session.begin():
            session.merge(LiveOrderRow(
                client_id=intent.client_id, signal_id=signal_id, symbol=intent.symbol,
                purpose=intent.purpose.value, side=intent.side.value,
                order_type=intent.order_type.value, qty_base=intent.qty_base,
                price=intent.price, reduce_only=intent.reduce_only, status="pending",
                exchange_order_id=None, created_ms=now_ms, updated_ms=now_ms, detail="",
            ))

    def update_order(self, client_id: str, now_ms: int, status: str | None = None,
                     exchange_order_id: str | None = None, detail: str | None = None) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(LiveOrderRow, client_id)
            if row is None:
                return
            if status is not None:
                row.status = status
            if exchange_order_id is not None:
                row.exchange_order_id = exchange_order_id
            if detail is not None:
                row.detail = detail[:500]
            row.updated_ms = now_ms

    def order(self, client_id: str) -> LiveOrderRow | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.get(LiveOrderRow, client_id)

    def orders(self, statuses: tuple[str, ...] | None = None, signal_id: str | None = None,
               symbol: str | None = None) -> list[LiveOrderRow]:
        query = select(LiveOrderRow).order_by(LiveOrderRow.created_ms, LiveOrderRow.client_id)
        if statuses is not None:
            query = query.where(LiveOrderRow.status.in_(statuses))
        if signal_id is not None:
            query = query.where(LiveOrderRow.signal_id == signal_id)
        if symbol is not None:
            query = query.where(LiveOrderRow.symbol == symbol)
        with Session(self._engine, expire_on_commit=False) as session:
            return list(session.scalars(query))

    def order_by_exchange_id(self, symbol: str, exchange_order_id: str) -> LiveOrderRow | None:
        """Binance numbers orders per symbol: an id alone may be another symbol's."""
        query = select(LiveOrderRow).where(LiveOrderRow.exchange_order_id == exchange_order_id,
                                           LiveOrderRow.symbol == symbol)
        with Session(self._engine, expire_on_commit=False) as session:
            return session.scalars(query).first()

    # --- fills ------------------------------------------------------------------------

    def has_fill(self, trade_id: str) -> bool:
        with Session(self._engine) as session:
            return session.get(LiveFillRow, trade_id) is not None

    def record_fill(self, row: LiveFillRow) -> None:
        with Session(self._engine) as session, session.begin():
            session.merge(row)

    def fills(self, signal_id: str | None = None) -> list[LiveFillRow]:
        query = select(LiveFillRow).order_by(LiveFillRow.ts_ms, LiveFillRow.trade_id)
        if signal_id is not None:
            query = query.where(LiveFillRow.signal_id == signal_id)
        with Session(self._engine, expire_on_commit=False) as session:
            return list(session.scalars(query))

    # --- positions --------------------------------------------------------------------

    def open_position(self, signal_id: str, symbol: str, qty_base: float, entry_price: float,
                      stop_price: float | None, opened_ms: int, adopted: bool = False,
                      side: PositionSide = PositionSide.LONG) -> None:
        """`qty_base` is the size, never signed: `side` says long or short."""
        with Session(self._engine) as session, session.begin():
            session.merge(LivePositionRow(
                signal_id=signal_id, symbol=symbol, qty_base=qty_base, entry_price=entry_price,
                stop_price=stop_price, opened_ms=opened_ms, is_open=qty_base > 0,
                adopted=adopted, close_reason="", side=side.value,
            ))

    def update_position(self, signal_id: str, qty_base: float | None = None,
                        entry_price: float | None = None, stop_price: float | None = None,
                        close_reason: str | None = None) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(LivePositionRow, signal_id)
            if row is None:
                return
            if qty_base is not None:
                row.qty_base = qty_base
                row.is_open = qty_base > 1e-12
            if entry_price is not None:
                row.entry_price = entry_price
            if stop_price is not None:
                row.stop_price = stop_price
            if close_reason is not None:
                row.close_reason = close_reason[:500]
                row.is_open = False

    def positions(self, open_only: bool = True) -> list[StoredPosition]:
        query = select(LivePositionRow).order_by(LivePositionRow.opened_ms)
        if open_only:
            query = query.where(LivePositionRow.is_open.is_(True))
        with Session(self._engine) as session:
            return [StoredPosition(r.signal_id, r.symbol, float(r.qty_base), float(r.entry_price),
                                   None if r.stop_price is None else float(r.stop_price),
                                   r.opened_ms, PositionSide(r.side), adopted=r.adopted)
                    for r in session.scalars(query)]

    def position(self, signal_id: str) -> StoredPosition | None:
        for stored in self.positions(open_only=False):
            if stored.signal_id == signal_id:
                return stored
        return None

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
