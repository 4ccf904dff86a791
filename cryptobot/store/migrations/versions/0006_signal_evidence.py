"""Each signal stores the rebound's evidence (issue 17): `signals.evidence_json`, a JSON list of
{"name", "value", "holds", "detail"} items (engine/evidence.py). Signals stored before have
none: NULL, read as an empty list.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("signals", sa.Column("evidence_json", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signals") as batch:
        batch.drop_column("evidence_json")
