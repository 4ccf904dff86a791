"""`live_fills` indexed by time: the live broker's rails read today's fills before each entry
(the max daily loss); without the index that read scanned every fill the bot ever made, a
cost that grew with the bot's history on the path of every entry.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_live_fills_ts_ms", "live_fills", ["ts_ms"])


def downgrade() -> None:
    op.drop_index("ix_live_fills_ts_ms", table_name="live_fills")
