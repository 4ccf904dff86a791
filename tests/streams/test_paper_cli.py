"""`cryptobot paper --replay` end to end through the CLI, on 127.0.0.1 only."""

from __future__ import annotations

import json
import logging
import re

from cryptobot.clock import iso_utc
from cryptobot.logs import process_log_path
from tests.conftest import DATA_DIR, REPO_ROOT

CONFIG = str(REPO_ROOT / "config" / "replay.toml")  # paper.toml + the bundled macro data
CRASH = str(DATA_DIR / "btc_2024-08_crash")


def _config(tmp_path, extra: str = "") -> str:
    """config/replay.toml with the JSON log and the kill-switch file in tmp_path."""
    path = tmp_path / "paper.toml"
    path.write_text(f'extends = "{CONFIG}"\n[logging]\ndir = "{tmp_path / "logs"}"\n'
                    f'[risk]\nkill_switch_file = "{tmp_path / "KILL"}"\n{extra}')
    return str(path)


def _log_lines(tmp_path) -> list[dict]:
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    text = process_log_path(tmp_path / "logs").read_text()  # this process's own file
    return [json.loads(line) for line in text.splitlines()]


def test_replay_prints_heartbeats_signals_and_where_the_run_is_stored(run_cli, tmp_path):
    db = f"sqlite:///{tmp_path / 'paper.sqlite'}"
    code, out, err = run_cli("paper", "--config", _config(tmp_path), "--replay",
                             str(DATA_DIR / "btc_2024-08_crash"), "--symbol", "BTC/USDT:USDT",
                             "--from", "2024-08-04", "--to", "2024-08-05", "--db", db)
    assert code == 0, err
    heartbeats = [line for line in out.splitlines() if " close " in line and " gate " in line]
    assert len(heartbeats) == 2 * 96  # one per closed 15m candle over two days
    assert heartbeats[0].startswith("2024-08-04T00:15Z")
    assert "SIGNAL" in out and "paper run finished" in out
    assert "stored in" in out and (tmp_path / "paper.sqlite").exists()
    assert f"cryptobot report --db {db} --run 1 --out report.html" in out
    assert "warm-up short:" in out  # the data starts 2024-07-22: 13 of the 31 days


def test_a_replay_logs_its_signals_orders_and_fills_at_simulated_time(run_cli, tmp_path):
    config = _config(tmp_path, "[strategy.params]\noi_confirmation = false\n")
    code, out, err = run_cli("paper", "--config", config, "--replay", CRASH, "--from",
                             "2024-08-04", "--to", "2024-08-04", "--no-heartbeat",
                             "--db", f"sqlite:///{tmp_path / 'p.sqlite'}")
    assert code == 0, err
    lines = _log_lines(tmp_path)
    events = [line.get("event") for line in lines]
    assert events[0] == "run_start" and events[-1] == "run_finish"
    for kind in ("signal", "gate", "order", "fill"):
        assert kind in events, kind
    fills = [line for line in lines if line.get("event") == "fill"]
    assert len(fills) == out.count("FILL ")  # what the console showed, the log holds
    # the replay's simulated clock, not the time it ran at; the stream's own lines too
    assert all("2024-08-04" <= iso_utc(line["ts_ms"]) <= "2024-08-05T00:00:00Z"
               for line in lines)
    assert all(fill["fill_time"] <= iso_utc(fill["ts_ms"]) for fill in fills)
    assert not any("time" in fill for fill in fills)  # one line time: ts_ms
    code, tail, err = run_cli("logs", "tail", "--dir", str(tmp_path / "logs"), "-n", "500")
    assert code == 0, err
    assert "fill BTCUSDT-20240804T1730-entry buy" in tail and "run finished" in tail


def test_the_kill_switch_file_stops_a_paper_session(run_cli, tmp_path):
    (tmp_path / "KILL").write_text("")
    db = f"sqlite:///{tmp_path / 'k.sqlite'}"
    code, out, err = run_cli("paper", "--config", _config(tmp_path), "--replay", CRASH,
                             "--from", "2024-08-04", "--to", "2024-08-05", "--db", db)
    assert code == 0, err
    from cryptobot.store.reader import StoreReader

    reader = StoreReader(db)
    run_id = reader.resolve_run(None)
    summary, info = reader.summary(run_id), reader.run_info(run_id)
    reader.close()
    # the store keeps the span asked for; the summary says when and why it really stopped
    assert summary["stopped_early"] == "kill switch"
    assert info.start_ms <= summary["stopped_ms"] < info.end_ms
    assert "kill switch file" in out and "paper session stopped" in out
    heartbeats = [line for line in out.splitlines() if " close " in line and " gate " in line]
    assert len(heartbeats) <= 1  # it stopped at the first event, not after two days
    assert "session_stopped" in [line.get("event") for line in _log_lines(tmp_path)]


def test_missing_replay_folder_is_one_line_and_exit_code_2(run_cli, tmp_path):
    code, out, err = run_cli("paper", "--config", CONFIG, "--replay", str(tmp_path / "nope"))
    assert code == 2
    assert err.startswith("error: ") and "nope" in err and len(err.strip().splitlines()) == 1


def test_from_without_replay_is_refused(run_cli):
    code, _, err = run_cli("paper", "--config", CONFIG, "--from", "2024-08-01")
    assert code == 2 and "--replay" in err


def test_a_two_symbol_replay_names_each_symbol_and_stores_both(run_cli, tmp_path):
    """Real BTC and ETH 15m candles; both enter on 2024-08-09 14:15 (and are stopped out)."""
    from cryptobot.store.reader import StoreReader

    config = _config(tmp_path, '[market]\nbase_timeframe = "15m"\n'
                               "[strategy.params]\noi_confirmation = false\n")
    db = f"sqlite:///{tmp_path / 'two.sqlite'}"
    code, out, err = run_cli("paper", "--config", config, "--replay",
                             str(DATA_DIR / "btc_eth_2024-08_15m"), "--symbol",
                             "BTC/USDT:USDT,ETH/USDT:USDT", "--from", "2024-08-09", "--to",
                             "2024-08-09", "--db", db)
    assert code == 0, err
    said = " ".join(out.split())
    for symbol in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        assert said.count(f"Z {symbol} close ") == 96  # its own heartbeat per 15m candle
        assert f"SIGNAL 2024-08-09T14:15Z {symbol} spike" in said
        assert f"{symbol} long 2024-08-09T14:15:00Z" in said  # its trade at the end
        # known when its 15m candle closed, filled at that candle's open
        assert re.search(rf"FILL 2024-08-09T14:30Z {re.escape(symbol)} entry buy \S+ @ \S+ "
                         r"fill time 14:15Z ", said), said
        assert f"TRADE {symbol} long 2024-08-09T14:15Z -> " in said
    assert "streaming 192 candles from ws://127.0.0.1:" in said  # both, on one stream
    reader = StoreReader(db)
    info, trades = reader.run_info(1), reader.trades(1)
    reader.close()
    assert info.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    assert sorted(trade.symbol for trade, _ in trades) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
