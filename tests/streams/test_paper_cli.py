"""`cryptobot paper --replay` end to end through the CLI, on 127.0.0.1 only."""

from __future__ import annotations

from tests.conftest import DATA_DIR, REPO_ROOT

CONFIG = str(REPO_ROOT / "config" / "paper.toml")


def test_replay_prints_heartbeats_signals_and_where_the_run_is_stored(run_cli, tmp_path):
    db = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    code, out, err = run_cli("paper", "--config", CONFIG, "--replay",
                             str(DATA_DIR / "btc_2024-08_crash"), "--symbol", "BTC/USDT:USDT",
                             "--from", "2024-08-04", "--to", "2024-08-05", "--db", db)
    assert code == 0, err
    heartbeats = [line for line in out.splitlines() if " close " in line and " gate " in line]
    assert len(heartbeats) == 2 * 96  # one per closed 15m candle over two days
    assert heartbeats[0].startswith("2024-08-04T00:15Z")
    assert "SIGNAL" in out and "paper run finished" in out
    assert "stored in" in out and (tmp_path / "paper.sqlite").exists()


def test_missing_replay_folder_is_one_line_and_exit_code_2(run_cli, tmp_path):
    code, out, err = run_cli("paper", "--config", CONFIG, "--replay", str(tmp_path / "nope"))
    assert code == 2
    assert err.startswith("error: ") and "nope" in err and len(err.strip().splitlines()) == 1


def test_from_without_replay_is_refused(run_cli):
    code, _, err = run_cli("paper", "--config", CONFIG, "--from", "2024-08-01")
    assert code == 2 and "--replay" in err
