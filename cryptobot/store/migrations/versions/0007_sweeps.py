"""Parameter sweeps (issue 18): `sweeps` and one `sweep_results` row per combination.

New tables only, touching nothing stored: this migration can follow any revision (only
`down_revision` names its place in the chain).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("grid_json", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("scheduler", sa.String(300), nullable=False),
        sa.Column("config_path", sa.String(1000), nullable=False),
        sa.Column("data_source", sa.String(1000), nullable=False),
        sa.Column("symbols_json", sa.JSON(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("walk_forward", sa.String(32), nullable=True),
        sa.Column("metric", sa.String(64), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    op.create_table(
        "sweep_results",
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("combination", sa.Integer(), nullable=False),
        sa.Column("window", sa.Integer(), nullable=True),
        sa.Column("phase", sa.String(8), nullable=True),
        sa.Column("start_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ms", sa.BigInteger(), nullable=True),
        sa.Column("params_json", sa.JSON(), nullable=False),
        sa.Column("summary_json", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("detail_json", sa.JSON(), nullable=True),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["sweep_id"], ["sweeps.id"], ondelete="CASCADE",
                                name=op.f("fk_sweep_results_sweep_id_sweeps")),
        sa.PrimaryKeyConstraint("sweep_id", "seq", name=op.f("pk_sweep_results")),
    )


def downgrade() -> None:
    op.drop_table("sweep_results")
    op.drop_table("sweeps")
