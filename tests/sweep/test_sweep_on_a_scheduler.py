"""`dask scheduler` and `dask worker` started as processes on 127.0.0.1, and sweeps sent to
the scheduler's address: a combination that fails records its error and the sweep goes on;
the same grid and seed give the same rows; a walk-forward reports only its test windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.sweep.conftest import CRASH, write_config, write_grid

DASK = Path(sys.executable).with_name("dask")
FAILING = "tests.sweep.failing_strategy:FailsWhenAsked"


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """The address of a scheduler with one worker (its own process, one thread)."""
    folder = tmp_path_factory.mktemp("dask")
    address_file = folder / "scheduler.json"
    # the worker imports the test strategy: the repository on its path
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    common = ["--no-dashboard"]
    processes = [subprocess.Popen(
        [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
         str(address_file), *common], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        processes.append(subprocess.Popen(
            [str(DASK), "worker", "--scheduler-file", str(address_file), "--nthreads", "1",
             "--no-nanny", "--local-directory", str(folder), *common], cwd=REPO_ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(address_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for process in reversed(processes):  # nothing of theirs outlives the test's folder
            process.kill()
            process.wait(timeout=30)


def _sweep(run_cli, *args: str) -> dict:
    code, out, err = run_cli("sweep", "--data", str(CRASH), *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_a_failed_combination_records_its_error_and_the_sweep_goes_on(
        scheduler, tmp_path, run_cli, db_file):
    config = write_config(tmp_path, {"strategy.path": FAILING})
    grid = write_grid(tmp_path, {"strategy.params.fail": [False, True],
                                 "strategy.params.spike_body_atr": [1.5, 2.0]})
    outcome = _sweep(run_cli, "--config", str(config), "--grid", str(grid), "--scheduler",
                     scheduler, "--db", db_file)
    failed = [row for row in outcome["rows"] if row["params"]["strategy.params.fail"]]
    ran = [row for row in outcome["rows"] if not row["params"]["strategy.params.fail"]]
    assert len(failed) == len(ran) == 2
    for row in failed:
        assert row["summary"] is None
        assert row["error"] == ("strategy FailsWhenAsked.on_candle failed: RuntimeError: "
                                "asked to fail")
    assert all(row["summary"]["signals"] > 0 and "error" not in row for row in ran)
    code, out, _ = run_cli("sweeps", "--db", db_file, "--json")
    (listed,) = json.loads(out)["sweeps"]
    assert (listed["status"], listed["rows"], listed["errors"]) == ("finished", 4, 2)
    assert listed["scheduler"] == scheduler


def test_the_same_grid_and_seed_give_the_same_rows(scheduler, tmp_path, run_cli, db_file):
    grid = write_grid(tmp_path, {"strategy.params.spike_body_atr": [1.5, 2.0, 2.5],
                                 "exits.targets": ["milestones", "fixed_r"]}, samples=3, seed=11)
    first, second = (_sweep(run_cli, "--grid", str(grid), "--scheduler", scheduler, "--db",
                            db_file) for _ in range(2))
    assert second["sweep_id"] == first["sweep_id"] + 1
    assert second["rows"] == first["rows"] and len(first["rows"]) == 3


def test_a_walk_forward_chooses_on_training_and_reports_the_test_window_after_it(
        scheduler, tmp_path, run_cli, db_file):
    grid = write_grid(tmp_path, {"strategy.params.spike_body_atr": [1.5, 2.0]})
    outcome = _sweep(run_cli, "--grid", str(grid), "--scheduler", scheduler, "--db", db_file,
                     "--from", "2024-08-01", "--to", "2024-08-18", "--walk-forward", "6d/3d",
                     "--metric", "total_pnl_usdt")
    windows = outcome["windows"]
    assert [w["test"][0] for w in windows[1:]] == [w["test"][1] for w in windows[:-1]]
    assert len(windows) == 4  # tests 08-07, 08-10, 08-13, 08-16: each 3 days
    code, out, _ = run_cli("sweeps", str(outcome["sweep_id"]), "--db", db_file, "--json")
    stored = json.loads(out)["rows"]
    for window in windows:
        trained = [r for r in stored if r["window"] == window["window"] and r["phase"] ==
                   "train"]
        assert len(trained) == 2
        best = max(trained, key=lambda r: r["summary"]["total_pnl_usdt"])
        assert window["params"] == best["params"]
        if not window["in_sample"]["closed_at_window_end"]:
            assert window["in_sample"]["total_pnl_usdt"] == best["summary"]["total_pnl_usdt"]
    stitched = outcome["stitched"]["out_of_sample"]
    assert stitched["trades"] == sum(w["out_of_sample"]["trades"] for w in windows)
    assert stitched["total_pnl_usdt"] == pytest.approx(
        sum(w["out_of_sample"]["total_pnl_usdt"] for w in windows))
    # a test window is a backtest of its own span with the warm-up before it
    last = windows[-1]
    config = write_config(tmp_path, last["params"])
    code, out, err = run_cli("backtest", "--data", str(CRASH), "--config", str(config),
                             "--from", "2024-08-16", "--to", "2024-08-18", "--db",
                             f"sqlite:///{tmp_path / 'plain.sqlite'}", "--json")
    assert code == 0, err
    plain = json.loads(out)["summary"]
    test_row = next(r for r in stored if r["window"] == last["window"] and r["phase"] == "test")
    assert {k: plain[k] for k in test_row["summary"]} == test_row["summary"]


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_keeps_the_finished_combinations(scheduler, tmp_path, stop):
    """SIGINT (Ctrl-C) or SIGTERM (systemd, kill) to a running `cryptobot sweep`: exit 130,
    the sweep marked interrupted, the combinations finished so far stored, the rest not run."""
    import signal

    from cryptobot.errors import StoreError
    from cryptobot.store.sweeps import list_sweeps

    def started_sweeps() -> list:
        # The file exists from the sweep's first connection, its tables only once it has
        # migrated the new store: until then there is nothing to list.
        try:
            return list_sweeps(db) if (tmp_path / "sweeps.sqlite").exists() else []
        except StoreError:
            return []

    db = f"sqlite:///{tmp_path / 'sweeps.sqlite'}"
    # 100 combinations: far more than a warm cluster finishes before the signal lands
    grid = write_grid(tmp_path, {
        "strategy.params.spike_body_atr": [round(1.5 + 0.05 * i, 2) for i in range(25)],
        "exits.time_stop_hours": [6.0, 12.0, 18.0, 24.0]})
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("cryptobot")), "sweep", "--data", str(CRASH),
         "--grid", str(grid), "--scheduler", scheduler, "--db", db, "--json"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as typed in a terminal: a suite started in the background (nohup, CI) hands its
        # children SIGINT ignored, and Python then never turns Ctrl-C into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = started_sweeps()
            if listed and listed[0].combinations >= 1:
                break
            time.sleep(0.05)
        process.send_signal(getattr(signal, stop))
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert out == "" and err.strip().splitlines()[-1] == "interrupted"
    (listed,) = list_sweeps(db)
    assert listed.info.status == "interrupted" and listed.info.finished_ms is not None
    assert 1 <= listed.combinations < 100


def _aligned_on_worker(pack) -> dict[str, bool]:
    import numpy as np

    from cryptobot.sweep.job import _owned

    arrived = next(iter(pack.markets.values())).candles
    owned = next(iter(_owned(pack).values())).candles
    return {name: bool(np.asarray(frame["ts_open_ms"]).flags.aligned)
            for name, frame in (("arrived", arrived), ("owned", owned))}


def test_a_worker_backtests_market_data_in_aligned_memory_of_its_own(scheduler):
    """Arrays that came over the network may sit unaligned (numpy then copies them at every
    search: a backtest on a worker ran 13x slower); the worker copies them once."""
    from distributed import Client

    from cryptobot.config import load_settings
    from cryptobot.sweep.job import Span
    from cryptobot.sweep.runner import load_pack
    from tests.sweep.conftest import DEFAULT_CONFIG

    pack = load_pack([load_settings(DEFAULT_CONFIG)], CRASH, Span(None, None), False, 0)
    with Client(scheduler, timeout=30) as client:
        shared = client.scatter(pack, broadcast=True, hash=False)
        aligned = client.submit(_aligned_on_worker, shared, pure=False).result()
    assert aligned["owned"], aligned


def test_the_stitched_drawdown_is_of_one_equity_path_across_the_test_windows(
        scheduler, tmp_path, run_cli, db_file):
    """Real 2024 H1 BTC data, the cross-check rule: test windows with trades in them."""
    grid = write_grid(tmp_path, {"exits.time_stop_hours": [12.0, 24.0]})
    code, out, err = run_cli(
        "sweep", "--data", str(REPO_ROOT / "data" / "btc_5m_2023-11_2024-12"), "--config",
        str(REPO_ROOT / "config" / "crosscheck.toml"), "--grid", str(grid), "--scheduler",
        scheduler, "--db", db_file, "--from", "2024-01-01", "--to", "2024-06-30",
        "--walk-forward", "60d/30d", "--json")
    assert code == 0, err
    outcome = json.loads(out)
    windows, stitched = outcome["windows"], outcome["stitched"]["out_of_sample"]
    _, out, _ = run_cli("sweeps", str(outcome["sweep_id"]), "--db", db_file, "--json")
    tested = sorted((r for r in json.loads(out)["rows"] if r["phase"] == "test"),
                    key=lambda r: r["window"])
    path, equity = [], 10_000.0  # the stored test windows' trades, one after another
    for window, row in zip(windows, tested, strict=True):
        pnls = [t["pnl_usdt"] for t in row["trades"]]
        pnls += [window["out_of_sample"]["total_pnl_usdt"] - sum(pnls)] * bool(
            window["out_of_sample"]["closed_at_window_end"])
        path += [equity := equity + pnl for pnl in pnls]
    assert len(windows) >= 3 and len(path) >= 2 * len(windows)
    peaks = [max([10_000.0, *path[:i + 1]]) for i in range(len(path))]
    deepest = max(peak - e for peak, e in zip(peaks, path, strict=True))
    assert stitched["max_drawdown_usdt"] == pytest.approx(deepest)
    # here a fall runs across a window's boundary: deeper than any one window's
    assert stitched["max_drawdown_pct"] > stitched["worst_window_drawdown_pct"] + 0.5
