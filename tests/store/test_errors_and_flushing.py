"""Store failures are one-line StoreErrors; buffered rows reach the database when promised."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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


def test_empty_file_and_empty_schema_say_no_runs(tmp_path, db_url):
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(StoreError, match="empty database"):
        open_store(f"sqlite:///{empty}")
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


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("UPDATE trades SET entry_price = 'abc' WHERE seq = 2", "trades"),
        ("UPDATE trade_legs SET price = 'x1' WHERE trade_seq = 1", "trade_legs"),
        ("UPDATE signals SET metrics_json = '{not json' WHERE seq = 1", "signals"),
        ("UPDATE signals SET status = 'maybe' WHERE seq = 3", "signals"),
        ("UPDATE trades SET side = 'sideways' WHERE seq = 1", "trades"),
        ("DELETE FROM trade_legs WHERE trade_seq = 2", "trades"),
        ("UPDATE signals SET gate_seq = 999 WHERE seq = 2", "signals"),
    ],
)
def test_corrupted_rows_name_their_table(stored_run, sql, table):
    url, _ = stored_run
    with sqlite3.connect(_path(url)) as raw:
        raw.execute(sql)
    store = open_store(url)
    with pytest.raises(StoreError, match=f"run 1: corrupted row in {table}") as exc:
        store.load_run(1)
    _one_line(exc)


def _fill(ts_ms: int) -> Fill:
    return Fill(
        "c1", "BTC/USDT:USDT", ts_ms, Side.BUY, 54321.1, 0.01, 0.27, False, OrderPurpose.ENTRY
    )


def _info() -> RunInfo:
    return RunInfo("live", "binanceusdm", "BTC/USDT:USDT", None, None, "stream", {})


def test_commit_each_event_survives_a_crash(db_url):
    recorder = SqlRecorder(db_url, clock=LiveClock(), commit_each_event=True)
    run = recorder.start_run(_info())
    recorder.fill(_fill(1722816000000))
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
