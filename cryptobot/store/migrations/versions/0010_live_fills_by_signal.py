"""`live_fills` indexed by signal: the live broker reads a signal's fills as each fill is
recorded and once an order's fills are read (what filled of it, the position's size); without
the index those reads scanned every fill the bot ever made, a cost that grew with its history
on the way from a fill to the take-profits it sizes.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_live_fills_signal_id", "live_fills", ["signal_id"])


def downgrade() -> None:
    op.drop_index("ix_live_fills_signal_id", table_name="live_fills")
