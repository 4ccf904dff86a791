"""Stream benchmark: parse+aggregate rate, message->engine latency, RSS over 10^6 msgs, and
closed candle -> order accepted through the whole live stack.

    .venv/bin/python benchmarks/stream_latency.py [--messages 1000000] [--live-orders 1000]

Input: the real Binance 5m candles of data/btc_2024-08_crash as kline messages. The 10^6-message
run (benchmarks/stream_memory.py, which says what it replays: kline updates and closes,
forceOrders and open-interest polls, about 8.5 months of SYNTHETIC time over real prices) goes
through the adapter's own parser and the engine, as in a replay; RSS at 0, 10^5, 5x10^5, 10^6.
The live part (benchmarks/stream_latency_live.py): the crash window's candles over a loopback
websocket, the real stream parser, engine and LiveBroker (ccxt) against the fake Binance of
tests/live, in a process of its own, until --live-orders orders were accepted; per order purpose,
from the closed candle's frame and from each order's trigger (see that module's docstring).
Targets: p99 closed candle -> order accepted below 2 ms; RSS growth below 20 MB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

# this checkout's code and its fake venue together (not an installed cryptobot beside them)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.stream_memory import NullRecorder, rss_over_replay  # noqa: E402
from cryptobot.brokers.paper import PaperBroker  # noqa: E402
from cryptobot.clock import SimClock  # noqa: E402
from cryptobot.config import load_settings  # noqa: E402
from cryptobot.data import CandleAggregator, load_market_data  # noqa: E402
from cryptobot.engine.gate import PassThroughGate  # noqa: E402
from cryptobot.engine.loop import Engine  # noqa: E402
from cryptobot.engine.risk import NeverEngaged  # noqa: E402
from cryptobot.exchange.binance import BinanceUsdmStream  # noqa: E402
from cryptobot.exchange.replay import CandleColumns, binance_kline_message  # noqa: E402
from cryptobot.runners.stream_session import advance_sim_clock  # noqa: E402
from cryptobot.strategy.loading import load_strategy  # noqa: E402

SYMBOL = "BTC/USDT:USDT"


class TimedBroker(PaperBroker):
    """Stamps when each order intent leaves the engine."""

    submitted_ns: list[int]

    def submit(self, intent):
        self.submitted_ns.append(time.perf_counter_ns())
        super().submit(intent)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--live-orders", type=int, default=1000, help="0: no live part")
    args = parser.parse_args()
    if args.messages < 1 or args.live_orders < 0:  # a replay of none would never reach its end
        parser.error("--messages must be at least 1 and --live-orders at least 0")
    market = load_market_data(ROOT / "data" / "btc_2024-08_crash", SYMBOL)
    interval_ms = market.base_interval_ms
    candles = list(CandleColumns.from_frame(market.candles, interval_ms))
    stream = BinanceUsdmStream(SYMBOL, interval_ms)

    # 1. parse + aggregate throughput on the real messages
    real = [binance_kline_message(SYMBOL, c) for c in candles]
    aggregator = CandleAggregator(interval_ms, 15 * 60_000)
    started = time.perf_counter()
    for raw in real * 10:
        for event in stream.parse(raw).events:
            aggregator.add(event)
        aggregator = aggregator if event.ts_open_ms != candles[-1].ts_open_ms else \
            CandleAggregator(interval_ms, 15 * 60_000)
    parse_rate = len(real) * 10 / (time.perf_counter() - started)

    # 2. latency: message in -> engine done (every candle) and -> order intent (entries)
    settings = load_settings(ROOT / "config" / "crosscheck.toml")
    clock = SimClock(candles[0].ts_open_ms)
    broker = TimedBroker(settings.costs, clock)
    broker.submitted_ns = []
    engine = Engine(settings, load_strategy(settings, SYMBOL), broker,
                    PassThroughGate(), NullRecorder(), clock, kill_switch=NeverEngaged())
    advance = advance_sim_clock(clock)
    handled_us: list[float] = []
    intent_us: list[float] = []
    for raw in real:
        t0 = time.perf_counter_ns()
        before = len(broker.submitted_ns)
        for event in stream.parse(raw).events:
            advance(event.ts_close_ms)
            engine.on_base_candle(event)
        t1 = time.perf_counter_ns()
        handled_us.append((t1 - t0) / 1000)
        if len(broker.submitted_ns) > before:
            intent_us.append((broker.submitted_ns[before] - t0) / 1000)

    # 3. RSS over a long replay of the stream's mix through the same path
    started = time.perf_counter()
    rss_points, replayed = rss_over_replay(settings, market, args.messages)
    long_s = time.perf_counter() - started

    def pct(values: list[float], q: float) -> str:
        if not values:
            return "n/a"
        ordered = sorted(values)
        return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f}"

    table = Table(title="stream adapter (real Binance 5m candles as kline messages)")
    for column in ("measure", "value", "target"):
        table.add_column(column)
    table.add_row("parse + 15m aggregation", f"{parse_rate:,.0f} msg/s", "")
    table.add_row("message -> engine done p50 / p99", f"{pct(handled_us, .5)} / "
                  f"{pct(handled_us, .99)} us", "")
    table.add_row(f"message -> order intent p50 / p99 (n={len(intent_us)})",
                  f"{pct(intent_us, .5)} / {pct(intent_us, .99)} us", "p99 < 2000 us")
    table.add_row(f"{args.messages:,}-message replay", f"{args.messages / long_s:,.0f} msg/s "
                  f"({long_s:.1f}s)", "")
    table.add_row("  simulated days / signal candles / trades",
                  f"{replayed['simulated_days']:.0f} / {replayed['signal_candles']:,} / "
                  f"{replayed['trades']:,}", "")
    for name in ("young", "middle", "full"):
        table.add_row(f"  collector: {name} passes, mean / longest",
                      f"{replayed[f'{name} passes']:,}, {replayed[f'{name} pass mean us']:,.0f} / "
                      f"{replayed[f'{name} pass longest us']:,.0f} us", "")
    for sent, mb in rss_points:
        table.add_row(f"  RSS after {sent:,} messages", f"{mb:.1f} MB", "")
    growth = rss_points[-1][1] - rss_points[0][1]
    table.add_row("RSS growth", f"{growth:+.1f} MB", "growth < 20 MB")
    table.add_row("mean message -> engine done", f"{statistics.fmean(handled_us):.1f} us", "")
    if args.live_orders:
        _live_rows(table, args.live_orders, pct)
    Console().print(table)


def _live_rows(table: Table, min_orders: int, pct) -> None:
    """Both views of benchmarks/stream_latency_live.py: from the closed candle's frame, and
    from each order's trigger (the frame, or the entry fill a protective order answers)."""
    from benchmarks.stream_latency_live import floors_us, live_latencies_us

    started = time.perf_counter()
    found = live_latencies_us(min_orders)
    took_s = time.perf_counter() - started
    for view, title in (("from_candle", "closed candle frame"),
                        ("from_trigger", "its trigger")):
        by_purpose = getattr(found, view)
        every = [value for values in by_purpose.values() for value in values]
        table.add_row(f"live: {title} -> order accepted p50 / p99 (n={len(every)}, "
                      f"{found.sessions} sessions, {took_s:.0f}s)",
                      f"{pct(every, .5)} / {pct(every, .99)} us", "p99 < 2000 us")
        for purpose, values in sorted(by_purpose.items()):
            table.add_row(f"  {purpose} (n={len(values)})",
                          f"{pct(values, .5)} / {pct(values, .99)} us", "")
    calm = found.from_trigger_no_rest
    table.add_row(f"  of them, orders whose candle waited on no REST read (n={len(calm)})",
                  f"{pct(calm, .5)} / {pct(calm, .99)} us", "")
    table.add_row("live: take-profits from their stop's acceptance -> accepted", "", "")
    for purpose, values in sorted(found.from_stop.items()):
        table.add_row(f"  {purpose} (n={len(values)})",
                      f"{pct(values, .5)} / {pct(values, .99)} us", "")
    table.add_row("live: from its trigger, by part", "", "")
    for part, values in found.parts.items():
        table.add_row(f"  {part}", f"{pct(values, .5)} / {pct(values, .99)} us", "")
    floors = floors_us()
    table.add_row(f"floors, each measured alone (n={len(next(iter(floors.values())))})", "", "")
    for part, values in floors.items():
        table.add_row(f"  {part}", f"{pct(values, .5)} / {pct(values, .99)} us", "")


if __name__ == "__main__":
    main()
