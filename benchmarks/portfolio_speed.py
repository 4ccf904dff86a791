"""Several symbols in one backtest: base candles per second for 1 and for 20 symbols, and peak
memory, over the bundled 14-month BTC 5m file.

The 20 symbols are REPLICAS: the real BTC candles under 20 benchmark-only names
(REPLICA01/USDT:USDT ...), so every symbol has the same real market and the run the work of
twenty. The rate counts all symbols' base candles together (skipped quiet ones included, as the
one-symbol benchmark counts them); the issue's target is 20 symbols at least 80% of the
1-symbol rate. By default the portfolio caps do not bind (each replica trades as it would
alone: the fair comparison, since the same trades skip fewer candles); `--caps default` runs the
shipped caps, where most replicas' signals are refused (identical markets confirm together) and
the run skips more. Each case runs in its own process, so its peak RSS is its own. Not a test.

    python benchmarks/portfolio_speed.py [--symbols 1,20] [--repeats 3] [--caps loose|default]
                                         [--every-candle]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "data" / "btc_5m_2023-11_2024-12"
PROFILE = ROOT / "config" / "crosscheck.toml"


def replica_symbols(count: int) -> tuple[str, ...]:
    return tuple(f"REPLICA{n:02d}/USDT:USDT" for n in range(1, count + 1))


MIN_SECONDS = 3.0  # each case repeats for at least this long
LOOSE = {"max_open_positions": 100, "max_open_risk": 1.0, "max_entries_per_hour": 1000}


def one_case(count: int, repeats: int, fast: bool, loose: bool) -> dict:
    """In this process: the best of `repeats` runs of a `count`-symbol backtest."""
    from cryptobot.brokers.paper import PaperBroker
    from cryptobot.clock import SimClock
    from cryptobot.config import load_settings
    from cryptobot.data import load_market_data
    from cryptobot.engine.gate import PassThroughGate
    from cryptobot.engine.recorder import MemoryRecorder
    from cryptobot.runners.backtest import SymbolInputs, run_portfolio_backtest
    from cryptobot.strategy.loading import load_strategy

    base = load_settings(PROFILE)
    market = load_market_data(DATA, base.market.symbol)
    symbols = replica_symbols(count)
    settings = base.with_symbols(symbols)
    if loose:
        settings = settings.model_copy(update={
            "portfolio": settings.portfolio.model_copy(update=LOOSE),
            "risk": settings.risk.model_copy(update={"max_daily_loss": 0.0})})
    markets = {s: dataclasses.replace(market, symbol=s) for s in symbols}
    best, result, runs, spent = float("inf"), None, 0, 0.0
    while runs < repeats or spent < MIN_SECONDS:  # a short case runs until its best is steady
        result = None  # the last run's objects go before the next one starts
        clock = SimClock(0)
        inputs = {s: SymbolInputs(markets[s], load_strategy(settings.for_symbol(s), s),
                                  PaperBroker(settings.costs, clock)) for s in symbols}
        started = time.perf_counter()
        result = run_portfolio_backtest(settings, inputs, PassThroughGate(), MemoryRecorder(),
                                        clock, skip_quiet=fast)
        took = time.perf_counter() - started
        best, runs, spent = min(best, took), runs + 1, spent + took
    return {"symbols": count, "runs": runs, "candles": result.candles_processed, "seconds": best,
            "candles_per_s": result.candles_processed / best,
            "trades": len(result.portfolio.trades),
            "refused_by_portfolio": sum(1 for s in result.portfolio.signals
                                        if s.reason.startswith("portfolio:")),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="1,20")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--caps", choices=("loose", "default"), default="loose")
    parser.add_argument("--every-candle", action="store_true")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)  # one case, in a child
    args = parser.parse_args()
    fast = not args.every_candle
    if args.case is not None:
        print(json.dumps(one_case(args.case, args.repeats, fast, args.caps == "loose")))
        return
    counts = [int(part) for part in args.symbols.split(",")]
    rows = []
    for count in counts:
        child = subprocess.run(
            [sys.executable, __file__, "--case", str(count), "--repeats", str(args.repeats),
             "--caps", args.caps] + (["--every-candle"] if args.every_candle else []),
            check=True, capture_output=True, text=True)
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"{PROFILE.name} on {DATA.name} (real BTC 5m; several symbols are REPLICAS of it), "
          f"{'fast path' if fast else 'every candle'}, {args.caps} portfolio caps, best of "
          f"{args.repeats} runs or more (each case at least {MIN_SECONDS:.0f} s)")
    print(f"{'symbols':>8}{'candles':>12}{'seconds':>9}{'candles/s':>12}{'vs 1':>7}"
          f"{'trades':>8}{'refused':>9}{'peak RSS MB':>13}")
    first = rows[0]["candles_per_s"]
    for row in rows:
        print(f"{row['symbols']:>8}{row['candles']:>12,}{row['seconds']:>9.2f}"
              f"{row['candles_per_s']:>12,.0f}{row['candles_per_s'] / first:>7.0%}"
              f"{row['trades']:>8}{row['refused_by_portfolio']:>9}{row['peak_rss_mb']:>13,.0f}")


if __name__ == "__main__":
    main()
