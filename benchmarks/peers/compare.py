"""cryptobot against backtesting.py and vectorbt on the cross-check rule, whole processes.

    .venv/bin/python benchmarks/peers/compare.py [--repeats 5] [--skip vectorbt]

Each tool runs as its own process on data/btc_5m_2023-11_2024-12 (the same rule and setting as
config/crosscheck.toml), in turn (A B C A B C ...) after one warm-up each, so that the machine's
drift touches all alike. Checks that every tool enters the same 81 times, then prints one table:
median, min and max wall time of the whole process, and each tool's median against
cryptobot's. cryptobot writes its run to a fresh SQLite store, as a user's run does. The peers
need the optional `bench` extra (pip install -e '.[bench]'); a peer that cannot be imported is
reported, not run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DATA = ROOT / "data" / "btc_5m_2023-11_2024-12"
CRYPTOBOT = str(Path(sys.executable).with_name("cryptobot"))
PEERS = {"backtesting.py": ("backtesting", HERE / "with_backtesting.py"),
         "vectorbt": ("vectorbt", HERE / "with_vectorbt.py")}


def timed(command: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return wall_s, json.loads(done.stdout.strip().splitlines()[-1])


def entry_times(tool: str, result: dict) -> list[str]:
    if tool == "cryptobot":
        return [trade["entry_time"] for trade in result["trades"]]
    return result["entries"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip", action="append", default=[], choices=sorted(PEERS))
    args = parser.parse_args()
    store = Path(tempfile.mkdtemp(prefix="peers-")) / "runs.sqlite"
    commands = {"cryptobot": [CRYPTOBOT, "backtest", "--config", "config/crosscheck.toml",
                              "--data", str(DATA), "--db", f"sqlite:///{store}", "--json"]}
    missing = []
    for tool, (module, script) in PEERS.items():
        if tool in args.skip:
            continue
        if importlib.util.find_spec(module) is None:
            missing.append(tool)
            continue
        commands[tool] = [sys.executable, str(script)]
    walls: dict[str, list[float]] = {tool: [] for tool in commands}
    results: dict[str, dict] = {}
    for lap in range(args.repeats + 1):  # lap 0 warms up (and creates the store)
        for tool, command in commands.items():
            wall_s, results[tool] = timed(command)
            if lap:
                walls[tool].append(wall_s)
    reference = entry_times("cryptobot", results["cryptobot"])
    print(f"cross-check rule, {DATA.name}: cryptobot {len(reference)} trades; whole processes, "
          f"{args.repeats} runs each after a warm-up, in turn")
    print(f"{'tool':<16}{'trades':>7}{'same entries':>14}{'median s':>10}{'min s':>8}"
          f"{'max s':>8}{'x cryptobot':>13}")
    ours = statistics.median(walls["cryptobot"])
    for tool, runs in walls.items():
        entries = entry_times(tool, results[tool])
        median = statistics.median(runs)
        print(f"{tool:<16}{len(entries):>7}{'yes' if entries == reference else 'NO':>14}"
              f"{median:>10.3f}{min(runs):>8.3f}{max(runs):>8.3f}{median / ours:>12.2f}x")
    inside = results["cryptobot"]
    print(f"cryptobot inside the run: {inside['candles_processed']:,} base candles in "
          f"{inside['elapsed_s']:.3f}s = {inside['candles_processed'] / inside['elapsed_s']:,.0f}"
          f"/s (engine and store writes; reading the data before it {inside['load_s']:.3f}s)")
    if "vectorbt" in results:
        peer = results["vectorbt"]
        print(f"vectorbt's simulation inside its process: {peer['simulation_first_s']}s with "
              f"numba compiling, {peer['simulation_compiled_s']}s compiled")
    for tool in missing:
        print(f"{tool}: not installed (pip install -e '.[bench]'), not run")
    if any(entry_times(t, r) != reference for t, r in results.items()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
