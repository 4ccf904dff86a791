"""Alembic migrations of the store, applied in code by `cryptobot.store.database`."""
