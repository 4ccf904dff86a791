"""Backtest throughput: base candles per second through the engine, and peak memory.

Runs the cross-check profile (config/crosscheck.toml) on the bundled 14-month BTC 5m file, then
on the same candles replicated end to end (time-shifted copies, a benchmark-only series) to
1,051,200 candles, the count of two years of 1m candles. Prints a table. Not a test.

    .venv/bin/python benchmarks/backtest_speed.py [--every-candle]
"""

from __future__ import annotations

import dataclasses
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.brokers.paper import PaperBroker  # noqa: E402
from cryptobot.clock import SimClock  # noqa: E402
from cryptobot.config import load_settings  # noqa: E402
from cryptobot.data import load_market_data  # noqa: E402
from cryptobot.data.table import Table  # noqa: E402
from cryptobot.engine.gate import PassThroughGate  # noqa: E402
from cryptobot.engine.recorder import MemoryRecorder  # noqa: E402
from cryptobot.runners.backtest import run_backtest  # noqa: E402
from cryptobot.strategy.loading import load_strategy  # noqa: E402

TWO_YEARS_OF_1M = 2 * 365 * 1440  # 1,051,200


def replicated(candles: Table, interval_ms: int, rows: int) -> Table:
    span = int(candles["ts_open_ms"][-1] - candles["ts_open_ms"][0]) + interval_ms
    copies = -(-rows // len(candles))
    out = {name: np.tile(candles[name], copies)[:rows] for name in candles.columns}
    shift = np.repeat(np.arange(copies, dtype=np.int64) * span, len(candles))[:rows]
    out["ts_open_ms"] = out["ts_open_ms"].astype(np.int64) + shift
    return Table(out)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(settings, market, fast: bool, repeats: int = 3) -> tuple[float, int, int]:
    best = float("inf")
    for _ in range(repeats):
        result = None  # the last run's objects go before the next one starts
        strategy = load_strategy(settings, settings.market.symbol)
        started = time.perf_counter()
        clock = SimClock(0)
        result = run_backtest(settings, market, strategy, PassThroughGate(), MemoryRecorder(),
                              PaperBroker(settings.costs, clock), clock, skip_quiet=fast)
        best = min(best, time.perf_counter() - started)
    return best, result.candles_processed, len(result.engine.trades)


def main() -> None:
    fast = "--every-candle" not in sys.argv
    crosscheck = load_settings(ROOT / "config" / "crosscheck.toml")
    default = load_settings(ROOT / "config" / "default.toml")
    # The 14-month file has no OI: with the rule on nothing trades, so it is off here.
    default_oi_off = default.model_copy(update={"strategy": default.strategy.model_copy(
        update={"params": {"oi_confirmation": False}})})
    started = time.perf_counter()
    market = load_market_data(ROOT / "data" / "btc_5m_2023-11_2024-12", crosscheck.market.symbol)
    load_s = time.perf_counter() - started
    print(f"path: {'fast (precomputed, quiet candles skipped)' if fast else 'every candle'}; "
          f"after imports and loading: max RSS {peak_mb():,.0f} MB")
    print(f"{'dataset':<46}{'profile':<18}{'candles':>11}{'trades':>8}{'seconds':>9}"
          f"{'candles/s':>12}{'max RSS MB':>12}")
    rows = [("BTC 5m 2023-11..2024-12 (real)", "crosscheck", crosscheck, lambda: market),
            ("BTC 5m 2023-11..2024-12 (real)", "default, OI off", default_oi_off,
             lambda: market),
            ("same, replicated to 1,051,200 (benchmark)", "crosscheck", crosscheck,
             lambda: dataclasses.replace(market, candles=replicated(
                 market.candles, market.base_interval_ms, TWO_YEARS_OF_1M)))]
    for name, profile, settings, data in rows:
        seconds, candles, trades = measure(settings, data(), fast)
        print(f"{name:<46}{profile:<18}{candles:>11,}{trades:>8}{seconds:>9.3f}"
              f"{candles / seconds:>12,.0f}{peak_mb():>12,.0f}")
    print(f"loading the 14-month file: {load_s:.3f}s; best of 3 runs each; max RSS is the "
          "process peak so far (numpy, pandas and pyarrow alone take ~115 MB)")


if __name__ == "__main__":
    main()
