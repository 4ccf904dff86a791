"""Several processes sharing one store and one log folder: the concurrency counts of issue 13.

    concurrent_backtests(url_factory, n=8) -> int
        n `cryptobot backtest` processes started at once on one NEW database (`url_factory()`,
        called once, gives its URL); how many exited 0 with their run stored and finished
    concurrent_logging(n=6) -> int
        n processes logging at once into one log folder, their files rotating; lines lost
    concurrency_counts(n=8, loggers=6) -> dict
        both, on a new SQLite file and (from the PG* environment) a new PostgreSQL database

Goals: n of n backtests on SQLite and on PostgreSQL, 0 log lines lost. `main()` prints the counts
as one JSON object; PostgreSQL's count is null, with the reason, when no server is reachable
(run it under `pg_virtualenv`, as .ci/run runs the tests). tests/store/test_concurrency.py runs
the same checks with 3 processes.

    python benchmarks/robust_concurrency.py [--n 8] [--loggers 6]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CRASH_DATA = REPO / "data" / "btc_2024-08_crash"
DEFAULT_CONFIG = REPO / "config" / "default.toml"
TIMEOUT_S = 600

ROTATE_BYTES = 20_000
# A log writer: waits for the start signal (its stdin closing), then logs `lines` lines into a
# folder where its file rotates every ROTATE_BYTES, keeping enough parts to lose none.
_LOG_WRITER = """
import logging, sys
from cryptobot.logs import configure_logging
folder, writer, lines, rotate_bytes = sys.argv[1], *map(int, sys.argv[2:])
configure_logging(folder, console=False, max_bytes=rotate_bytes,
                  backup_count=lines * 500 // rotate_bytes + 2)
sys.stdin.read()
log = logging.getLogger("cryptobot.bench")
for seq in range(lines):
    log.info("line %d of writer %d", seq, writer, extra={"writer": writer, "seq": seq})
"""


def _start_together(commands: list[list[str]], cwd: Path) -> list[subprocess.Popen]:
    return [subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for command in commands]


def concurrent_backtests(url_factory: Callable[[], str], n: int = 8) -> int:
    """How many of n backtests started at once on one new database exited 0 with their run
    stored and finished (distinct run ids). Their logs go to a temporary folder."""
    from cryptobot.store import open_store

    url = url_factory()
    with tempfile.TemporaryDirectory(prefix="cryptobot-concurrent-") as folder:
        config = Path(folder) / "backtest.toml"
        config.write_text(f'extends = "{DEFAULT_CONFIG}"\n[logging]\ndir = "{folder}/logs"\n')
        command = [sys.executable, "-m", "cryptobot", "backtest", "--config", str(config),
                   "--data", str(CRASH_DATA), "--from", "2024-08-04", "--to", "2024-08-06",
                   "--db", url, "--json"]
        processes = _start_together([command] * n, Path(folder))
        run_ids = []
        for process in processes:
            out, err = process.communicate(timeout=TIMEOUT_S)
            if process.returncode == 0:
                run_ids.append(str(json.loads(out)["run_id"]))
            else:
                print(f"backtest exited {process.returncode}: {err.strip()[-300:]}",
                      file=sys.stderr)
    if not run_ids:
        return 0
    store = open_store(url)
    finished = {run.run_id for run in store.runs() if run.finished_ms is not None}
    store.close()
    return sum(1 for run_id in set(run_ids) if run_id in finished)


def concurrent_logging(n: int = 6, lines_each: int = 2000) -> int:
    """Lines lost when n processes log `lines_each` lines each at once into one folder (their
    files rotating), counted by reading the folder as `cryptobot logs tail` does."""
    from cryptobot.report.logs_view import merged_lines

    with tempfile.TemporaryDirectory(prefix="cryptobot-logging-") as folder:
        commands = [[sys.executable, "-c", _LOG_WRITER, f"{folder}/logs", str(writer),
                     str(lines_each), str(ROTATE_BYTES)] for writer in range(n)]
        processes = _start_together(commands, Path(folder))
        for process in processes:
            process.stdin.close()  # go
        for process in processes:
            if process.wait(timeout=TIMEOUT_S) != 0:
                print(f"log writer exited {process.returncode}: "
                      f"{process.stderr.read().strip()[-300:]}", file=sys.stderr)
            process.stdout.close()
            process.stderr.close()
        seen = set()
        for line in merged_lines(Path(folder) / "logs"):
            event = json.loads(line)
            if "writer" in event:
                seen.add((event["writer"], event["seq"]))
    return n * lines_each - len(seen)


def _sqlite_factory(stack: ExitStack) -> Callable[[], str]:
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="cryptobot-sqlite-"))
    return lambda: f"sqlite:///{folder}/new/runs.sqlite"


def concurrency_counts(n: int = 8, loggers: int = 6) -> dict:
    """The three counts (and how they were taken) as one dict."""
    from tests.store.backends import new_postgres_database, postgres_unavailable

    started = time.perf_counter()
    counts: dict = {"concurrent_n": n}
    with ExitStack() as stack:
        counts["concurrent_sqlite_ok"] = concurrent_backtests(_sqlite_factory(stack), n)
    reason = postgres_unavailable()
    if reason is None:
        with new_postgres_database("cryptobot_bench") as url:
            counts["concurrent_postgres_ok"] = concurrent_backtests(lambda: url, n)
    else:
        counts["concurrent_postgres_ok"] = None
        counts["concurrent_postgres_note"] = reason
    counts["loggers"] = loggers
    counts["log_lines_lost"] = concurrent_logging(loggers)
    counts["elapsed_s"] = round(time.perf_counter() - started, 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8, help="backtests started at once")
    parser.add_argument("--loggers", type=int, default=6, help="processes logging at once")
    args = parser.parse_args()
    print(json.dumps(concurrency_counts(args.n, args.loggers)))


if __name__ == "__main__":
    main()
