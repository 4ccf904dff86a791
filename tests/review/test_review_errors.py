"""Missing, empty or corrupted stores and unknown runs: one clear line, exit 2, no traceback."""

from __future__ import annotations

import sqlite3

import pytest

COMMANDS = [("runs",), ("trades",), ("trades", "--json"), ("signals",)]


def _assert_clean_failure(result: tuple[int, str, str], expected: str) -> None:
    code, out, err = result
    assert code == 2
    assert err.startswith("error: ") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err + out


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_database(run_cli, tmp_path, command):
    path = tmp_path / "missing.sqlite"
    _assert_clean_failure(run_cli(*command, "--db", f"sqlite:///{path}"), "no such database")
    assert not path.exists()


def test_missing_database_for_report(run_cli, tmp_path):
    result = run_cli(
        "report", "--db", f"sqlite:///{tmp_path / 'x.sqlite'}", "--out", str(tmp_path / "r.html")
    )
    _assert_clean_failure(result, "no such database")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("command", [("trades",), ("signals",), ("report", "--out", "r.html")])
def test_empty_database(run_cli, tmp_path, command):
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    _assert_clean_failure(run_cli(*command, "--db", f"sqlite:///{path}"), "empty database")


def test_store_without_runs(run_cli, tmp_path):
    from cryptobot.clock import LiveClock
    from cryptobot.store import SqlRecorder

    url = f"sqlite:///{tmp_path / 'schema_only.sqlite'}"
    SqlRecorder(url, clock=LiveClock()).close()
    code, out, _ = run_cli("runs", "--db", url)
    assert code == 0 and "No runs stored" in out
    _assert_clean_failure(run_cli("trades", "--db", url), "no runs stored yet")


@pytest.mark.parametrize("command", [("trades",), ("signals",), ("report", "--out", "r.html")])
def test_unknown_run_id(run_cli, stored, command):
    url, _ = stored
    _assert_clean_failure(run_cli(*command, "--db", url, "--run", "42"), "unknown run id 42")


def _execute(url: str, sql: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


@pytest.mark.parametrize(
    ("sql", "command", "table"),
    [
        ("UPDATE signals SET setup_events_json = '[[1,2]]'", ("signals",), "signals"),
        (
            "UPDATE gate_decisions SET action = 'MAYBE'",
            ("report", "--out", "r.html"),
            "gate_decisions",
        ),
    ],
)
def test_corrupted_row(run_cli, stored, sql, command, table):
    url, _ = stored
    _execute(url, sql)
    _assert_clean_failure(run_cli(*command, "--db", url), f"corrupted row in {table}")


def test_a_number_that_is_not_one(run_cli, tmp_path, sample_run):
    """Only SQLite can hold it (PostgreSQL's NUMERIC refuses)."""
    from tests.store.backends import record_sample

    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    record_sample(url, sample_run)
    _execute(url, "UPDATE trades SET pnl_usdt = 'lots', entry_price = 'lots'")
    _assert_clean_failure(run_cli("trades", "--db", url), "corrupted row in trades")
