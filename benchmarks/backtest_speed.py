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
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.backtest import run_backtest  # noqa: E402
from cryptobot.config import load_settings  # noqa: E402
from cryptobot.data import load_market_data  # noqa: E402
from cryptobot.gate import PassThroughGate  # noqa: E402
from cryptobot.recorder import MemoryRecorder  # noqa: E402
from cryptobot.strategy import load_strategy  # noqa: E402

TWO_YEARS_OF_1M = 2 * 365 * 1440  # 1,051,200


def replicated(candles: pd.DataFrame, interval_ms: int, rows: int) -> pd.DataFrame:
    span = int(candles["ts_open_ms"].iloc[-1] - candles["ts_open_ms"].iloc[0]) + interval_ms
    copies = -(-rows // len(candles))
    parts = []
    for k in range(copies):
        part = candles.copy()
        part["ts_open_ms"] = part["ts_open_ms"] + k * span
        parts.append(part)
    out = pd.concat(parts, ignore_index=True).iloc[:rows].reset_index(drop=True)
    out["ts_open_ms"] = out["ts_open_ms"].astype(np.int64)
    return out


def measure(settings, market, fast: bool, repeats: int = 3) -> tuple[float, int, int]:
    best = float("inf")
    for _ in range(repeats):
        strategy = load_strategy(settings.strategy.path, settings, settings.market.symbol)
        started = time.perf_counter()
        result = run_backtest(settings, market, strategy, PassThroughGate(), MemoryRecorder(),
                              fast=fast)
        best = min(best, time.perf_counter() - started)
    return best, result.candles_processed, len(result.engine.trades)


def main() -> None:
    fast = "--every-candle" not in sys.argv
    settings = load_settings(ROOT / "config" / "crosscheck.toml")
    started = time.perf_counter()
    market = load_market_data(ROOT / "data" / "btc_5m_2023-11_2024-12", settings.market.symbol)
    load_s = time.perf_counter() - started
    big = dataclasses.replace(market, candles=replicated(market.candles, market.base_interval_ms,
                                                         TWO_YEARS_OF_1M))
    print(f"path: {'fast (precomputed, idle candles skipped)' if fast else 'every candle'}")
    print(f"{'dataset':<44}{'candles':>11}{'trades':>8}{'seconds':>9}{'candles/s':>12}")
    for name, data in (("BTC 5m 2023-11..2024-12 (real)", market),
                       ("same, replicated to 1,051,200 (benchmark)", big)):
        seconds, candles, trades = measure(settings, data, fast)
        print(f"{name:<44}{candles:>11,}{trades:>8}{seconds:>9.3f}{candles / seconds:>12,.0f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"loading the 14-month file: {load_s:.3f}s; peak memory (max RSS): {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
