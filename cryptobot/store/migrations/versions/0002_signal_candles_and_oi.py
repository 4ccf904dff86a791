"""Signal candles and OI samples the run saw, for the report's charts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _run_fk(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=f"fk_{name}_run_id_runs", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "signal_candles",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts_open_ms", sa.BigInteger(), nullable=False),
        sa.Column("interval_ms", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        _run_fk("signal_candles"),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_signal_candles"),
    )
    op.create_table(
        "oi_samples",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("oi_contracts", sa.Float(), nullable=False),
        sa.Column("oi_value_usdt", sa.Float(), nullable=True),
        _run_fk("oi_samples"),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_oi_samples"),
    )


def downgrade() -> None:
    op.drop_table("oi_samples")
    op.drop_table("signal_candles")
