"""How fast SqlRecorder stores a 14-month backtest's worth of rows (SQLite temp file, and a new
PostgreSQL database when the PG* environment names a server, e.g. under `pg_virtualenv`).

Prints rows per second for ~40,000 signal candles + 40,000 equity points, buffered (the
backtest default) and committed event by event (the live setting).
Candles are REAL: the bundled 5m crash window aggregated to 15m, repeated to 40,000 rows.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptobot.clock import LiveClock  # noqa: E402
from cryptobot.engine.recorder import RunInfo  # noqa: E402
from cryptobot.store import SqlRecorder, open_store  # noqa: E402
from tests.store.backends import new_postgres_database, postgres_unavailable  # noqa: E402

spec = importlib.util.spec_from_file_location("sample_run", REPO / "tests/store/sample_run.py")
sample_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sample_run)


def candles(count: int):
    base = sample_run.real_15m_candles(1721606400000, 1724025600000)
    step = sample_run.M15
    return [replace(base[i % len(base)], ts_open_ms=1721606400000 + i * step) for i in range(count)]


@contextmanager
def _new_store(backend: str) -> Iterator[tuple[str, Path | None]]:
    """(URL, SQLite file or None) of a new store on `backend`."""
    if backend == "postgresql":
        with new_postgres_database("cryptobot_bench") as url:
            yield url, None
        return
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.sqlite", Path(folder) / "bench.sqlite"


def measure(label: str, rows: int, backend: str = "sqlite", **options) -> None:
    series = candles(rows)
    with _new_store(backend) as (url, path):
        recorder = SqlRecorder(url, clock=LiveClock(), **options)
        started = time.perf_counter()
        recorder.start_run(RunInfo("backtest", "binanceusdm", ("BTC/USDT:USDT",), 0, 1, "bench",
                                   {}))
        for candle in series:
            recorder.signal_candle("BTC/USDT:USDT", candle)
            recorder.equity(candle.ts_close_ms, 10_000.0 + candle.close / 1e4)
        recorder.finish_run({})
        recorder.close()
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        store = open_store(url)
        loaded = len(store.candles(1)) + len(store.equity(1))
        read_s = time.perf_counter() - started
        store.close()
        size = f"{path.stat().st_size / 1e6:5.1f} MB" if path is not None else ""
    print(f"{backend:<10} {label:<30} {2 * rows:>8,} rows  write {write_s:6.2f}s "
          f"({2 * rows / write_s:>9,.0f}/s)  read {read_s:5.2f}s ({loaded / read_s:>9,.0f}/s)"
          f"  {size}")


if __name__ == "__main__":
    backends = ["sqlite"]
    if (reason := postgres_unavailable()) is None:
        backends.append("postgresql")
    else:
        print(f"(postgresql skipped: {reason})")
    for backend in backends:
        measure("buffered (flush every 5000)", 40_000, backend)
        measure("commit each event (live)", 2_000, backend, commit_each_event=True)
