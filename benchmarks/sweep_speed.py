"""Sweep throughput: combinations per second on Dask, and what one backtest costs inside a sweep.

200 combinations (10 x 5 x 4 values of spike_body_atr, time_stop_hours and spike_volume_mult)
of the cross-check profile (config/crosscheck.toml: the default profile has no open interest for
this file and trades nothing there) on the bundled 14-month BTC 5m file, on a LocalCluster of 1
and then 2 worker processes, best of 3. Each round stores its rows (a SQLite file in a temporary
folder), as `cryptobot sweep` does; the cluster's start is timed apart. Then one combination:
its time on a worker (inside the sweep) against the same backtest run plainly in this process,
and `cryptobot backtest --json`'s own elapsed_s (data loading and store writes included).
Prints a table. Not a test.

    .venv/bin/python benchmarks/sweep_speed.py [--rounds N] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.clock import LiveClock  # noqa: E402
from cryptobot.config import load_settings  # noqa: E402
from cryptobot.store.sweeps import SweepInfo, SweepWriter  # noqa: E402
from cryptobot.sweep.cluster import dask_client  # noqa: E402
from cryptobot.sweep.grid import Grid, settings_for_grid  # noqa: E402
from cryptobot.sweep.job import Span, run_combination  # noqa: E402
from cryptobot.sweep.runner import SweepPlan, load_pack, run_tasks  # noqa: E402

DATA = ROOT / "data" / "btc_5m_2023-11_2024-12"
CONFIG = ROOT / "config" / "crosscheck.toml"
GRID = Grid({"strategy.params.spike_body_atr": [1.2, 1.35, 1.5, 1.65, 1.8, 1.95, 2.1, 2.25,
                                                2.4, 2.55],
             "exits.time_stop_hours": [6.0, 12.0, 24.0, 36.0, 48.0],
             "strategy.params.spike_volume_mult": [2.0, 2.5, 3.0, 3.5]}, None, 0)


def one_round(client, pack, tasks, url: str) -> tuple[float, list]:
    writer = SweepWriter(url, SweepInfo(GRID.as_json(), 0, "benchmark", str(CONFIG), str(DATA),
                                        ("BTC/USDT:USDT",), None, None), LiveClock())
    started = time.perf_counter()
    results = run_tasks(client, pack, tasks, writer, detail=False)
    elapsed = time.perf_counter() - started
    writer.finish("finished")
    writer.close()
    errors = [r.error for r in results if r.error]
    if errors or len(results) != len(tasks):
        raise SystemExit(f"benchmark round failed: {len(results)} results, errors {errors[:1]}")
    return elapsed, results


def plain_backtest_s(pack, settings, rounds: int) -> tuple[float, float]:
    """(best in-process run of the same backtest, best `cryptobot backtest --json` elapsed_s)."""
    from cryptobot.cli import main

    in_process = min(run_combination(pack, settings, Span(None, None), False)["elapsed_s"]
                     for _ in range(rounds))
    command = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            out = io.StringIO()
            with redirect_stdout(out):
                main(["backtest", "--data", str(DATA), "--config", str(CONFIG), "--db",
                      f"sqlite:///{folder}/plain.sqlite", "--json"])
            command.append(json.loads(out.getvalue())["elapsed_s"])
    return in_process, min(command)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    base = load_settings(CONFIG)
    combinations = settings_for_grid(base, GRID, "benchmark grid")
    warmup_ms = base.feed.warmup_days * 86_400_000
    pack = load_pack(combinations, DATA, Span(None, None), False, warmup_ms)
    tasks = SweepPlan(GRID.combinations(), combinations, pack, Span(None, None), (0, 0),
                      warmup_ms, detail=False).tasks()
    print(f"{len(tasks)} combinations, {DATA.name}, {CONFIG.name}, best of {args.rounds}")
    print(f"{'workers':>8}{'cluster start s':>17}{'best sweep s':>14}{'combinations/s':>16}"
          f"{'median task s':>15}")
    rates, task_s = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for workers in (int(w) for w in args.workers.split(",")):
            started = time.perf_counter()
            with dask_client(workers, None) as client:
                start_s = time.perf_counter() - started
                rounds = [one_round(client, pack, tasks, f"sqlite:///{folder}/s{workers}.sqlite")
                          for _ in range(args.rounds)]
            best, results = min(rounds, key=lambda r: r[0])
            rates[workers] = len(tasks) / best
            task_s[workers] = statistics.median(r.elapsed_s for r in results)
            print(f"{workers:>8}{start_s:>17.2f}{best:>14.2f}{rates[workers]:>16.2f}"
                  f"{task_s[workers]:>15.3f}")
    if 1 in rates and 2 in rates:
        print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (goal: at least 1.5x)")
    workers = min(task_s)
    in_process, command = plain_backtest_s(pack, combinations[0], args.rounds)
    print(f"one backtest: inside the sweep {task_s[workers]:.3f}s (median task on its worker, "
          f"{workers} worker{'s' if workers > 1 else ''}); {1 / rates[workers]:.3f}s "
          f"per combination end to end; plain in this process {in_process:.3f}s (combination "
          f"0, best of {args.rounds}); `cryptobot backtest --json` {command:.3f}s (its "
          "elapsed_s: loading and store writes included)")


if __name__ == "__main__":
    main()
