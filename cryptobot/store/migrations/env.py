"""Alembic environment: run on the connection `cryptobot.store.database` hands over.

That connection is already in a transaction and holds the migration lock (PostgreSQL's advisory
lock, or SQLite's lock file), so one process at a time migrates a database; Alembic joins the
transaction instead of opening its own. No alembic.ini and no logging set-up here: the bot
configures its own logging.
"""

from __future__ import annotations

from alembic import context

from cryptobot.store.tables import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER most things, so later migrations copy tables instead.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
