"""The live state's statements on an order's path: a few reads by condition, and writes of
whole rows or of columns by primary key, each write one transaction.

On SQLite (`SqliteStatements`) through one held connection of the driver. An order waits on
a few of them (its look-up by client id, the rails' reads, the write of its intent, its
status once accepted). Through SQLAlchemy each paid a pool check-out, a
transaction's bookkeeping, the compiled cache's look-up and the result's machinery: 50-100 µs
alone, several times that inside a busy session. Here each is the SQL text SQLAlchemy would
send for the table (its columns in the table's order), executed on the sqlite3 connection of
a pooled connection held for the state's life, its values converted by the column types' own
bind and result processors (the decimal columns' exact text, booleans): the same rows read and
written. A write's statements are one transaction, committed before the call returns; on any
error it is rolled back and the error raised as SQLAlchemy's (its DBAPIError wrapping).
A read outside a transaction sees every commit so far, of this process or another (e.g.
`cryptobot kill` closing positions while the bot runs): nothing is cached between calls.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, Table, bindparam, insert, select, text, update
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("cryptobot.live.state")
Processor = Callable[[Any], Any] | None
UPSERT_SINCE = (3, 24, 0)  # SQLite's INSERT ... ON CONFLICT DO UPDATE
_KEY = "key_"  # the bound key of an update's WHERE (not a column's name: SET binds those)


class _TableCodec:
    """One table's column names, their bind and result processors, and its statements."""

    def __init__(self, table: Table, engine: Engine) -> None:
        dialect = engine.dialect
        quote = dialect.identifier_preparer.quote
        self.columns = tuple(column.key for column in table.columns)  # the rows' dict keys
        self._sql_names = {column.key: quote(column.name) for column in table.columns}
        self.key = table.primary_key.columns[0].key
        types = [column.type.dialect_impl(dialect) for column in table.columns]  # as compiled
        self.binds: dict[str, Processor] = {
            column.key: kind.bind_processor(dialect)
            for column, kind in zip(table.columns, types, strict=True)}
        self.results: tuple[Processor, ...] = tuple(
            kind.result_processor(dialect, None) for kind in types)
        sql = self._sql_names
        names, key, self.name = ", ".join(sql.values()), sql[self.key], quote(table.name)
        self.select = f"SELECT {names} FROM {self.name}"
        self.upsert = (f"INSERT INTO {self.name} ({names}) VALUES "
                       f"({', '.join('?' * len(self.columns))}) ON CONFLICT ({key}) DO "
                       "UPDATE SET " + ", ".join(f"{sql[name]} = excluded.{sql[name]}"
                                                 for name in self.columns if name != self.key))
        self._updates: dict[tuple[str, ...], str] = {}
        self._selects: dict[tuple[str, ...], tuple[str, tuple[str, ...],
                                                   tuple[Processor, ...]]] = {}

    def selecting(self, columns: tuple[str, ...] | None
                  ) -> tuple[str, tuple[str, ...], tuple[Processor, ...]]:
        """The SELECT of `columns` (None: every column), their names and result processors."""
        if columns is None:
            return self.select, self.columns, self.results
        found = self._selects.get(columns)
        if found is None:
            indexes = [self.columns.index(name) for name in columns]
            found = self._selects[columns] = (
                f"SELECT {', '.join(self._sql_names[name] for name in columns)} "
                f"FROM {self.name}", columns, tuple(self.results[index] for index in indexes))
        return found

    def bound(self, names: Iterable[str], values: dict[str, object]) -> list[object]:
        found = []
        for name in names:
            value, bind = values[name], self.binds[name]
            found.append(value if bind is None or value is None else bind(value))
        return found

    def update(self, names: tuple[str, ...]) -> str:
        text = self._updates.get(names)
        if text is None:
            sql = self._sql_names
            text = self._updates[names] = (
                f"UPDATE {self.name} SET " + ", ".join(f"{sql[name]} = ?" for name in names)
                + f" WHERE {sql[self.key]} = ?")
        return text


