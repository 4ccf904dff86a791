"""Opening a store: URL checks, engine, and the Alembic upgrade to head (in code, no alembic.ini).

`open_for_writing` creates what is missing (the SQLite file and its folder, the schema);
`open_for_reading` never creates a database: a missing file or an empty database is a StoreError.
Both bring an older cryptobot schema up to head, so stored runs survive new columns.

Any number of processes may open the same new database at once: checking and migrating happen
one process at a time, under a lock the database's users share. PostgreSQL: a transaction-level
advisory lock (`pg_advisory_xact_lock`), taken on the connection that migrates, released with its
commit (DDL is transactional there: the others see the whole schema or none). SQLite: an
exclusive `flock` on `<database file>.lock` beside the file (SQLite creates tables outside the
migration's transaction, so a second process could see half a schema). In-memory SQLite and other
databases take no lock. A database already at head is opened without waiting for the lock, after
one query of its `alembic_version` against the head read from the migration files: Alembic
itself is imported only to migrate.

`masked_url` is the one way a store URL reaches a message, the console or a log: no password.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cryptobot.errors import StoreError
from cryptobot.json_text import json_encoder
from cryptobot.secrets import redact

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# One number for "cryptobot is migrating this database" (the bytes of "cryptobt" as an int64).
MIGRATION_LOCK_KEY = int.from_bytes(b"cryptobt", "big", signed=True)
# How long a SQLite connection waits for another process's write before "database is locked".
SQLITE_BUSY_TIMEOUT_S = 60.0


def masked_url(url: str) -> str:
    """The URL without its password (`postgresql+psycopg://bot:***@host/db`), for any output."""
    try:
        return redact(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return redact(url)



def _sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for other databases and in-memory SQLite)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"{redact(url)}: not a database URL (e.g. sqlite:///logs/cryptobot.sqlite)"
        ) from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # a URI filename: no folder of ours to lock in
        return None
    return Path(parsed.database)


# JSON columns as text on SQLite: `json.dumps`'s text without its circular-reference check (a
# quarter of the encoding; the values are plain data, `json_safe`'s), one encoder made once
_JSON_TEXT = json_encoder(check_circular=False)


def _engine(url: str, *, read_only_file: Path | None = None) -> Engine:
    try:
        parsed = make_url(url)
        if read_only_file is not None:
            # A folder nobody can write to: nobody can be writing the database either, and
            # SQLite could not create its WAL index there. Read the file as it is.
            parsed = parsed.set(database=f"file:{read_only_file}",
                                query={"mode": "ro", "immutable": "1", "uri": "true"})
        options: dict = {}
        if parsed.get_backend_name() == "sqlite":
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
            options["json_serializer"] = _JSON_TEXT
        return create_engine(parsed, **options)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"{masked_url(url)}: cannot open database: {_first_line(exc)}") from None


def _alembic_config(engine_connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = engine_connection
    return config


_REVISION_LINE = re.compile(r'^(down_revision|revision)\s*=\s*(?:"([^"]*)"|None)\s*$', re.M)


@cache
def head_revision() -> str:
    """The one head of the packaged migrations, read from their `revision`/`down_revision`
    lines: opening a current store then costs no import of Alembic (a test checks this is
    Alembic's own head)."""
    revisions: set[str] = set()
    replaced: set[str] = set()
    for script in MIGRATIONS_DIR.glob("versions/*.py"):
        found = dict((name, value) for name, value in _REVISION_LINE.findall(script.read_text()))
        revisions.add(found["revision"])
        if found.get("down_revision"):
            replaced.add(found["down_revision"])
    heads = revisions - replaced
    assert len(heads) == 1, f"the packaged migrations have heads {sorted(heads)}"
    return heads.pop()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path` (created if missing) for the block; without it if the
    folder is read-only (then nobody else can migrate the database there either)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            yield
            return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _migration_lock(engine: Engine, url: str) -> Iterator[Connection]:
    """A connection in a transaction that only one process at a time holds (see the module)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": MIGRATION_LOCK_KEY})
            yield connection
        return
    path = _sqlite_path(url) if engine.dialect.name == "sqlite" else None
    if path is None:
        with engine.begin() as connection:
            yield connection
        return
    with _file_lock(path.with_name(path.name + ".lock")), engine.begin() as connection:
        yield connection


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, url: str, revision: str = "head") -> None:
    """Apply the packaged migrations up to `revision` (head by default), under the lock."""
    _prepare(engine, url, revision=revision, allow_empty=True)


def _prepare(engine: Engine, url: str, *, revision: str = "head", allow_empty: bool) -> None:
    """Check the database is cryptobot's (or empty, if allowed) and bring it to `revision`."""
    if revision == "head" and (_stored_revision(engine) or _revision_now(engine, url)
                               ) == head_revision():
        return
    from alembic import command
    from alembic.util import CommandError

    try:
        with _migration_lock(engine, url) as connection:
            _check_is_ours(connection, url, allow_empty=allow_empty)
            if revision == "head" and _current_revision(connection) == head_revision():
                return  # another process migrated it while we waited
            command.upgrade(_alembic_config(connection), revision)
    except CommandError as exc:
        raise StoreError(
            f"{masked_url(url)}: schema revision not known to this cryptobot ({exc})"
        ) from None
    except SQLAlchemyError as exc:
        raise StoreError(
            f"{masked_url(url)}: cannot migrate the database: {_first_line(exc)}"
        ) from None


def _stored_revision(engine: Engine) -> str | None:
    """The one revision in `alembic_version`, in one query and without Alembic; None when that
    cannot be read so simply (no such table, several rows, not a database): `_revision_now`
    then looks properly."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:
        return None
    return rows[0][0] if len(rows) == 1 else None


def _revision_now(engine: Engine, url: str) -> str | None:
    """The stored revision, read without the lock (None: empty, foreign or not at head yet)."""
    try:
        with engine.connect() as connection:
            return _current_revision(connection)
    except SQLAlchemyError as exc:
        raise StoreError(f"{masked_url(url)}: not a readable database: {_first_line(exc)}"
                         ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_is_ours(connection: Connection, url: str, *, allow_empty: bool) -> None:
    try:
        tables = set(inspect(connection).get_table_names())
    except SQLAlchemyError as exc:
        raise StoreError(
            f"{masked_url(url)}: not a readable database: {_first_line(exc)}"
        ) from None
    if "alembic_version" in tables:
        return
    if not tables and allow_empty:
        return
    if not tables:
        raise StoreError(f"{masked_url(url)}: empty database: no runs stored yet")
    raise StoreError(
        f"{masked_url(url)}: not a cryptobot database (tables {', '.join(sorted(tables)[:5])})"
    )


def _sqlite_for_live_writes(dbapi_connection, _record) -> None:
    # WAL + synchronous=NORMAL: a committed fill survives a crash of the bot's process, and a
    # commit per event costs no fsync; readers (`cryptobot trades`) never block the writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_for_writing(url: str) -> Engine:
    path = _sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path.parent}: cannot create the database folder: "
                             f"{exc.strerror or exc}") from None
        if not path.exists():
            # A new file is migrated at once: Alembic is loaded before the file exists, so
            # that a reader never finds it empty for longer than the migration takes.
            import alembic.command  # noqa: F401
    engine = _engine(url)
    if path is not None:
        event.listen(engine, "connect", _sqlite_for_live_writes)
    _prepare(engine, url, allow_empty=True)
    return engine


def open_for_reading(url: str) -> Engine:
    path = _sqlite_path(url)
    if path is not None and not path.is_file():
        raise StoreError(
            f"{path}: no such database (a backtest with --db {masked_url(url)} creates it)"
        )
    read_only = path is not None and not os.access(path.parent, os.W_OK)
    engine = _engine(url, read_only_file=path.resolve() if read_only and path else None)
    _prepare(engine, url, allow_empty=False)
    return engine
