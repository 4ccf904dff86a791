"""Copy an older bot's live state file (`live_state.sqlite`) into the store.

Before the store held the live broker's state (migration 0003), the broker kept it in a SQLite
file of its own, by default `logs/live_state.sqlite`. Its open positions and working orders are
what a restarted bot reconciles with the exchange, so they must not be left behind:
`import_live_state` copies every row into the store in one transaction, leaves alone any row
whose key the store already holds (running it again imports nothing new), then renames the file
to `<name>.imported` so that nothing reads it twice. `build_live_broker` calls
`import_legacy_live_state` at every live start; `cryptobot db import-live-state PATH` imports any
other file. A file that is not such a database is refused with one StoreError, before the store
is touched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cryptobot.errors import StoreError
from cryptobot.store.database import masked_url, open_for_writing
from cryptobot.store.tables import Base, LiveFillRow, LiveOrderRow, LivePositionRow

log = logging.getLogger(__name__)

LEGACY_FILE_NAME = "live_state.sqlite"  # the old default `live.state_url`, in logging.dir
IMPORTED_SUFFIX = ".imported"
_ROWS: tuple[type[Base], ...] = (LiveOrderRow, LiveFillRow, LivePositionRow)
_KEYS_PER_QUERY = 500  # under every database's limit of bound parameters


@dataclass(frozen=True)
class LiveImportCounts:
    """Rows copied into the store (rows it already held are not counted)."""

    orders: int
    fills: int
    positions: int
    renamed_to: Path

    @property
    def total(self) -> int:
        return self.orders + self.fills + self.positions

    def describe(self) -> str:
        return (f"{self.orders} orders, {self.fills} fills, {self.positions} positions "
                f"(the old file is now {self.renamed_to})")


def import_live_state(store_url: str, sqlite_path: str | Path) -> LiveImportCounts:
    """Copy the live state file's orders, fills and positions into the store at `store_url`."""
    path = Path(sqlite_path)
    rows = _read_live_state_file(path)
    engine = open_for_writing(store_url)
    try:
        with engine.begin() as connection:
            added = {table: _insert_new(connection, table, rows[table]) for table in _ROWS}
    except SQLAlchemyError as exc:
        raise StoreError(f"{masked_url(store_url)}: cannot import {path}: "
                         f"{str(exc).strip().splitlines()[0]}") from None
    finally:
        engine.dispose()
    return LiveImportCounts(added[LiveOrderRow], added[LiveFillRow], added[LivePositionRow],
                            _set_aside(path))


def import_legacy_live_state(store_url: str, log_dir: str | Path) -> LiveImportCounts | None:
    """At live start: import `<log_dir>/live_state.sqlite` if an older bot left one there."""
    path = Path(log_dir) / LEGACY_FILE_NAME
    if not path.is_file() or _is_the_store(path, store_url):
        return None  # none, or the store itself (`live.state_url` was `store.url`)
    counts = import_live_state(store_url, path)
    log.warning("imported the old live state %s into %s: %s", path, masked_url(store_url),
                counts.describe())
    return counts


def _is_the_store(path: Path, store_url: str) -> bool:
    try:
        url = make_url(store_url)
    except ArgumentError:
        return False  # opening the store says what is wrong with its URL
    return (url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            and Path(url.database).resolve() == path.resolve())


def _read_live_state_file(path: Path) -> dict[type[Base], list[dict[str, Any]]]:
    """Every row of the three tables, as the store's own column types read them (exact
    decimals, booleans); a StoreError, naming the file, if it is not a live state file."""
    if not path.is_file():
        raise StoreError(f"{path}: no such file (the old live state, e.g. logs/{LEGACY_FILE_NAME})")
    # read-write, as the old bot opened it: SQLite rolls back what a killed bot left half-written
    engine = create_engine(URL.create("sqlite", database=str(path)))
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            if "alembic_version" in tables:
                raise StoreError(f"{path}: is a cryptobot store, not an old live state file")
            missing = [table.__tablename__ for table in _ROWS if table.__tablename__ not in tables]
            if missing:
                raise StoreError(f"{path}: not a live state file (no {', '.join(missing)} table)")
            return {table: _rows_of(connection, table) for table in _ROWS}
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"{path}: not a live state file ({reason})") from None
    finally:
        engine.dispose()


def _rows_of(connection: Connection, table: type[Base]) -> list[dict[str, Any]]:
    """The table's rows in the old file; a column added since (live_positions.side) is left
    out, for the store's default to fill in."""
    present = {column["name"] for column in inspect(connection).get_columns(table.__tablename__)}
    columns = [column for column in table.__table__.columns if column.name in present]
    return [dict(row) for row in connection.execute(select(*columns)).mappings()]


def _insert_new(connection: Connection, table: type[Base], rows: list[dict[str, Any]]) -> int:
    (key,) = table.__table__.primary_key.columns
    present: set[Any] = set()
    keys = [row[key.name] for row in rows]
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start:start + _KEYS_PER_QUERY]
        present.update(connection.scalars(select(key).where(key.in_(chunk))))
    new = [row for row in rows if row[key.name] not in present]
    if new:
        connection.execute(table.__table__.insert(), new)
    return len(new)


def _set_aside(path: Path) -> Path:
    """Rename the imported file; an earlier import's `.imported` file is kept, not replaced."""
    target, number = path.with_name(path.name + IMPORTED_SUFFIX), 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}{IMPORTED_SUFFIX}.{number}")
    path.rename(target)
    return target
