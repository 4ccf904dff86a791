"""A sweep killed with -9 (or crashed) cannot mark itself in the store: its row stays
"running". Its heartbeat (beaten from a thread while it runs, cryptobot/heartbeat.py) tells
`cryptobot sweeps` that its process is gone or silent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from cryptobot.cli.sweep_view import SWEEP_SILENT_AFTER_MS, shown_status
from cryptobot.clock import LiveClock, SimClock
from cryptobot.heartbeat import Heartbeat, read_heartbeats
from cryptobot.store.sweeps import SweepInfo, SweepWriter
from tests.conftest import REPO_ROOT
from tests.sweep.conftest import CRASH, write_grid

INFO = SweepInfo({"grid": {"costs.funding": [True, False]}, "samples": None, "seed": 0}, 0,
                 "local, 1 worker process", "config/default.toml", "data/x",
                 ("BTC/USDT:USDT",), None, None)


def _heartbeat(log_dir, sweep_id: int, ago_ms: int, started_ms: int) -> Heartbeat:
    beat = Heartbeat(log_dir, SimClock(started_ms), "sweep", ("BTC/USDT:USDT",))
    beat.clock = SimClock(LiveClock().now_ms() - ago_ms)
    beat.beat(str(sweep_id))
    return beat


def _stored(db_url: str) -> SweepInfo:
    writer = SweepWriter(db_url, INFO, SimClock(1_800_000_000_000))
    writer.close()
    from cryptobot.store.sweeps import read_sweep

    return read_sweep(db_url, writer.sweep_id)[0]


def test_a_running_sweep_is_shown_by_what_its_heartbeat_says(tmp_path):
    info = _stored(f"sqlite:///{tmp_path / 's.sqlite'}")
    logs, now_ms = tmp_path / "logs", LiveClock().now_ms()
    assert shown_status(info, [], now_ms) == "running"  # no heartbeat here: as stored
    beat = _heartbeat(logs, info.sweep_id, 5_000, info.created_ms)  # this process: alive
    assert shown_status(info, read_heartbeats(logs), now_ms) == "running"
    beat.path.unlink()
    _heartbeat(logs, info.sweep_id, SWEEP_SILENT_AFTER_MS + 5_000, info.created_ms)
    assert shown_status(info, read_heartbeats(logs), now_ms).startswith(
        f"stopped (process {os.getpid()} silent since ")
    other = _stored(f"sqlite:///{tmp_path / 's.sqlite'}")  # another sweep: not its heartbeat
    assert shown_status(other, read_heartbeats(logs), now_ms) == "running"
    finished = _heartbeat(logs, info.sweep_id, 0, info.created_ms)
    finished.finish("finished")  # its end never reached the store
    assert shown_status(info, read_heartbeats(logs), now_ms) == "finished (not stored)"
    ended = SweepInfo(**{**INFO.__dict__, "sweep_id": info.sweep_id, "status": "interrupted"})
    assert shown_status(ended, read_heartbeats(logs), now_ms) == "interrupted"


def test_a_sweep_killed_with_sigkill_is_listed_as_stopped(run_cli, tmp_path):
    """A real `cryptobot sweep` (one Dask worker, eight combinations), listed as running while
    it beats, then killed with -9 with its workers."""
    logs, db = tmp_path / "logs", f"sqlite:///{tmp_path / 'sweeps.sqlite'}"
    config = tmp_path / "sweep.toml"
    config.write_text(f'extends = "{REPO_ROOT / "config" / "default.toml"}"\n'
                      f'[logging]\ndir = "{logs}"\n')
    grid = write_grid(tmp_path, {"exits.time_stop_hours": [6.0, 12.0, 18.0, 24.0],
                                 "costs.funding": [True, False]})
    process = subprocess.Popen(
        [sys.executable, "-c", "from cryptobot.cli import main; main()", "sweep", "--data",
         str(CRASH), "--grid", str(grid), "--config", str(config), "--workers", "1",
         "--db", db, "--json"],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not [b for b in read_heartbeats(logs) if b.mode == "sweep"]:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep never beat"
            time.sleep(0.05)
        code, out, err = run_cli("sweeps", "--db", db, "--config", str(config), "--json")
        assert code == 0, err
        (listed,) = json.loads(out)["sweeps"]
        assert listed["status"] == listed["shown_status"] == "running"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    code, out, err = run_cli("sweeps", "--db", db, "--config", str(config), "--json")
    assert code == 0, err
    (listed,) = json.loads(out)["sweeps"]
    assert listed["status"] == "running"  # as stored: nobody could mark it
    assert listed["shown_status"].startswith(f"stopped (process {process.pid} silent since ")
    code, out, err = run_cli("sweeps", "--db", db, "--config", str(config))
    assert code == 0 and f"stopped (process {process.pid}" in " ".join(out.split())
    # a trading run's watch (`cryptobot status`) is not about sweeps: none silent, none running
    code, out, err = run_cli("status", "--dir", str(logs))
    assert code == 1 and "sweep" not in out and "0 silent, 0 running" in err
