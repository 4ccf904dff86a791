"""Inside the run of the command a user types: `candles_processed / elapsed_s` of
`cryptobot backtest --json` (the engine over the candles and every row written to the store,
its event log included), on SQLite and, when the PG* environment names a server (e.g. under
`pg_virtualenv`), on PostgreSQL.

Each run is a new `cryptobot` process on the bundled 14-month BTC file with the cross-check
profile, all into one store per backend as a user's runs pile up; every run must give the same
81 trades. Prints the median of the runs (5 unless --runs N) against issue 20's target of
1.0M base candles/s. Not a test. Run `python -m compileall -q cryptobot strategies` first
(`make install` does) when bytecode is not written by default.

    .venv/bin/python benchmarks/backtest_run_speed.py [--runs N]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


def _one_run(url: str, log_dir: Path) -> dict:
    config = log_dir / "crosscheck.toml"
    config.write_text(f'extends = "{CONFIG}"\n[logging]\ndir = "{log_dir}"\n')
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cryptobot")), "backtest", "--config", str(config),
         "--data", str(DATA), "--db", url, "--json"],
        capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"error: the backtest failed: {done.stderr.strip()}")
    outcome = json.loads(done.stdout)
    if outcome["summary"]["trades"] != EXPECTED_TRADES:
        raise SystemExit(f"error: {outcome['summary']['trades']} trades, not {EXPECTED_TRADES}")
    return outcome


def measure(backend: str, runs: int) -> tuple[int, list[float]]:
    with _store(backend) as url, tempfile.TemporaryDirectory() as logs:
        _one_run(url, Path(logs))  # the store is made and migrated once, as for a user
        outcomes = [_one_run(url, Path(logs)) for _ in range(runs)]
    return outcomes[0]["candles_processed"], [o["elapsed_s"] for o in outcomes]


def main() -> None:
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
    backends = ["sqlite"]
    if (reason := postgres_unavailable()) is None:
        backends.append("postgresql")
    else:
        print(f"(postgresql skipped: {reason})")
    print(f"{'store':<12}{'candles':>9}{'runs':>6}{'elapsed_s min':>15}{'median':>9}"
          f"{'max':>8}{'candles/s (median)':>20}  1.0M candles/s target")
    for backend in backends:
        candles, elapsed = measure(backend, runs)
        median = statistics.median(elapsed)
        rate = candles / median
        verdict = "met" if rate >= TARGET_PER_S else f"missed ({rate / TARGET_PER_S:.2f}x)"
        print(f"{backend:<12}{candles:>9,}{runs:>6}{min(elapsed):>15.3f}{median:>9.3f}"
              f"{max(elapsed):>8.3f}{rate:>20,.0f}  {verdict}")


if __name__ == "__main__":
    main()
