"""What the live broker must remember across restarts: its orders, fills and positions.

Its own small SQLite (or any SQLAlchemy) database, `live.state_url`, separate from the run store
(the run store is per run; this state outlives runs). Every order is written BEFORE it is sent
(status "pending"), so a restarted process knows which client ids it may have sent and looks
them up on the exchange instead of sending them again. Each write is its own transaction: a
SIGKILL at any point leaves a consistent file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import BigInteger, Boolean, String, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from cryptobot.store.types import ExactDecimal

OPEN_STATUSES = ("pending", "open")


class _Base(DeclarativeBase):
    pass


class LiveOrderRow(_Base):
    __tablename__ = "live_orders"

    client_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(128), index=True)
    symbol: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    qty_base: Mapped[float] = mapped_column(ExactDecimal())
    price: Mapped[float | None] = mapped_column(ExactDecimal())
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    # pending (written, maybe sent), open, filled, canceled, rejected, expired, not_sent
    status: Mapped[str] = mapped_column(String(16), index=True)
    exchange_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(String(500), default="")

    def intent(self) -> OrderIntent:
        return OrderIntent(
            client_id=self.client_id, symbol=self.symbol, side=Side(self.side),
            order_type=OrderType(self.order_type), qty_base=float(self.qty_base),
            purpose=OrderPurpose(self.purpose),
            price=None if self.price is None else float(self.price), reduce_only=self.reduce_only,
        )


class LiveFillRow(_Base):
    __tablename__ = "live_fills"

    trade_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the exchange's
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    signal_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[float] = mapped_column(ExactDecimal())
    qty_base: Mapped[float] = mapped_column(ExactDecimal())
    fee_usdt: Mapped[float] = mapped_column(ExactDecimal())
    is_maker: Mapped[bool] = mapped_column(Boolean)
    purpose: Mapped[str] = mapped_column(String(16))


class LivePositionRow(_Base):
    __tablename__ = "live_positions"

    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    qty_base: Mapped[float] = mapped_column(ExactDecimal())
    entry_price: Mapped[float] = mapped_column(ExactDecimal())
    stop_price: Mapped[float | None] = mapped_column(ExactDecimal())  # the latest planned stop
    opened_ms: Mapped[int] = mapped_column(BigInteger)
    is_open: Mapped[bool] = mapped_column(Boolean, index=True)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    close_reason: Mapped[str] = mapped_column(String(500), default="")


@dataclass(frozen=True)
class StoredPosition:
    signal_id: str
    symbol: str
    qty_base: float
    entry_price: float
    stop_price: float | None
    opened_ms: int
    adopted: bool


class LiveState:
    """Read and write the live broker's tables (created if missing)."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self._engine = create_engine(url)
        _Base.metadata.create_all(self._engine)

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

    def order_by_exchange_id(self, exchange_order_id: str) -> LiveOrderRow | None:
        query = select(LiveOrderRow).where(LiveOrderRow.exchange_order_id == exchange_order_id)
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
                      stop_price: float | None, opened_ms: int, adopted: bool = False) -> None:
        with Session(self._engine) as session, session.begin():
            session.merge(LivePositionRow(
                signal_id=signal_id, symbol=symbol, qty_base=qty_base, entry_price=entry_price,
                stop_price=stop_price, opened_ms=opened_ms, is_open=qty_base > 0,
                adopted=adopted, close_reason="",
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
                                   r.opened_ms, r.adopted) for r in session.scalars(query)]

    def position(self, signal_id: str) -> StoredPosition | None:
        for stored in self.positions(open_only=False):
            if stored.signal_id == signal_id:
                return stored
        return None
