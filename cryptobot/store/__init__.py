"""The SQL store: every run the bot makes, kept for review.

    SqlRecorder(url, *, clock, flush_every=5000)
        the engine's Recorder; `clock` stamps when a run was recorded (the wall clock);
        `flush()` writes the buffer; `run_id` after start_run
    open_store(url) -> StoreReader
        runs(), resolve_run(id | None), run_info(), run_symbols(), summary(), signals(),
        trades(), gate_decisions(), orders(), fills(), equity(), candles(), open_interest(),
        load_run(); the per-symbol ones take `symbols=[...]` (default: all the run's)
    masked_url(url) -> str
        the URL without its password: the only form in which a store URL is printed or logged
    live_import.import_live_state(url, path) -> LiveImportCounts
        an older bot's own live_state.sqlite copied in, once; the live broker's state now lives
        in the store's `live_*` tables (brokers/live/state.py reads and writes them)

Any SQLAlchemy URL works (SQLite by default; PostgreSQL is tested too). The schema is
Alembic-managed and brought to head whenever a store is opened, under a lock, so that many
processes can open one new database at once (see `database`). Problems are
`cryptobot.errors.StoreError`.
"""

from cryptobot.store.database import masked_url
from cryptobot.store.reader import RunListing, StoreReader, open_store
from cryptobot.store.sql_recorder import SqlRecorder

__all__ = ["RunListing", "SqlRecorder", "StoreReader", "masked_url", "open_store"]
