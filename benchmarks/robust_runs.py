"""Issue 13's robustness counts in one JSON object: kills and resumes of paper runs, bad inputs,
several processes sharing a store and a log folder.

    python benchmarks/robust_runs.py --kills 20 --seed S --json

Merges three suites, each in its own module:
- benchmarks/robust_kills.py: kill9, sigterm, trades_lost, resumed, resume_mismatches
  (goals: kills each, 0, 2 x kills, 0);
- benchmarks/robust_bad_inputs.py `bad_inputs(tmp_dir)`: bad_inputs, bad_inputs_clear,
  tracebacks, rows_changed (goals: 60 or more, all clear, 0, 0);
- benchmarks/robust_concurrency.py: concurrent_sqlite_ok, concurrent_postgres_ok (8 of 8; null
  with the reason when no PostgreSQL server is reachable from the PG* environment, e.g. outside
  `pg_virtualenv`), log_lines_lost (0).
A suite that is missing or fails gives nulls for its keys and says why under `notes`.
Without --json the counts are printed one per line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
for folder in (BENCHMARKS, BENCHMARKS.parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

KILL_KEYS = ("kill9", "sigterm", "trades_lost", "resumed", "resume_mismatches")
BAD_INPUT_KEYS = ("bad_inputs", "bad_inputs_clear", "tracebacks", "rows_changed")
CONCURRENCY_KEYS = ("concurrent_sqlite_ok", "concurrent_postgres_ok", "log_lines_lost")


def _suite(module: str, keys: tuple[str, ...], run: Callable[[Any], dict],
           notes: dict[str, str]) -> dict:
    """`run(module)`'s counts; nulls (and a note) when the module is missing or fails."""
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        notes[module] = f"benchmarks/{module}.py is not there yet: {', '.join(keys)} not counted"
        return dict.fromkeys(keys)
    try:
        counts = run(loaded)
    except Exception as exc:  # noqa: BLE001 - one suite failing must not hide the others
        notes[module] = f"failed: {type(exc).__name__}: {exc}"
        print(traceback.format_exc(), file=sys.stderr)
        return dict.fromkeys(keys)
    missing = [key for key in keys if key not in counts]
    if missing:
        notes[module] = f"did not count {', '.join(missing)}"
    return {**dict.fromkeys(keys), **counts}


def _bad_inputs(module: Any) -> dict:
    with tempfile.TemporaryDirectory(prefix="cryptobot-bad-inputs-") as folder:
        return module.bad_inputs(Path(folder))


def _concurrency(module: Any) -> dict:
    if hasattr(module, "concurrency_counts"):  # both databases and the log folder, with notes
        return module.concurrency_counts(8, 6)
    with tempfile.TemporaryDirectory(prefix="cryptobot-sqlite-") as folder:
        counts = {"concurrent_sqlite_ok": module.concurrent_backtests(
            lambda: f"sqlite:///{folder}/new/runs.sqlite", 8)}
    counts["concurrent_postgres_ok"] = None
    counts["concurrent_postgres_note"] = "robust_concurrency has no PostgreSQL entry point"
    counts["log_lines_lost"] = module.concurrent_logging(6)
    return counts


def robust_counts(kills: int, seed: int) -> dict:
    started = time.perf_counter()
    notes: dict[str, str] = {}
    counts: dict[str, Any] = {"seed": seed}
    counts.update(_suite("robust_kills", KILL_KEYS,
                         lambda module: module.kill_and_resume(kills, seed), notes))
    counts.update(_suite("robust_bad_inputs", BAD_INPUT_KEYS, _bad_inputs, notes))
    counts.update(_suite("robust_concurrency", CONCURRENCY_KEYS, _concurrency, notes))
    counts["notes"] = notes
    counts["elapsed_s"] = round(time.perf_counter() - started, 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20,
                        help="paper runs, each killed (kill -9) and stopped (SIGTERM) once")
    parser.add_argument("--seed", type=int, default=1, help="draws the stop points")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    counts = robust_counts(args.kills, args.seed)
    if args.json:
        print(json.dumps(counts))
    else:
        for key, value in counts.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
