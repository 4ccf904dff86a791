"""Inside the run of the command a user types: `candles_processed / elapsed_s` of
`cryptobot backtest --json` (the engine over the candles and every row written to the store,
its event log included), on SQLite and, when the PG* environment names a server (e.g. under
`pg_virtualenv`), on PostgreSQL.

Each run is a new `cryptobot` process on the bundled 14-month BTC file with the cross-check
profile, all into one store per backend as a user's runs pile up; every run must give the same
81 trades. Prints the median of the runs (5 unless --runs N) against issue 20's target of
1.0M base candles/s. Not a test. Run `python -m compileall -q cryptobot strategies` first
(`make install` does) when bytecode is not written by default.

`--before DIR` measures another checkout of the code (e.g. `git worktree add DIR main`,
byte-compiled) in turn with this one, run for run (its own store), and prints its medians
and the median of the paired ratios (this / before) too: a host that slows down or speeds up
during the runs slows both alike.

    .venv/bin/python benchmarks/backtest_run_speed.py [--runs N] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.store.backends import new_postgres_database, postgres_unavailable  # noqa: E402

DATA = REPO / "data" / "btc_5m_2023-11_2024-12"
CONFIG = REPO / "config" / "crosscheck.toml"
TARGET_PER_S = 1_000_000
EXPECTED_TRADES = 81


@contextmanager
def _store(backend: str) -> Iterator[str]:
    if backend == "postgresql":
        with new_postgres_database("cryptobot_run_bench") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/runs.sqlite"


def _one_run(url: str, log_dir: Path, code: Path | None = None) -> dict:
    """One `cryptobot backtest --json` process (of the checkout `code`: its packages first on
    the path; None: this one)."""
    config = log_dir / "crosscheck.toml"
    config.write_text(f'extends = "{CONFIG}"\n[logging]\ndir = "{log_dir}"\n')
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(code), env.get("PYTHONPATH"))))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cryptobot")), "backtest", "--config", str(config),
         "--data", str(DATA), "--db", url, "--json"],
        capture_output=True, text=True, check=False, cwd=REPO, env=env)
    if done.returncode != 0:
        raise SystemExit(f"error: the backtest failed: {done.stderr.strip()}")
    outcome = json.loads(done.stdout)
    if outcome["summary"]["trades"] != EXPECTED_TRADES:
        raise SystemExit(f"error: {outcome['summary']['trades']} trades, not {EXPECTED_TRADES}")
    return outcome


def measure(backend: str, runs: int,
            before: Path | None = None) -> tuple[int, list[float], list[float]]:
    """Base candles and the runs' elapsed_s: this code's, and `before`'s in turn (if given)."""
    codes = [None] if before is None else [None, before]
    with ExitStack() as stack:
        places = [(stack.enter_context(_store(backend)),
                   Path(stack.enter_context(tempfile.TemporaryDirectory()))) for _ in codes]
        for code, (url, logs) in zip(codes, places, strict=True):
            _one_run(url, logs, code)  # each store made and migrated once, as for a user
        elapsed: list[list[float]] = [[] for _ in codes]
        for _ in range(runs):
            for index, (code, (url, logs)) in enumerate(zip(codes, places, strict=True)):
                outcome = _one_run(url, logs, code)
                elapsed[index].append(outcome["elapsed_s"])
    return outcome["candles_processed"], elapsed[0], elapsed[1] if before else []


def _row(label: str, candles: int, elapsed: list[float]) -> str:
    median = statistics.median(elapsed)
    rate = candles / median
    verdict = "met" if rate >= TARGET_PER_S else f"missed ({rate / TARGET_PER_S:.2f}x)"
    return (f"{label:<12}{candles:>9,}{len(elapsed):>6}{min(elapsed):>15.3f}{median:>9.3f}"
            f"{max(elapsed):>8.3f}{rate:>20,.0f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="new processes per store (5)")
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="another checkout, measured in turn with this one")
    args = parser.parse_args()
    runs, before = args.runs, args.before
    if runs < 1:
        parser.error(f"--runs {runs}: at least 1")
    if before is not None and not (before / "cryptobot" / "__init__.py").is_file():
        parser.error(f"{before}: not a checkout of cryptobot (no cryptobot/ there)")
    backends = ["sqlite"]
    if (reason := postgres_unavailable()) is None:
        backends.append("postgresql")
    else:
        print(f"(postgresql skipped: {reason})")
    print(f"{'store':<12}{'candles':>9}{'runs':>6}{'elapsed_s min':>15}{'median':>9}"
          f"{'max':>8}{'candles/s (median)':>20}  1.0M candles/s target")
    for backend in backends:
        candles, elapsed, elapsed_before = measure(backend, runs, before)
        print(_row(backend, candles, elapsed))
        if before is not None:
            print(_row("  before", candles, elapsed_before))
            ratios = [now / then for now, then in zip(elapsed, elapsed_before, strict=True)]
            print(f"  this / before, run for run: median {statistics.median(ratios):.3f} "
                  f"(min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
