"""A store URL is never printed with its password; a run that never started leaves no run row."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cryptobot.clock import LiveClock
from cryptobot.engine.recorder import RunInfo
from cryptobot.errors import StoreError
from cryptobot.store import SqlRecorder, masked_url, open_store
from tests.store.backends import new_postgres_database, postgres_unavailable

REPO = Path(__file__).resolve().parents[2]
CRASH = str(REPO / "data" / "btc_2024-08_crash")
PASSWORD = "never-shown-pw"
UNREACHABLE = f"postgresql+psycopg://bot:{PASSWORD}@127.0.0.1:9/runs"  # the discard port


def test_masked_url_hides_only_the_password():
    assert masked_url(UNREACHABLE) == "postgresql+psycopg://bot:***@127.0.0.1:9/runs"
    assert masked_url("sqlite:///logs/cryptobot.sqlite") == "sqlite:///logs/cryptobot.sqlite"
    assert masked_url("not a url at all") == "not a url at all"


@pytest.mark.parametrize("command", [("runs",), ("trades",), ("report", "--out", "r.html")])
def test_an_unreachable_database_is_one_line_without_the_password(run_cli, command):
    code, out, err = run_cli(*command, "--db", UNREACHABLE)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert PASSWORD not in out + err and "bot:***@127.0.0.1:9/runs" in err


def test_urls_in_the_stored_settings_have_no_password(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    settings = {"store": {"url": UNREACHABLE},
                "feed": {"rest_url": UNREACHABLE, "ws_url": "wss://fstream.binance.com/ws"}}
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        recorder.start_run(RunInfo("backtest", "binanceusdm", ("BTC/USDT:USDT",), 0, 1, "x",
                                   settings))
    stored = open_store(url).run_info(1).settings
    assert stored["store"]["url"] == stored["feed"]["rest_url"] == masked_url(UNREACHABLE)
    assert stored["feed"]["ws_url"] == "wss://fstream.binance.com/ws"


@pytest.fixture
def postgres_url():
    if reason := postgres_unavailable():
        pytest.skip(reason)
    with new_postgres_database() as url:
        yield url


def _config(tmp_path: Path, base: str = "default.toml", extra: str = "") -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'extends = "{REPO / "config" / base}"\n[logging]\n'
                    f'dir = "{tmp_path / "logs"}"\n[risk]\n'
                    f'kill_switch_file = "{tmp_path / "KILL"}"\n{extra}')
    return str(path)


def _log_text(tmp_path: Path) -> str:
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    return "".join(path.read_text() for path in (tmp_path / "logs").iterdir())


def test_a_backtest_on_postgresql_never_prints_its_password(run_cli, tmp_path, postgres_url):
    password = postgres_url.split(":")[2].split("@")[0]
    masked = masked_url(postgres_url)
    assert password and password not in masked
    args = ("backtest", "--config", _config(tmp_path), "--data", CRASH, "--from", "2024-08-04",
            "--to", "2024-08-06", "--db", postgres_url)
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    assert json.loads(out)["db"] == masked
    code, text_out, err = run_cli(*args)
    assert code == 0, err
    assert f"stored in {masked} (run 2)" in text_out
    for text in (out, text_out, err, _log_text(tmp_path)):
        assert password not in text
    code, runs_out, _ = run_cli("runs", "--db", postgres_url)
    assert code == 0 and password not in runs_out


def _run_rows(url: str) -> list:
    try:
        return open_store(url).runs()
    except StoreError as exc:
        assert "no such database" in str(exc) or "empty database" in str(exc)
        return []


@pytest.mark.parametrize(
    ("extra", "args", "expected"),
    [
        ('[strategy]\npath = "strategies.nowhere:Nothing"\n', (), "cannot import"),
        ("[strategy.params]\natr_period = -3\n", (), "strategy.params.atr_period"),
        ("", ("--from", "2024-05-01"), "2024-05-01"),
    ],
)
@pytest.mark.parametrize("mode", ["backtest", "paper"])
def test_a_run_that_fails_validation_leaves_no_run_row(run_cli, tmp_path, mode, extra, args,
                                                      expected):
    db = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    if mode == "backtest":
        command = ("backtest", "--config", _config(tmp_path, extra=extra), "--data", CRASH)
    else:
        command = ("paper", "--config", _config(tmp_path, "replay.toml", extra), "--replay",
                   CRASH, "--no-heartbeat")
    code, out, err = run_cli(*command, "--db", db, *args)
    assert code == 2 and expected in err and "Traceback" not in out + err
    assert _run_rows(db) == []
