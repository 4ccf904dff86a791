"""A run watches a list of symbols (issue 16: many symbols in one run).

`runs.symbol` becomes `runs.symbols_json`, the run's symbols as a JSON list: a run stored before
held one symbol, so it reads as a one-symbol list. Signal candles and OI samples name their
symbol too (the rows of a stored run are its run's symbol), with an index for reading one run's
one symbol in order. Signals, orders, fills and trades named their symbol already.

SQLite cannot drop a column or make one NOT NULL in place: batch mode copies those tables
(foreign keys are not enforced on our SQLite connections, so copying `runs` touches no child).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MARKET_TABLES = ("signal_candles", "oi_samples")


def _runs(*columns: sa.ColumnClause) -> sa.TableClause:
    return sa.table("runs", sa.column("id", sa.Integer()), *columns)


def upgrade() -> None:
    old_runs = _runs(sa.column("symbol", sa.String()))
    for name in MARKET_TABLES:
        op.add_column(name, sa.Column("symbol", sa.String(64), nullable=True))
        table = sa.table(name, sa.column("run_id", sa.Integer()), sa.column("symbol", sa.String()))
        run_symbol = sa.select(old_runs.c.symbol).where(old_runs.c.id == table.c.run_id)
        op.execute(table.update().values(symbol=run_symbol.scalar_subquery()))
        with op.batch_alter_table(name) as batch:
            batch.alter_column("symbol", existing_type=sa.String(64), nullable=False)
            batch.create_index(f"ix_{name}_run_symbol", ["run_id", "symbol", "seq"])

    op.add_column("runs", sa.Column("symbols_json", sa.JSON(), nullable=True))
    runs = _runs(sa.column("symbol", sa.String()), sa.column("symbols_json", sa.JSON()))
    bind = op.get_bind()  # in Python, not SQL: JSON text is written alike on every database
    for run_id, symbol in bind.execute(sa.select(runs.c.id, runs.c.symbol)).all():
        bind.execute(runs.update().where(runs.c.id == run_id).values(symbols_json=[symbol]))
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("symbols_json", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("symbol")


def downgrade() -> None:
    """Back to one symbol per run: refused while a stored run holds several (the older
    schema cannot say which rows are whose)."""
    runs = _runs(sa.column("symbol", sa.String()), sa.column("symbols_json", sa.JSON()))
    bind = op.get_bind()
    stored = bind.execute(sa.select(runs.c.id, runs.c.symbols_json)).all()
    several = [str(run_id) for run_id, symbols in stored if len(symbols) != 1]
    if several:
        raise RuntimeError(f"cannot downgrade below 0005: runs {', '.join(several)} hold "
                           "several symbols")
    op.add_column("runs", sa.Column("symbol", sa.String(64), nullable=True))
    for run_id, symbols in stored:
        bind.execute(runs.update().where(runs.c.id == run_id).values(symbol=symbols[0]))
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("symbol", existing_type=sa.String(64), nullable=False)
        batch.drop_column("symbols_json")
    for name in MARKET_TABLES:
        with op.batch_alter_table(name) as batch:
            batch.drop_index(f"ix_{name}_run_symbol")
            batch.drop_column("symbol")
