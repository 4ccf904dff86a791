"""Opening a store: URL checks, engine, and the Alembic upgrade to head (in code, no alembic.ini).

`open_for_writing` creates what is missing (the SQLite file and its folder, the schema);
`open_for_reading` never creates anything: a missing file or an empty database is a StoreError.
Both bring an older cryptobot schema up to head, so stored runs survive new columns.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cryptobot.errors import StoreError
from cryptobot.secrets import redact

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def describe(url: str) -> str:
    """The URL without its password, for messages."""
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
    return Path(parsed.database)


def _engine(url: str) -> Engine:
    try:
        return create_engine(url)
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"{describe(url)}: cannot open database: {exc}") from None


def _alembic_config(engine_connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = engine_connection
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, url: str, revision: str = "head") -> None:
    """Apply the packaged migrations up to `revision` (head by default)."""
    try:
        with engine.begin() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if current == head_revision() and revision == "head":
                return
            command.upgrade(_alembic_config(connection), revision)
    except CommandError as exc:
        raise StoreError(
            f"{describe(url)}: schema revision not known to this cryptobot ({exc})"
        ) from None
    except SQLAlchemyError as exc:
        raise StoreError(
            f"{describe(url)}: cannot migrate the database: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_is_ours(engine: Engine, url: str, *, allow_empty: bool) -> None:
    try:
        tables = set(inspect(engine).get_table_names())
    except SQLAlchemyError as exc:
        raise StoreError(f"{describe(url)}: not a readable database: {_first_line(exc)}") from None
    if "alembic_version" in tables:
        return
    if not tables and allow_empty:
        return
    if not tables:
        raise StoreError(f"{describe(url)}: empty database: no runs stored yet")
    raise StoreError(
        f"{describe(url)}: not a cryptobot database (tables {', '.join(sorted(tables)[:5])})"
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
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = _engine(url)
    if path is not None:
        event.listen(engine, "connect", _sqlite_for_live_writes)
    _check_is_ours(engine, url, allow_empty=True)
    upgrade(engine, url)
    return engine


def open_for_reading(url: str) -> Engine:
    path = _sqlite_path(url)
    if path is not None and not path.is_file():
        raise StoreError(f"{path}: no such database (a backtest with --db {url} creates it)")
    engine = _engine(url)
    _check_is_ours(engine, url, allow_empty=False)
    upgrade(engine, url)
    return engine
