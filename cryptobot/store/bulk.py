"""Many rows of one table into the database at driver speed, inside the caller's transaction.

SQLAlchemy's `execute(insert(table), rows)` compiles and binds every row through its own
machinery: fine for a few rows, a third of a backtest's time for tens of thousands. Here the
column types still convert each value (the same bind processors SQLAlchemy would use: exact
decimals, JSON), then the driver takes the plain tuples: one `executemany` on SQLite (and any
other database), one `COPY ... FROM STDIN` on PostgreSQL through psycopg (a few rows of large
byte strings go as parameters there too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table


def bulk_insert(connection: Connection, table: Table, keys: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert `rows`, tuples of the values of the columns `keys` as the model has them; each
    column's type converts its values (as SQLAlchemy would) before the driver takes them."""
    if not rows:
        return
    dialect = connection.dialect
    # Column by column: each column's values through its type's bind processor in one pass
    # (or the type's own `bind_column`), then zipped back into the driver's tuples.
    columns: list[Sequence[Any]] = []
    for key, values in zip(keys, zip(*rows, strict=True), strict=True):
        column_type = table.columns[key].type
        bind_column = getattr(column_type, "bind_column", None)  # a whole column at once
        if bind_column is not None:
            columns.append(bind_column(list(values), dialect))
            continue
        process = column_type._cached_bind_processor(dialect)
        columns.append(values if process is None else list(map(process, values)))
    insert_tuples(connection, table, keys, list(zip(*columns, strict=True)))


def insert_tuples(connection: Connection, table: Table, keys: Sequence[str],
                  rows: Sequence[tuple[Any, ...]], *, copy: bool = True) -> None:
    """Insert `rows`, tuples of the values of the columns `keys` as the driver takes them
    (plain numbers, text and bytes; no conversion by the column types). `copy=False` for a few
    rows of large byte strings: PostgreSQL's text COPY would send them hex-encoded, parameters
    send them as they are."""
    if not rows:
        return
    dialect = connection.dialect
    columns = [table.columns[key] for key in keys]
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(column.name) for column in columns)
    target = quote(table.name)
    if copy and dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy(connection, f"COPY {target} ({names}) FROM STDIN", rows)
        return
    marks = ", ".join(_placeholder(dialect.paramstyle, index) for index in range(len(keys)))
    connection.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})", list(rows))


def _placeholder(paramstyle: str, index: int) -> str:
    return {"qmark": "?", "format": "%s", "numeric": f":{index + 1}",
            "pyformat": "%s"}.get(paramstyle, "?")


def _copy(connection: Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    driver_connection = connection.connection.driver_connection
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
