"""Runs, signals, gate decisions, orders, fills, trades with legs, equity points.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cryptobot.store.types import ExactDecimal

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _child(name: str, *columns: sa.Column, pk: tuple[str, ...] = ("run_id", "seq")) -> None:
    fk = sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=f"fk_{name}_run_id_runs", ondelete="CASCADE"
    )
    op.create_table(
        name,
        sa.Column("run_id", sa.Integer(), nullable=False),
        *columns,
        fk,
        sa.PrimaryKeyConstraint(*pk, name=f"pk_{name}"),
    )


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("data_source", sa.String(1000), nullable=False),
        sa.Column("oi_synthetic", sa.Boolean(), nullable=False),
        sa.Column("settings_json", sa.JSON(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("summary_json", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    _child(
        "gate_decisions",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("size_factor", sa.Float(), nullable=False),
        sa.Column("reasons_json", sa.JSON(), nullable=False),
        sa.Column("inputs_json", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
    )
    _child(
        "signals",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("signal_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("spike_ms", sa.BigInteger(), nullable=False),
        sa.Column("decided_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("metrics_json", sa.JSON(), nullable=False),
        sa.Column("setup_events_json", sa.JSON(), nullable=False),
        sa.Column("gate_seq", sa.Integer(), nullable=True),
    )
    _child(
        "orders",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("qty_base", ExactDecimal(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(1000), nullable=False),
    )
    _child(
        "fills",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("qty_base", ExactDecimal(), nullable=False),
        sa.Column("fee_usdt", ExactDecimal(), nullable=False),
        sa.Column("is_maker", sa.Boolean(), nullable=False),
    )
    _child(
        "trades",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("signal_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("entry_ms", sa.BigInteger(), nullable=False),
        sa.Column("exit_ms", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", ExactDecimal(), nullable=False),
        sa.Column("qty_base", ExactDecimal(), nullable=False),
        sa.Column("initial_stop", ExactDecimal(), nullable=False),
        sa.Column("entry_fee_usdt", ExactDecimal(), nullable=False),
        sa.Column("funding_usdt", ExactDecimal(), nullable=False),
        sa.Column("pnl_usdt", ExactDecimal(), nullable=True),
        sa.Column("r_multiple", ExactDecimal(), nullable=True),
        sa.Column("exit_reason", sa.String(32), nullable=False),
        sa.Column("gate_seq", sa.Integer(), nullable=True),
    )
    _child(
        "trade_legs",
        sa.Column("trade_seq", sa.Integer(), nullable=False),
        sa.Column("leg_index", sa.Integer(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("price", ExactDecimal(), nullable=False),
        sa.Column("qty_base", ExactDecimal(), nullable=False),
        sa.Column("fee_usdt", ExactDecimal(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        pk=("run_id", "trade_seq", "leg_index"),
    )
    _child(
        "equity_points",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("equity_usdt", ExactDecimal(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "equity_points",
        "trade_legs",
        "trades",
        "fills",
        "orders",
        "signals",
        "gate_decisions",
        "runs",
    ):
        op.drop_table(name)