class SqliteStatements:
    """`tables`' rows read and written on one held connection of `engine` (SQLite)."""

    def __init__(self, engine: Engine, tables: Iterable[Table]) -> None:
        self._held = engine.raw_connection()  # its pool's connect hooks ran (WAL, pragmas)
        # one thread's: the connection has no lock, and two threads' statements would mix
        # inside one write's transaction
        self._owner = threading.get_ident()
        self._driver = self._held.driver_connection
        self._codecs = {table.name: _TableCodec(table, engine) for table in tables}
        self.writes = 0  # committed since the last checkpoint

    def close(self) -> None:
        self._held.close()  # back to its pool

    def _check_thread(self) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError("the live state's held SQLite connection was used from a thread "
                               "other than the one that opened it")

    def checkpoint(self) -> None:
        """The WAL's frames moved into the database, as far as no reader holds them back."""
        self.writes = 0
        statement = "PRAGMA wal_checkpoint(PASSIVE)"
        try:
            self._driver.execute(statement).fetchall()
        except sqlite3.Error as exc:
            raise _wrapped(statement, exc) from exc

    def rows(self, table: Table, where: str, params: Sequence[object] = (), order_by: str = "",
             columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The rows of `table` matching `where` (SQL, `?` for each of `params`), as dicts of
        `columns` (None: every column)."""
        self._check_thread()
        select_sql, names, results = self._codecs[table.name].selecting(columns)
        statement = f"{select_sql} WHERE {where}" + (f" ORDER BY {order_by}" if order_by else "")
        try:
            raw = self._driver.execute(statement, params).fetchall()
        except Exception as exc:
            raise _wrapped(statement, exc) from exc
        return [{name: value if convert is None else convert(value)
                 for name, value, convert in zip(names, found, results, strict=True)}
                for found in raw]

    def write(self, upserts: Iterable[tuple[Table, dict[str, object]]] = (),
              updates: Iterable[tuple[Table, object, dict[str, object]]] = ()) -> int:
        """Whole rows inserted or overwritten (`upserts`: every column given) and rows set by
        primary key (`updates`: table, key, values), in one transaction; rows updated."""
        self._check_thread()
        changed = 0
        statement = ""
        try:
            for table, values in upserts:
                codec = self._codecs[table.name]
                statement = codec.upsert
                self._driver.execute(statement, codec.bound(codec.columns, values))
            for table, key, values in updates:
                codec = self._codecs[table.name]
                names = tuple(values)
                statement = codec.update(names)
                changed += self._driver.execute(
                    statement, [*codec.bound(names, values), key]).rowcount
            self._driver.commit()
            self.writes += 1
        except BaseException as exc:
            try:
                self._driver.rollback()
            except sqlite3.Error as failed:  # the write's own error is the one to raise
                log.warning("rolling back a failed write of the live state failed: %s", failed)
            if isinstance(exc, Exception):
                raise _wrapped(statement, exc) from exc
            raise
        return changed


def _wrapped(statement: str, exc: Exception) -> Exception:
    """A driver error as SQLAlchemy raises it (callers handle SQLAlchemy's tree)."""
    return DBAPIError.instance(statement, None, exc, sqlite3.Error) \
        if isinstance(exc, sqlite3.Error) else exc


class CoreStatements:
    """The same statements through SQLAlchemy Core, on any database (PostgreSQL: each commit
    is a round trip to the server, which this path's overhead is small beside)."""

    def __init__(self, engine: Engine, tables: Iterable[Table]) -> None:
        self._engine = engine
        tables = tuple(tables)
        # built once, their values bound at each execution: SQLAlchemy finds each compiled
        # again by its cache key (a statement built per call paid that key's making)
        self._updates = {table.name: update(table).where(
            table.primary_key.columns[0] == bindparam(_KEY)) for table in tables}
        self._inserts = {table.name: insert(table) for table in tables}
        self._selects: dict[tuple[str, str, str, tuple[str, ...] | None], Any] = {}

    writes = 0  # a server database needs no checkpoint

    def close(self) -> None:
        """Nothing held."""

    def checkpoint(self) -> None:
        """A server database needs none."""

    def rows(self, table: Table, where: str, params: Sequence[object] = (), order_by: str = "",
             columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        key = (table.name, where, order_by, columns)
        query = self._selects.get(key)
        if query is None:
            named = where
            for index in range(where.count("?")):
                named = named.replace("?", f":p{index}", 1)
            query = (select(table) if columns is None else select(
                *(table.c[name] for name in columns))).where(text(named))
            if order_by:
                query = query.order_by(text(order_by))
            query = self._selects[key] = query
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(
                query, {f"p{index}": value for index, value in enumerate(params)})]

    def write(self, upserts: Iterable[tuple[Table, dict[str, object]]] = (),
              updates: Iterable[tuple[Table, object, dict[str, object]]] = ()) -> int:
        changed = 0
        with self._engine.begin() as connection:
            for table, values in upserts:  # what `Session.merge` did
                key = values[table.primary_key.columns[0].key]
                if not connection.execute(self._updates[table.name],
                                          {**values, _KEY: key}).rowcount:
                    connection.execute(self._inserts[table.name], values)
            for table, key, values in updates:
                changed += connection.execute(self._updates[table.name],
                                              {**values, _KEY: key}).rowcount
        return changed


def statements_for(engine: Engine, tables: Iterable[Table]) -> SqliteStatements | CoreStatements:
    """SQLite's held connection for a database file (SQLite 3.24 or later: its upsert), Core
    for the rest."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" \
            and sqlite3.sqlite_version_info >= UPSERT_SINCE:
        return SqliteStatements(engine, tables)
    return CoreStatements(engine, tables)
