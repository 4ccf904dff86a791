"""`cryptobot paper --resume`: a paper replay stopped by a real signal (SIGTERM, SIGHUP, or
SIGKILL in the middle of a candle or just after its commit) and resumed, as often as it takes,
ends with exactly the stored rows of an uninterrupted run: signals, orders, fills, trades, gate
decisions, signal candles and open interest.

The bundled crash window (real Binance candles, SYNTHETIC open interest, so `oi_confirmation =
false` as in the other replay tests), 2024-08-04..05: a spike at 17:30, entry at 18:15, TP1, a
trailing stop; two more spikes and trades on the 5th. Each process is
`tests/resume/interrupt_paper.py`, which signals itself at the chosen moment.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cryptobot.store import open_store
from tests.conftest import DATA_DIR, REPO_ROOT

CRASH = str(DATA_DIR / "btc_2024-08_crash")
WINDOW = ("--from", "2024-08-04", "--to", "2024-08-05")


def _config(folder) -> str:
    path = folder / "paper.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / "replay.toml"}"\n'
                    f'[logging]\ndir = "{folder / "logs"}"\n'
                    f'[risk]\nkill_switch_file = "{folder / "KILL"}"\n'
                    "[feed]\nwarmup_days = 4\n"  # short: the test is about the run, not ATR%
                    "[strategy.params]\noi_confirmation = false\n")
    return str(path)


def _paper(folder, db: str, *extra: str, signal: str | None = None,
           when: str = "", committed: bool = False) -> subprocess.CompletedProcess:
    args = ["paper", "--config", _config(folder), "--replay", CRASH, *WINDOW, "--speed", "0",
            "--no-heartbeat", "--db", db, *extra]
    command = [sys.executable, "-c", "from cryptobot.cli import main; main()"]
    if signal is not None:
        command = [sys.executable, "-m", "tests.resume.interrupt_paper", signal, when,
                   *(["committed"] if committed else []), "--"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*command, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def _rows(db: str) -> dict[str, list]:
    store = open_store(db)
    try:
        run_id = store.resolve_run(None)
        return {
            "signals": store.signals(run_id), "orders": store.orders(run_id),
            "fills": store.fills(run_id), "trades": store.trades(run_id),
            "gate_decisions": store.gate_decisions(run_id), "candles": store.candles(run_id),
            # the contracts (the rule's input); the USD value depends on which request got it
            "open_interest": [(s.ts_ms, s.oi_contracts) for s in store.open_interest(run_id)],
        }
    finally:
        store.close()


def _summary(db: str) -> dict:
    store = open_store(db)
    try:
        return store.summary(store.resolve_run(None))
    finally:
        store.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, list]:
    folder = tmp_path_factory.mktemp("reference")
    db = f"sqlite:///{folder / 'paper.sqlite'}"
    done = _paper(folder, db)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(db)
    assert len(rows["trades"]) == 3 and any(  # the comparison is about something
        leg.reason == "tp1" for trade, _ in rows["trades"] for leg in trade.legs)
    return rows


def _assert_same_run(db: str, reference: dict[str, list]) -> None:
    rows = _rows(db)
    for name, expected in reference.items():
        assert rows[name] == expected, name
    assert _summary(db)["stopped_early"] is None


def test_sighup_at_a_pending_setup_then_sigterm_after_tp1_resume_to_the_same_run(
        tmp_path, uninterrupted):
    db = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    first = _paper(tmp_path, db, signal="HUP", when="setup")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "stopping (SIGHUP)" in first.stdout
    stopped = _summary(db)
    assert stopped["stopped_early"] == "SIGHUP" and stopped["open_position"] is None
    # the spike was seen, its decision not made yet: only the resumed run can make it
    spike_ms = uninterrupted["signals"][0][0].spike_ms
    assert _rows(db)["signals"] == [] and spike_ms < stopped["stopped_ms"]

    second = _paper(tmp_path, db, "--resume", signal="TERM", when="tp1")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed run 1" in second.stdout and "stopping (SIGTERM)" in second.stdout
    held = _summary(db)["open_position"]
    assert held is not None and held["qty"] < held["qty_at_entry"]  # break-even, trailing

    last = _paper(tmp_path, db, "--resume")
    assert last.returncode == 0, last.stderr[-2000:]
    assert "position BTCUSDT-20240804T1730 restored" in last.stdout
    _assert_same_run(db, uninterrupted)


def test_kill9_after_an_entry_was_sent_then_in_the_middle_of_a_candle_resume_to_the_same_run(
        tmp_path, uninterrupted):
    db = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    first = _paper(tmp_path, db, signal="KILL", when="entry", committed=True)
    assert first.returncode == -9, first.stderr[-2000:]
    stored = _rows(db)
    assert len(stored["signals"]) == 1 and stored["fills"] == []  # the entry is working

    second = _paper(tmp_path, db, "--resume", "1", signal="KILL", when="tp1")
    assert second.returncode == -9, second.stderr[-2000:]
    assert "entry BTCUSDT-20240804T1730 pending" in second.stdout
    # the candle that filled TP1 was lost whole: stored up to its entry and stop, no further
    assert [f.purpose.value for f in _rows(db)["fills"]] == ["entry"]

    last = _paper(tmp_path, db, "--resume")
    assert last.returncode == 0, last.stderr[-2000:]
    _assert_same_run(db, uninterrupted)


def test_resume_refuses_a_finished_run_and_a_run_id_without_resume(tmp_path, run_cli):
    db = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    done = _paper(tmp_path, db)
    assert done.returncode == 0, done.stderr[-2000:]
    code, _, err = run_cli("paper", "--config", _config(tmp_path), "--replay", CRASH,
                           "--db", db, "--resume", "1")
    assert code == 2 and err.strip() == "error: run 1 is finished: nothing to resume"
    code, _, err = run_cli("paper", "--config", _config(tmp_path), "--replay", CRASH,
                           "--db", db, "--resume")
    assert code == 2 and "no unfinished paper run" in err
    code, _, err = run_cli("paper", "--config", _config(tmp_path), "--replay", CRASH,
                           "--db", db, "1")
    assert code == 2 and "goes with --resume" in err
