"""`cryptobot paper --resume` of a two-symbol replay: every symbol's engine gets its own
history, position or pending entry back, the account its equity; killed (kill -9) and resumed
twice, the run ends with exactly the stored rows of an uninterrupted one.

data/btc_eth_2024-08_15m (real Binance BTCUSDT and ETHUSDT 15m candles, no open interest:
`oi_confirmation = false`), 2024-08-09..12: both symbols enter at 14:15 on the 9th (the
setups pending from 13:30), and again at 21:45 on the 11th (issue 16's same-candle
confirmations). The first kill lands right after one symbol's candle was committed and before
the other's (the two got unequally far); the second in the middle of the candle where the
first entry fills, so both symbols come back with an entry pending. Each process is
`tests/resume/interrupt_paper.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cryptobot.store import open_store
from tests.conftest import DATA_DIR, REPO_ROOT

DATA = str(DATA_DIR / "btc_eth_2024-08_15m")
SYMBOLS = "BTC/USDT:USDT,ETH/USDT:USDT"
WINDOW = ("--from", "2024-08-09", "--to", "2024-08-12")


def _config(folder) -> str:
    path = folder / "paper.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / "replay.toml"}"\n'
                    f'[logging]\ndir = "{folder / "logs"}"\n'
                    f'[risk]\nkill_switch_file = "{folder / "KILL"}"\n'
                    "[feed]\nwarmup_days = 4\n"
                    '[market]\nbase_timeframe = "15m"\n'
                    "[strategy.params]\noi_confirmation = false\n")
    return str(path)


def _paper(folder, db: str, *extra: str, signal: str | None = None, when: str = "",
           committed: bool = False) -> subprocess.CompletedProcess:
    args = ["paper", "--config", _config(folder), "--replay", DATA, "--symbol", SYMBOLS,
            *WINDOW, "--speed", "0", "--no-heartbeat", "--db", db, *extra]
    command = [sys.executable, "-c", "from cryptobot.cli import main; main()"]
    if signal is not None:
        command = [sys.executable, "-m", "tests.resume.interrupt_paper", signal, when,
                   *(["committed"] if committed else []), "--"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*command, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _rows(db: str) -> dict[str, list]:
    store = open_store(db)
    try:
        run_id = store.resolve_run(None)
        return {"signals": store.signals(run_id), "orders": store.orders(run_id),
                "fills": store.fills(run_id), "trades": store.trades(run_id),
                "gate_decisions": store.gate_decisions(run_id),
                "candles": store.candles(run_id), "equity": store.equity(run_id),
                "symbols": [store.run_info(run_id).symbols]}
    finally:
        store.close()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, list]:
    folder = tmp_path_factory.mktemp("reference")
    db = f"sqlite:///{folder / 'paper.sqlite'}"
    done = _paper(folder, db)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(db)
    traded = [trade.symbol for trade, _ in rows["trades"]]
    assert sorted(traded) == sorted(["BTC/USDT:USDT", "ETH/USDT:USDT"] * 2)  # about something
    return rows


def test_two_symbols_killed_twice_resume_to_the_same_run(tmp_path, uninterrupted):
    db = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    # the 101st base candle (both symbols counted): BTC's is committed, ETH's never handled
    first = _paper(tmp_path, db, signal="KILL", when="candle:101", committed=True)
    assert first.returncode == -9, first.stderr[-2000:]
    stored = _rows(db)["candles"]
    assert [c.symbol for c in stored[-2:]] == ["ETH/USDT:USDT", "BTC/USDT:USDT"]

    second = _paper(tmp_path, db, "--resume", signal="KILL", when="position")
    assert second.returncode == -9, second.stderr[-2000:]
    assert "replayed 101 candles of its history, 0 trades so far, flat" in " ".join(
        second.stdout.split())
    # killed inside the candle that filled the first entry: it was lost whole, so both
    # entries (sent on the candle before, one per symbol) are stored as working, unfilled
    stored = _rows(db)
    assert [s.symbol for s, _ in stored["signals"]] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert stored["fills"] == []

    last = _paper(tmp_path, db, "--resume")
    assert last.returncode == 0, last.stderr[-2000:]
    said = " ".join(last.stdout.split())
    assert ("entry BTCUSDT-20240809T1330 pending, entry ETHUSDT-20240809T1330 pending"
            in said)
    rows = _rows(db)
    for name, expected in uninterrupted.items():
        assert rows[name] == expected, name


def test_how_far_each_symbol_got_in_an_ordered_replay_and_on_a_live_stream():
    """Hand-made rows, 1m base candles: ETH's last row closes 00:10, BTC's 00:16."""
    from cryptobot.model import Candle
    from cryptobot.runners.restore import handled_by_symbol

    btc, eth, minute = "BTC/USDT:USDT", "ETH/USDT:USDT", 60_000
    rows = [Candle(0, 10 * minute, 1.0, 1.0, 1.0, 1.0, 1.0, eth),
            Candle(0, 15 * minute, 1.0, 1.0, 1.0, 1.0, 1.0, btc),
            Candle(15 * minute, minute, 1.0, 1.0, 1.0, 1.0, 1.0, btc)]
    live = handled_by_symbol(0, (btc, eth), rows, [], [], [])
    assert live == {btc: 16 * minute, eth: 10 * minute}  # each its own rows only
    # a replay's stream is ordered (close, then symbol): ETH's candles to 00:15 came before
    # BTC's 00:16 one, so they were handled, rows or not; ETH's 00:16 came after it
    replay = handled_by_symbol(0, (btc, eth), rows, [], [], [], stream_interval_ms=minute)
    assert replay == {btc: 16 * minute, eth: 15 * minute}
    swapped = handled_by_symbol(0, (eth, btc), rows, [], [], [], stream_interval_ms=minute)
    assert swapped == {btc: 16 * minute, eth: 16 * minute}  # ETH first: its 00:16 came first
    assert handled_by_symbol(0, (btc,), rows[1:2], [], [], []) == {btc: 15 * minute}
