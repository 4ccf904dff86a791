"""Store failures are one-line StoreErrors; buffered rows reach the database when promised."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cryptobot.clock import LiveClock
from cryptobot.engine.recorder import RunInfo
from cryptobot.errors import StoreError
from cryptobot.model import Fill, OrderPurpose, Side
from cryptobot.store import SqlRecorder, open_store


def _path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_missing_file_is_an_error_and_is_not_created(tmp_path):
    path = tmp_path / "nowhere" / "missing.sqlite"
    with pytest.raises(StoreError) as exc:
        open_store(f"sqlite:///{path}")
    assert "no such database" in _one_line(exc) and str(path) in str(exc.value)
    assert not path.exists() and not path.parent.exists()


def test_empty_database_and_empty_schema_say_no_runs(db_url):
    if db_url.startswith("sqlite"):
        _path(db_url).parent.mkdir(parents=True)
        sqlite3.connect(_path(db_url)).close()  # an empty file
    with pytest.raises(StoreError, match="empty database"):
        open_store(db_url)
    SqlRecorder(db_url, clock=LiveClock()).close()  # schema, no runs
    store = open_store(db_url)
    assert store.runs() == []
    with pytest.raises(StoreError, match="no runs stored yet"):
        store.resolve_run(None)


def test_unknown_run_id(stored_run):
    url, _ = stored_run
    store = open_store(url)
    for wanted in ("99", "abc"):
        with pytest.raises(StoreError, match="unknown run id") as exc:
            store.resolve_run(wanted)
        _one_line(exc)


def test_not_a_database_and_foreign_database(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable database"):
        open_store(f"sqlite:///{garbage}")
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as raw:
        raw.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not a cryptobot database"):
        open_store(f"sqlite:///{foreign}")
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("definitely not a url")


def _execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


def _assert_corrupted(url: str, table: str) -> None:
    store = open_store(url)
    with pytest.raises(StoreError, match=f"run 1: corrupted row in {table}") as exc:
        store.load_run(1)
    _one_line(exc)
    store.close()


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("UPDATE signals SET status = 'maybe' WHERE seq = 3", "signals"),
        ("UPDATE trades SET side = 'sideways' WHERE seq = 1", "trades"),
        ("DELETE FROM trade_legs WHERE trade_seq = 2", "trades"),
        ("UPDATE signals SET gate_seq = 999 WHERE seq = 2", "signals"),
    ],
)
def test_corrupted_rows_name_their_table(stored_run, sql, table):
    url, _ = stored_run
    _execute(url, sql)
    _assert_corrupted(url, table)


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("UPDATE trades SET entry_price = 'abc' WHERE seq = 2", "trades"),
        ("UPDATE trade_legs SET price = 'x1' WHERE trade_seq = 1", "trade_legs"),
        ("UPDATE signals SET metrics_json = '{not json' WHERE seq = 1", "signals"),
    ],
)
def test_values_of_the_wrong_type_name_their_table(stored_sqlite_run, sql, table):
    """Only SQLite can hold these (PostgreSQL's column types refuse them)."""
    url, _ = stored_sqlite_run
    _execute(url, sql)
    _assert_corrupted(url, table)


def _fill(ts_ms: int) -> Fill:
    return Fill(
        "c1", "BTC/USDT:USDT", ts_ms, Side.BUY, 54321.1, 0.01, 0.27, False, OrderPurpose.ENTRY
    )


def _info() -> RunInfo:
    return RunInfo("live", "binanceusdm", ("BTC/USDT:USDT",), None, None, "stream", {})


def test_a_flushed_event_survives_a_crash(db_url):
    recorder = SqlRecorder(db_url, clock=LiveClock(), flush_every=None)
    run = recorder.start_run(_info())
    recorder.fill(_fill(1722816000000))
    recorder.flush()  # what live and paper do once an event is handled
    # No finish_run, no close: as if the process died right after the fill.
    assert open_store(db_url).fills(int(run)) == [_fill(1722816000000)]


def test_buffer_flushes_every_n_rows_and_on_flush(db_url):
    recorder = SqlRecorder(db_url, clock=LiveClock(), flush_every=10)
    run = int(recorder.start_run(_info()))
    for i in range(9):
        recorder.equity(1722816000000 + i, 10_000.0 + i)
    assert open_store(db_url).equity(run) == []  # still buffered
    recorder.equity(1722816000009, 10_009.0)
    assert len(open_store(db_url).equity(run)) == 10
    recorder.fill(_fill(1722816000010))
    recorder.flush()
    assert len(open_store(db_url).fills(run)) == 1
    recorder.finish_run({"trades": 0})
    assert open_store(db_url).summary(run) == {"trades": 0}


def test_a_store_in_a_folder_nobody_may_write_is_still_read(stored_sqlite_run, monkeypatch):
    url, sent = stored_sqlite_run
    folder = _path(url).parent
    assert not list(folder.glob("*-wal"))  # the writer closed cleanly: all in the file
    folder.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root may write anywhere: make the folder look read-only
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK
                                and real_access(path, mode))
        store = open_store(url)
        assert store.trades(1) == sent["trades"]
        store.close()
    finally:
        folder.chmod(0o755)
    assert not list(folder.glob("*-shm"))  # nothing written beside it


def test_a_database_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(StoreError, match="cannot create the database folder") as exc:
        SqlRecorder(f"sqlite:///{tmp_path / 'a_file' / 'db' / 'runs.sqlite'}", clock=LiveClock())
    _one_line(exc)
