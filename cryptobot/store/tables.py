"""The stored schema: SQLAlchemy 2 typed models.

Every table below `runs` is keyed by (run_id, seq), with `seq` counted per run by the one
recorder that writes the run: rows can be buffered and bulk-inserted without asking the
database for ids, and links inside a run (signal -> gate decision, leg -> trade) are plain
numbers. Times are epoch ms (BigInteger); the ledger (orders, fills, trades, equity) is exact
decimal; market data the run saw (candles, OI) is float, as it came from the venue.
A run watches one or more symbols (`runs.symbols_json`, a JSON list in the config's order);
every per-symbol row (signals, orders, fills, trades, signal candle chunks, OI samples) names
its symbol, and the bulky market-data tables are indexed for one run's one symbol. Signal
candles are stored as columns, many candles a row (`signal_candle_chunks`).

The `live_*` tables at the end are not per run: they are the live broker's CURRENT state, kept
across runs and restarts (what it sent, what filled, what it holds), keyed by client order id,
the exchange's trade id and signal id. `live_orders` is not the per-run `orders` event table:
that one is the review's history of one run; this one is what the broker reconciles with the
exchange when it starts (brokers/live/state.py reads and writes it).
Alembic migrations in `migrations/versions` create exactly this; a test compares them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from cryptobot.store.types import ExactDecimal

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _run_fk() -> Mapped[int]:
    return mapped_column(Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(16))
    exchange: Mapped[str] = mapped_column(String(32))
    symbols_json: Mapped[list[str]] = mapped_column(JSON)  # ["BTC/USDT:USDT", ...]
    start_ms: Mapped[int | None] = mapped_column(BigInteger)
    end_ms: Mapped[int | None] = mapped_column(BigInteger)
    data_source: Mapped[str] = mapped_column(String(1000))
    oi_synthetic: Mapped[bool] = mapped_column(Boolean)
    settings_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)
    summary_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class GateDecisionRow(Base):
    __tablename__ = "gate_decisions"

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    size_factor: Mapped[float] = mapped_column(Float)
    reasons_json: Mapped[list[str]] = mapped_column(JSON)
    inputs_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    trigger: Mapped[str] = mapped_column(String(16))  # "signal" or "daily"


class SignalRow(Base):
    __tablename__ = "signals"

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    spike_ms: Mapped[int] = mapped_column(BigInteger)
    decided_ms: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(1000))
    metrics_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    setup_events_json: Mapped[list[Any]] = mapped_column(JSON)  # [[ts_ms, kind, price], ...]
    gate_seq: Mapped[int | None] = mapped_column(Integer)  # the decision that judged it
    # [{"name", "value", "holds", "detail"}, ...]: the rebound's evidence (NULL: stored before)
    evidence_json: Mapped[list[Any] | None] = mapped_column(JSON)


class OrderRow(Base):
    __tablename__ = "orders"

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    client_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    qty_base: Mapped[Decimal] = mapped_column(ExactDecimal())
    price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    reduce_only: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(1000))


class FillRow(Base):
    __tablename__ = "fills"

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    client_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    qty_base: Mapped[Decimal] = mapped_column(ExactDecimal())
    fee_usdt: Mapped[Decimal] = mapped_column(ExactDecimal())
    is_maker: Mapped[bool] = mapped_column(Boolean)


class TradeRow(Base):
    __tablename__ = "trades"

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(8))
    entry_ms: Mapped[int] = mapped_column(BigInteger)
    exit_ms: Mapped[int] = mapped_column(BigInteger)
    entry_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    qty_base: Mapped[Decimal] = mapped_column(ExactDecimal())
    initial_stop: Mapped[Decimal] = mapped_column(ExactDecimal())
    entry_fee_usdt: Mapped[Decimal] = mapped_column(ExactDecimal())
    funding_usdt: Mapped[Decimal] = mapped_column(ExactDecimal())
    # Derived from the legs, kept so SQL readers need not recompute them.
    pnl_usdt: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    r_multiple: Mapped[Decimal | None] = mapped_column(ExactDecimal())
    exit_reason: Mapped[str] = mapped_column(String(32))
    gate_seq: Mapped[int | None] = mapped_column(Integer)  # the decision at entry


class TradeLegRow(Base):
    __tablename__ = "trade_legs"

    run_id: Mapped[int] = _run_fk()
    trade_seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    leg_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    qty_base: Mapped[Decimal] = mapped_column(ExactDecimal())
    fee_usdt: Mapped[Decimal] = mapped_column(ExactDecimal())
    reason: Mapped[str] = mapped_column(String(32))


class EquityPointRow(Base):
    __tablename__ = "equity_points"

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    equity_usdt: Mapped[Decimal] = mapped_column(ExactDecimal())


class SignalCandleChunkRow(Base):
    """Signal candles as columns: consecutive candles of one symbol and interval, recorded one
    after another, in one row (store/candle_chunks.py packs and unpacks them). A backtest's
    tens of thousands of candles are one row per symbol; a paper or live run writes one
    candle a row as it goes."""

    __tablename__ = "signal_candle_chunks"
    __table_args__ = (Index("ix_signal_candle_chunks_run_symbol", "run_id", "symbol", "seq"),)

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    interval_ms: Mapped[int] = mapped_column(BigInteger)
    candle_count: Mapped[int] = mapped_column(Integer)
    # little-endian int64 (ts_open_ms) and float64 (prices, volume) arrays of candle_count each
    ts_open_ms: Mapped[bytes] = mapped_column(LargeBinary)
    open: Mapped[bytes] = mapped_column(LargeBinary)
    high: Mapped[bytes] = mapped_column(LargeBinary)
    low: Mapped[bytes] = mapped_column(LargeBinary)
    close: Mapped[bytes] = mapped_column(LargeBinary)
    volume: Mapped[bytes] = mapped_column(LargeBinary)


class OpenInterestRow(Base):
    __tablename__ = "oi_samples"
    __table_args__ = (Index("ix_oi_samples_run_symbol", "run_id", "symbol", "seq"),)

    run_id: Mapped[int] = _run_fk()
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    oi_contracts: Mapped[float] = mapped_column(Float)
    oi_value_usdt: Mapped[float | None] = mapped_column(Float)


class LiveOrderRow(Base):
    """An order the live broker wrote BEFORE sending it (status "pending"), then its fate."""

    __tablename__ = "live_orders"

    client_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    signal_id: Mapped[str] = mapped_column(String(128), index=True)
    symbol: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    qty_base: Mapped[Decimal] = mapped_column(ExactDecimal())
    price: Mapped[Decimal | None] = mapped_column(ExactDecimal())
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


class LiveFillRow(Base):
    __tablename__ = "live_fills"

    trade_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the exchange's
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    signal_id: Mapped[str] = mapped_column(String(128), index=True)  # a signal's fills
    symbol: Mapped[str] = mapped_column(String(64))
    ts_ms: Mapped[int] = mapped_column(BigInteger, index=True)  # the rails' daily loss
    side: Mapped[str] = mapped_column(String(8))
    price: Mapped[Decimal] = mapped_column(ExactDecimal())
    qty_base: Mapped[Decimal] = mapped_column(ExactDecimal())
    fee_usdt: Mapped[Decimal] = mapped_column(ExactDecimal())
    is_maker: Mapped[bool] = mapped_column(Boolean)
    purpose: Mapped[str] = mapped_column(String(16))


class LivePositionRow(Base):
    __tablename__ = "live_positions"

    signal_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64), index=True)
    qty_base: Mapped[Decimal] = mapped_column(ExactDecimal())
    entry_price: Mapped[Decimal] = mapped_column(ExactDecimal())
    stop_price: Mapped[Decimal | None] = mapped_column(ExactDecimal())  # the latest planned stop
    opened_ms: Mapped[int] = mapped_column(BigInteger)
    is_open: Mapped[bool] = mapped_column(Boolean, index=True)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)
    close_reason: Mapped[str] = mapped_column(String(500), default="")
    side: Mapped[str] = mapped_column(String(8), default="long",
                                      server_default="long")  # PositionSide: long/short


class SweepRow(Base):
    """A parameter sweep (`cryptobot sweep`): its grid, where it ran, and how it ended
    (running, finished, interrupted). Its combinations are `sweep_results`."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_json: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"grid": ..., "samples", "seed"}
    seed: Mapped[int] = mapped_column(Integer)
    scheduler: Mapped[str] = mapped_column(String(300))  # "local, N workers" or the address
    config_path: Mapped[str] = mapped_column(String(1000))
    data_source: Mapped[str] = mapped_column(String(1000))
    symbols_json: Mapped[list[str]] = mapped_column(JSON)
    start_ms: Mapped[int | None] = mapped_column(BigInteger)
    end_ms: Mapped[int | None] = mapped_column(BigInteger)
    walk_forward: Mapped[str | None] = mapped_column(String(32))  # "90d/30d", or None
    metric: Mapped[str | None] = mapped_column(String(64))  # the walk-forward's choice
    created_ms: Mapped[int] = mapped_column(BigInteger)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))


class SweepResultRow(Base):
    """One combination's backtest (of one walk-forward window and phase, when it has one):
    its parameters by dotted config key, the backtest's summary, or the error that stopped
    it; signals and trades only when the sweep was asked for them."""

    __tablename__ = "sweep_results"

    sweep_id: Mapped[int] = mapped_column(Integer, ForeignKey("sweeps.id", ondelete="CASCADE"),
                                          primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    combination: Mapped[int] = mapped_column(Integer)  # its index in the grid's combinations
    window: Mapped[int | None] = mapped_column(Integer)  # walk-forward window, from 0
    phase: Mapped[str | None] = mapped_column(String(8))  # "train" or "test"
    start_ms: Mapped[int | None] = mapped_column(BigInteger)
    end_ms: Mapped[int | None] = mapped_column(BigInteger)
    params_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(2000))
    detail_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    elapsed_s: Mapped[float] = mapped_column(Float)
