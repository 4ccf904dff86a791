"""Signal candles stored as columns (issue 20: a backtest's store writes): `signal_candles`, one
row a candle, becomes `signal_candle_chunks`, one row per run of consecutive candles of one
symbol and interval, each column a little-endian array (int64 open times, float64 prices and
volume; store/candle_chunks.py). Every stored candle is carried over, in its order, exactly
(float64 both ways); downgrading unpacks them again. On PostgreSQL the arrays are stored
uncompressed (STORAGE EXTERNAL): compressing float data gains little and costs most of a write.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from itertools import groupby

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PRICES = ("open", "high", "low", "close", "volume")
_TIME, _NUMBER = np.dtype("<i8"), np.dtype("<f8")


def _run_fk(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=f"fk_{name}_run_id_runs", ondelete="CASCADE"
    )


def _rows_table() -> sa.TableClause:
    return sa.table("signal_candles", sa.column("run_id", sa.Integer()),
                    sa.column("seq", sa.Integer()), sa.column("symbol", sa.String()),
                    sa.column("ts_open_ms", sa.BigInteger()),
                    sa.column("interval_ms", sa.BigInteger()),
                    *(sa.column(name, sa.Float()) for name in PRICES))


def _chunks_table() -> sa.TableClause:
    return sa.table("signal_candle_chunks", sa.column("run_id", sa.Integer()),
                    sa.column("seq", sa.Integer()), sa.column("symbol", sa.String()),
                    sa.column("interval_ms", sa.BigInteger()),
                    sa.column("candle_count", sa.Integer()),
                    sa.column("ts_open_ms", sa.LargeBinary()),
                    *(sa.column(name, sa.LargeBinary()) for name in PRICES))


def upgrade() -> None:
    op.create_table(
        "signal_candle_chunks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("interval_ms", sa.BigInteger(), nullable=False),
        sa.Column("candle_count", sa.Integer(), nullable=False),
        sa.Column("ts_open_ms", sa.LargeBinary(), nullable=False),
        *(sa.Column(name, sa.LargeBinary(), nullable=False) for name in PRICES),
        _run_fk("signal_candle_chunks"),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_signal_candle_chunks"),
    )
    op.create_index("ix_signal_candle_chunks_run_symbol", "signal_candle_chunks",
                    ["run_id", "symbol", "seq"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # float arrays barely compress: TOAST stores them as
        for name in ("ts_open_ms", *PRICES):  # they are instead of trying (5x slower writes)
            op.execute(f"ALTER TABLE signal_candle_chunks ALTER COLUMN {name} SET STORAGE "
                       "EXTERNAL")
    rows, chunks = _rows_table(), _chunks_table()
    run_ids = bind.execute(sa.select(rows.c.run_id).distinct().order_by(rows.c.run_id))
    for (run_id,) in run_ids.all():  # one run's rows in memory at a time
        stored = bind.execute(sa.select(rows).where(rows.c.run_id == run_id)
                              .order_by(rows.c.seq)).all()
        packed = []
        for seq, ((symbol, interval_ms), group) in enumerate(
                groupby(stored, key=lambda row: (row.symbol, row.interval_ms)), start=1):
            candles = list(group)
            packed.append({
                "run_id": run_id, "seq": seq, "symbol": symbol, "interval_ms": interval_ms,
                "candle_count": len(candles),
                "ts_open_ms": np.array([c.ts_open_ms for c in candles], _TIME).tobytes(),
                **{name: np.array([getattr(c, name) for c in candles], _NUMBER).tobytes()
                   for name in PRICES}})
        bind.execute(chunks.insert(), packed)
    op.drop_index("ix_signal_candles_run_symbol", table_name="signal_candles")
    op.drop_table("signal_candles")


def downgrade() -> None:
    op.create_table(
        "signal_candles",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts_open_ms", sa.BigInteger(), nullable=False),
        sa.Column("interval_ms", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in PRICES),
        sa.Column("symbol", sa.String(64), nullable=False),
        _run_fk("signal_candles"),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_signal_candles"),
    )
    op.create_index("ix_signal_candles_run_symbol", "signal_candles", ["run_id", "symbol", "seq"])
    bind = op.get_bind()
    rows, chunks = _rows_table(), _chunks_table()
    run_ids = bind.execute(sa.select(chunks.c.run_id).distinct().order_by(chunks.c.run_id))
    for (run_id,) in run_ids.all():
        stored = bind.execute(sa.select(chunks).where(chunks.c.run_id == run_id)
                              .order_by(chunks.c.seq)).all()
        unpacked, seq = [], 0
        for chunk in stored:
            times = np.frombuffer(bytes(chunk.ts_open_ms), _TIME).tolist()
            prices = [np.frombuffer(bytes(getattr(chunk, name)), _NUMBER).tolist()
                      for name in PRICES]
            for index, ts_open_ms in enumerate(times):
                seq += 1
                unpacked.append({"run_id": run_id, "seq": seq, "symbol": chunk.symbol,
                                 "ts_open_ms": ts_open_ms, "interval_ms": chunk.interval_ms,
                                 **{name: prices[i][index] for i, name in enumerate(PRICES)}})
        bind.execute(rows.insert(), unpacked)
    op.drop_index("ix_signal_candle_chunks_run_symbol", table_name="signal_candle_chunks")
    op.drop_table("signal_candle_chunks")
