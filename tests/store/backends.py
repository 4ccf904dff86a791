"""The databases the store, review and concurrency tests run against: SQLite always, PostgreSQL
when a server is reachable.

PostgreSQL comes from the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE),
as `pg_virtualenv` exports it; .ci/run runs the whole suite under `pg_virtualenv`. Each test
(and each benchmark round) gets a new database, dropped afterwards. The benchmarks use this
module too: pytest is imported only by the fixture helpers at the end.
"""

from __future__ import annotations

import functools
import getpass
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL, create_engine, text

BACKENDS = ("sqlite", "postgresql")
HOW_TO_GET_ONE = "run the tests under `pg_virtualenv` (apt-get install postgresql), as .ci/run does"


def postgres_server_url() -> URL:
    """The server's maintenance database as a `postgresql+psycopg://` URL (the PG* variables)."""
    host = os.environ.get("PGHOST", "")
    query = {}
    if host.startswith("/"):  # a socket folder, not a host name
        query, host = {"host": host}, ""
    port = os.environ.get("PGPORT")
    return URL.create(
        "postgresql+psycopg",
        username=os.environ.get("PGUSER") or getpass.getuser(),
        password=os.environ.get("PGPASSWORD") or None,
        host=host or None,
        port=int(port) if port else None,
        database=os.environ.get("PGDATABASE") or "postgres",
        query=query,
    )


@functools.cache
def postgres_unavailable() -> str | None:
    """Why no PostgreSQL can be used here (None: one is reachable)."""
    if not os.environ.get("PGHOST"):
        return f"no PostgreSQL: PGHOST is not set; {HOW_TO_GET_ONE}"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "no PostgreSQL driver: psycopg is not installed (pip install -e '.[dev]')"
    engine = create_engine(postgres_server_url(), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means: not reachable, say why
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL at {postgres_server_url().render_as_string()} not reachable: {first}"
    finally:
        engine.dispose()
    return None


@contextmanager
def new_postgres_database(prefix: str = "cryptobot_test") -> Iterator[str]:
    """A new, empty database on the server; yields its URL (password included), then drops it
    (closing whatever connections the code under test left open)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield postgres_server_url().set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def new_store_url(backend: str, folder: Path) -> Iterator[str]:
    """A URL for a store that does not exist yet: a SQLite file in `folder`, or a new PostgreSQL
    database (the caller checks `postgres_unavailable()` first)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'store' / 'cryptobot.sqlite'}"
        return
    with new_postgres_database() as url:
        yield url


def backend_url(request, tmp_path: Path) -> Iterator[str]:
    """For a fixture parametrized over BACKENDS: yields a new store URL, or skips the
    PostgreSQL case, saying why, when no server is reachable."""
    import pytest

    if request.param == "postgresql" and (reason := postgres_unavailable()):
        pytest.skip(reason)
    with new_store_url(request.param, tmp_path) as url:
        yield url


def record_sample(url: str, sample_run) -> dict:
    """Record the hand-made sample run (tests/store/sample_run.py) into `url`; what was sent."""
    from cryptobot.clock import LiveClock
    from cryptobot.store import SqlRecorder

    with SqlRecorder(url, clock=LiveClock()) as recorder:
        return sample_run.record_sample_run(recorder)
