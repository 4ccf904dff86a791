"""The live broker's state (orders, fills, positions) moves into the store.

It had its own database (`live.state_url`), whose tables the broker made with `create_all`; its
old file is copied in by `cryptobot.store.live_import`. A store that already holds these tables
(`live.state_url` pointed at the store itself) keeps them: they are the very same tables.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cryptobot.store.types import ExactDecimal

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("live_orders", "live_fills", "live_positions")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "live_orders" not in existing:
        op.create_table(
            "live_orders",
            sa.Column("client_id", sa.String(36), nullable=False),
            sa.Column("signal_id", sa.String(128), nullable=False),
            sa.Column("symbol", sa.String(64), nullable=False),
            sa.Column("purpose", sa.String(16), nullable=False),
            sa.Column("side", sa.String(8), nullable=False),
            sa.Column("order_type", sa.String(16), nullable=False),
            sa.Column("qty_base", ExactDecimal(), nullable=False),
            sa.Column("price", ExactDecimal(), nullable=True),
            sa.Column("reduce_only", sa.Boolean(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("exchange_order_id", sa.String(64), nullable=True),
            sa.Column("created_ms", sa.BigInteger(), nullable=False),
            sa.Column("updated_ms", sa.BigInteger(), nullable=False),
            sa.Column("detail", sa.String(500), nullable=False),
            sa.PrimaryKeyConstraint("client_id", name="pk_live_orders"),
        )
        for column in ("signal_id", "status", "exchange_order_id"):
            op.create_index(f"ix_live_orders_{column}", "live_orders", [column])
    if "live_fills" not in existing:
        op.create_table(
            "live_fills",
            sa.Column("trade_id", sa.String(64), nullable=False),
            sa.Column("client_id", sa.String(36), nullable=False),
            sa.Column("signal_id", sa.String(128), nullable=False),
            sa.Column("symbol", sa.String(64), nullable=False),
            sa.Column("ts_ms", sa.BigInteger(), nullable=False),
            sa.Column("side", sa.String(8), nullable=False),
            sa.Column("price", ExactDecimal(), nullable=False),
            sa.Column("qty_base", ExactDecimal(), nullable=False),
            sa.Column("fee_usdt", ExactDecimal(), nullable=False),
            sa.Column("is_maker", sa.Boolean(), nullable=False),
            sa.Column("purpose", sa.String(16), nullable=False),
            sa.PrimaryKeyConstraint("trade_id", name="pk_live_fills"),
        )
        op.create_index("ix_live_fills_client_id", "live_fills", ["client_id"])
    if "live_positions" not in existing:
        op.create_table(
            "live_positions",
            sa.Column("signal_id", sa.String(128), nullable=False),
            sa.Column("symbol", sa.String(64), nullable=False),
            sa.Column("qty_base", ExactDecimal(), nullable=False),
            sa.Column("entry_price", ExactDecimal(), nullable=False),
            sa.Column("stop_price", ExactDecimal(), nullable=True),
            sa.Column("opened_ms", sa.BigInteger(), nullable=False),
            sa.Column("is_open", sa.Boolean(), nullable=False),
            sa.Column("adopted", sa.Boolean(), nullable=False),
            sa.Column("close_reason", sa.String(500), nullable=False),
            sa.PrimaryKeyConstraint("signal_id", name="pk_live_positions"),
        )
        for column in ("symbol", "is_open"):
            op.create_index(f"ix_live_positions_{column}", "live_positions", [column])


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
