"""`cryptobot paper --replay` with CRYPTOBOT_NOTIFY_URLS set: the run's entries, exits, trades
and daily summaries reach a JSON webhook on 127.0.0.1; a notifier that is down changes nothing
in the run but one warning, which does not name the URL."""

from __future__ import annotations

import json
import logging
import time

from cryptobot.heartbeat import heartbeat_path
from cryptobot.logs import process_log_path
from cryptobot.secrets import NOTIFY_URLS_ENV
from cryptobot.store.reader import StoreReader
from tests.conftest import DATA_DIR, REPO_ROOT
from tests.notify.webhook import TOKEN, WebhookSink, closed_port_url

CRASH = str(DATA_DIR / "btc_2024-08_crash")


def _paper(run_cli, tmp_path, name: str) -> tuple[int, str, str, str]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "paper.toml"
    config.write_text(f'extends = "{REPO_ROOT / "config" / "replay.toml"}"\n[logging]\n'
                      f'dir = "{tmp_path / "logs"}"\n[risk]\n'
                      f'kill_switch_file = "{tmp_path / "KILL"}"\n')
    db = f"sqlite:///{tmp_path / name}"
    code, out, err = run_cli("paper", "--config", str(config), "--replay", CRASH, "--from",
                             "2024-08-05", "--to", "2024-08-06", "--no-heartbeat", "--db", db)
    return code, out, err, db


def _log_text(tmp_path) -> str:
    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    return process_log_path(tmp_path / "logs").read_text()


def test_a_paper_run_tells_its_entries_exits_trades_and_days(run_cli, tmp_path, monkeypatch):
    with WebhookSink() as hook:
        monkeypatch.setenv(NOTIFY_URLS_ENV, hook.url)
        code, out, err, db = _paper(run_cli, tmp_path, "p.sqlite")
        assert code == 0, err
        titles = hook.titles()
    reader = StoreReader(db)
    trades, fills = reader.trades(1), reader.fills(1)
    reader.close()
    assert len(trades) == 2  # the crash's two entries, as the demo trades them
    assert titles[0] == "cryptobot paper run 1: started"
    assert titles[-1] == "cryptobot paper run 1: finished"
    entries = [t for t in titles if ": entry BTC/USDT:USDT" in t]
    exits = [t for t in titles if ": exit BTC/USDT:USDT" in t]
    assert len(entries) == sum(f.purpose == "entry" for f in fills) == 2
    assert len(exits) == sum(f.purpose != "entry" for f in fills) == 3  # stop; tp1, trail
    assert sum(": trade closed" in t for t in titles) == 2
    assert "cryptobot paper run 1: day 2024-08-05" in titles
    day = hook.messages[titles.index("cryptobot paper run 1: day 2024-08-05")]["message"]
    pnl = sum(trade.pnl_usdt for trade, _ in trades)
    assert day.startswith(f"2 trades closed, PnL {pnl:+,.2f} USDT, equity ")
    assert TOKEN not in out + err + _log_text(tmp_path)
    # its heartbeat says it finished, and when its stream last spoke (the replay's clock)
    beat = json.loads(heartbeat_path(tmp_path / "logs").read_text())
    assert (beat["mode"], beat["run_id"], beat["finished"]) == ("paper", "1", True)
    assert beat["last_event_ms"] >= 1_722_902_400_000  # 2024-08-06
    code, out, err = run_cli("status", "--dir", str(tmp_path / "logs"))
    assert code == 1 and "paper run 1 (BTC/USDT:USDT" in out and "finished (finished)" in out


def test_a_notifier_that_is_down_does_not_fail_or_slow_the_run(run_cli, tmp_path,
                                                               monkeypatch):
    started = time.monotonic()
    code, out, err, db = _paper(run_cli, tmp_path / "quiet", "q.sqlite")
    quiet_s = time.monotonic() - started
    assert code == 0, err
    monkeypatch.setenv(NOTIFY_URLS_ENV, closed_port_url())
    started = time.monotonic()
    code, out_down, err, db_down = _paper(run_cli, tmp_path / "down", "d.sqlite")
    down_s = time.monotonic() - started
    assert code == 0, err
    assert down_s < quiet_s + 3.0, (quiet_s, down_s)
    journal = []
    for url in (db, db_down):
        reader = StoreReader(url)
        journal.append([(t.entry_ms, t.exit_ms, t.pnl_usdt) for t, _ in reader.trades(1)])
        reader.close()
    assert journal[0] == journal[1] and journal[0]
    log_text = _log_text(tmp_path / "down")
    warnings = [line for line in log_text.splitlines() if '"event": "notify_failed"' in line]
    assert len(warnings) == 1 and "json:// (URL 1)" in warnings[0]
    assert TOKEN not in log_text + out_down + err and "127.0.0.1:" not in warnings[0]
    assert "notifications to json:// (URL 1) failed" in err  # said once on the console too
