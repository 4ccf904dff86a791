"""The live broker's positions get their side: "long" or "short" (issue 15: shorts).

Every position stored before this revision was a long (the bot bought first), so the column
comes in as "long" for the existing rows.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("live_positions", sa.Column("side", sa.String(8), nullable=False,
                                              server_default="long"))


def downgrade() -> None:
    with op.batch_alter_table("live_positions") as batch:  # SQLite drops a column by copying
        batch.drop_column("side")
