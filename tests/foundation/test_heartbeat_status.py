"""The heartbeat a paper or live run keeps in logs/, and `cryptobot status --stale-after`, which
exits 1 for a silent run (killed with -9, stuck) or when none is running. (A finished paper
run's heartbeat: tests/notify/test_paper_notifications.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from cryptobot.clock import LiveClock, SimClock
from cryptobot.heartbeat import Heartbeat, read_heartbeats
from tests.conftest import DATA_DIR, REPO_ROOT

MINUTE_MS = 60_000


def _config(tmp_path) -> str:
    path = tmp_path / "paper.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / "replay.toml"}"\n[logging]\n'
                    f'dir = "{tmp_path / "logs"}"\n[risk]\n'
                    f'kill_switch_file = "{tmp_path / "KILL"}"\n')
    return str(path)


def _beat_at(log_dir, ago_ms: int, mode: str = "live", name: str | None = None) -> None:
    """A heartbeat last written `ago_ms` before now (as another process's, if `name`)."""
    beat = Heartbeat(log_dir, SimClock(LiveClock().now_ms() - ago_ms), mode,
                     ("BTC/USDT:USDT",))
    beat.beat("7")
    if name is not None:
        os.replace(beat.path, beat.path.with_name(name))


def test_a_run_that_beat_lately_is_alive_and_one_that_did_not_is_silent(run_cli, tmp_path):
    logs = tmp_path / "logs"
    _beat_at(logs, 2 * MINUTE_MS)
    code, out, err = run_cli("status", "--stale-after", "5m", "--dir", str(logs))
    assert code == 0, err
    assert "live run 7 (BTC/USDT:USDT, pid" in out and "alive (last beat 12" in out
    code, out, err = run_cli("status", "--stale-after", "90s", "--dir", str(logs))
    assert code == 1 and "SILENT for 12" in out and "1 silent, 0 running" in err
    # a run killed for good stays silent until its file goes: the line says which one
    (beat,) = logs.glob("*.heartbeat")
    assert f"delete its heartbeat {beat} and `status` forgets it" in " ".join(out.split())
    beat.unlink()
    code, out, err = run_cli("status", "--stale-after", "90s", "--dir", str(logs))
    assert "SILENT" not in out and "0 silent, 0 running" in err


def test_a_restarted_run_replaces_the_one_that_died(run_cli, tmp_path):
    logs = tmp_path / "logs"
    _beat_at(logs, 60 * MINUTE_MS, name="cryptobot-20240101T000000Z-1.heartbeat")  # killed
    _beat_at(logs, 1 * MINUTE_MS)  # started again later
    assert len(read_heartbeats(logs)) == 2
    code, out, err = run_cli("status", "--stale-after", "5m", "--dir", str(logs))
    assert code == 0, (out, err)
    assert "SILENT" not in out and len(out.strip().splitlines()) == 1


def test_no_run_or_a_bad_span(run_cli, tmp_path):
    code, _, err = run_cli("status", "--dir", str(tmp_path))
    assert code == 1 and "0 silent, 0 running" in err
    code, _, err = run_cli("status", "--stale-after", "5 minutes", "--dir", str(tmp_path))
    assert code == 2 and err.startswith("error: --stale-after '5 minutes'")


def test_a_run_killed_with_sigkill_turns_silent(run_cli, tmp_path):
    """A real paper process (a slow replay), alive by its heartbeat, then killed with -9."""
    logs = tmp_path / "logs"
    process = subprocess.Popen(
        [sys.executable, "-c", "from cryptobot.cli import main; main()", "paper", "--config",
         _config(tmp_path),
         "--replay", str(DATA_DIR / "btc_2024-08_crash"), "--from", "2024-08-05", "--to",
         "2024-08-06", "--speed", "600", "--no-heartbeat",
         "--db", f"sqlite:///{tmp_path / 'k.sqlite'}"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not read_heartbeats(logs) or read_heartbeats(logs)[0].run_id is None:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        code, out, err = run_cli("status", "--stale-after", "30s", "--dir", str(logs))
        assert code == 0 and "paper run 1" in out and "alive" in out, (out, err)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    time.sleep(2.5)
    code, out, err = run_cli("status", "--stale-after", "2s", "--dir", str(logs))
    assert code == 1 and "SILENT" in out, (out, err)
