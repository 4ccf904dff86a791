"""RSS over a long replay through the stream parser and the engine (benchmarks/stream_latency.py
prints it): does a run of any length hold a bounded memory?

What it replays, per 5m candle of data/btc_2024-08_crash (real prices, laps of the window on a
SYNTHETIC time axis, so 10^6 messages span about 8.5 months): 2 in-progress kline updates and
the closed kline (Binance sends an update every 250 ms; far fewer here, or the replay would
cover only days, and an update is parsed and dropped), the real forceOrder records of
data/liquidations (December 2024, each placed at its offset in the month, about 0.25 a candle),
and 10 open-interest samples as the feed's 30 s REST poll hands them to the engine (SYNTHETIC
values: the window's synthetic 5m open interest). All go through the adapter's own parser (the
poll's samples straight to the engine) and the engine on a simulated clock, as in a paper
replay. The garbage collector runs as in a live session (runners/between_events_gc.py): off
while an event is handled, the pass due run after each closed candle, over the heap frozen at
the start (what was allocated before is not walked); RSS is read without forcing a pass, so
garbage in cycles those passes leave would show as growth. The passes are counted and timed by
generation: a full one lands right after a candle's orders, where a fill streamed in waits.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryptobot.brokers.paper import PaperBroker
from cryptobot.cli.run_setup import heap_frozen
from cryptobot.clock import DAY_MS, SimClock
from cryptobot.config import Settings
from cryptobot.data import MarketData
from cryptobot.data.liquidation_files import load_liquidations
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.loop import Engine
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.engine.risk import NeverEngaged
from cryptobot.exchange.binance import BinanceUsdmStream
from cryptobot.exchange.replay import (
    CandleColumns,
    binance_force_order_message,
    binance_kline_message,
)
from cryptobot.model import Candle, Liquidation, OpenInterest
from cryptobot.runners.between_events_gc import CollectBetweenEvents
from cryptobot.runners.stream_session import advance_sim_clock
from cryptobot.strategy.loading import load_strategy

ROOT = Path(__file__).resolve().parent.parent
SYMBOL = "BTC/USDT:USDT"
OI_POLL_MS = 30_000
UPDATES_PER_CANDLE = 2
CHECKPOINTS = (100_000, 500_000, 1_000_000)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class NullRecorder(MemoryRecorder):
    """Keeps nothing, so memory growth is the adapter's and the engine's own."""

    def signal_candle(self, symbol, candle):
        pass

    def equity(self, ts_ms, equity_usdt):
        pass

    def gate_decision(self, decision, trigger):
        pass

    def open_interest(self, symbol, sample):
        pass


def _liquidations_by_candle(lap_ms: int,
                            interval_ms: int) -> dict[int, list[tuple[int, Liquidation]]]:
    """The real December 2024 forceOrders, by candle of the lap: (offset in the lap, event)."""
    records = load_liquidations(ROOT / "data" / "liquidations", SYMBOL, DAY_MS)
    events = records.events if records is not None else ()
    by_candle: dict[int, list[tuple[int, Liquidation]]] = {}
    if events:
        first_ms = events[0].ts_ms
        for event in events:
            offset = (event.ts_ms - first_ms) % lap_ms
            by_candle.setdefault(offset // interval_ms, []).append((offset, event))
    return by_candle


@dataclass(frozen=True)
class ReplayInput:
    """The window's candles, their open interest and the liquidations by candle: read before
    the first RSS reading, so the input itself does not count as growth."""

    candles: list[Candle]
    oi_contracts: np.ndarray  # per candle: the last sample at or before its open
    liquidations: dict[int, list[tuple[int, Liquidation]]]

    @classmethod
    def of(cls, market: MarketData) -> ReplayInput:
        candles = list(CandleColumns.from_frame(market.candles, market.base_interval_ms))
        oi_ts = market.open_interest["ts_ms"].astype(np.int64)
        at = np.searchsorted(oi_ts, [c.ts_open_ms for c in candles], side="right") - 1
        oi = market.open_interest["oi_contracts"].astype(np.float64)[np.maximum(at, 0)]
        lap_ms = candles[-1].ts_close_ms - candles[0].ts_open_ms
        return cls(candles, oi, _liquidations_by_candle(lap_ms, market.base_interval_ms))


def replay(given: ReplayInput, count: int) -> Iterator[tuple[int, str | OpenInterest]]:
    """(time, a raw stream message or a polled open-interest sample), in time order, made as
    they are sent."""
    candles, oi_contracts, liquidations = given.candles, given.oi_contracts, given.liquidations
    interval_ms = candles[0].interval_ms
    lap_ms = candles[-1].ts_close_ms - candles[0].ts_open_ms
    sent = lap = 0
    while True:
        shift = lap * lap_ms
        for k, c in enumerate(candles):
            open_ms = c.ts_open_ms + shift
            moved = Candle(open_ms, interval_ms, c.open, c.high, c.low, c.close, c.volume)
            batch: list[tuple[int, str | OpenInterest]] = [
                (open_ms + j * OI_POLL_MS, OpenInterest(open_ms + j * OI_POLL_MS,
                                                        float(oi_contracts[k])))
                for j in range(1, interval_ms // OI_POLL_MS + 1)]
            batch += [(open_ms + (j + 1) * interval_ms // (UPDATES_PER_CANDLE + 1),
                       binance_kline_message(SYMBOL, moved, closed=False,
                                             event_time_ms=open_ms + (j + 1) * interval_ms
                                             // (UPDATES_PER_CANDLE + 1)))
                      for j in range(UPDATES_PER_CANDLE)]
            batch += [(candles[0].ts_open_ms + shift + offset, binance_force_order_message(
                SYMBOL, Liquidation(candles[0].ts_open_ms + shift + offset, e.side, e.price,
                                    e.qty_base, SYMBOL)))
                      for offset, e in liquidations.get(k, ())]
            batch.append((moved.ts_close_ms, binance_kline_message(SYMBOL, moved)))
            for item in sorted(batch, key=lambda pair: pair[0]):
                yield item
                sent += 1
                if sent == count:
                    return
        lap += 1


def rss_over_replay(settings: Settings, market: MarketData,
                    count: int) -> tuple[list[tuple[int, float]], dict[str, float]]:
    """RSS (MB) at the start and after each checkpoint's messages; and what the run covered
    and holds at the end."""
    given = ReplayInput.of(market)
    stream = BinanceUsdmStream(SYMBOL, market.base_interval_ms)
    clock = SimClock(0)
    advance = advance_sim_clock(clock)
    engine = Engine(settings, load_strategy(settings, SYMBOL),
                    PaperBroker(settings.costs, clock), PassThroughGate(), NullRecorder(), clock,
                    kill_switch=NeverEngaged())
    points = [(0, rss_mb())]
    with heap_frozen(collect_first=True), CollectBetweenEvents() as collector:
        first_ms, last_ms = _replayed(given, count, stream, engine, advance, collector, points)
    facts = {"simulated_days": ((last_ms or 0) - (first_ms or 0)) / DAY_MS,
             "signal_candles": len(engine.market.candles),
             "signals": len(engine.signals), "trades": len(engine.trades)}
    for generation, name in enumerate(("young", "middle", "full")):  # as a live session's
        passes = collector.passes[generation]
        facts[f"{name} passes"] = passes
        facts[f"{name} pass mean us"] = collector.pass_ns[generation] / max(passes, 1) / 1000
        facts[f"{name} pass longest us"] = collector.longest_ns[generation] / 1000
    return points, facts


def _replayed(given: ReplayInput, count: int, stream: BinanceUsdmStream, engine: Engine,
              advance, collector: CollectBetweenEvents, points: list[tuple[int, float]]
              ) -> tuple[int | None, int | None]:
    """The replay's messages through the parser and engine; RSS appended at each checkpoint."""
    first_ms = last_ms = None
    for sent, (ts_ms, item) in enumerate(replay(given, count), start=1):
        if first_ms is None:
            first_ms = ts_ms
            advance(ts_ms)
            engine.on_liquidation_listening(ts_ms, None)
        advance(ts_ms)
        last_ms = ts_ms
        if isinstance(item, OpenInterest):
            engine.on_open_interest(item)
        else:
            for event in stream.parse(item).events:
                if isinstance(event, Liquidation):
                    engine.on_liquidation(event)
                else:
                    engine.on_base_candle(event)
                    collector.collect_due()  # as live: once a candle is handled
        if sent in CHECKPOINTS or sent == count:
            points.append((sent, rss_mb()))
    return first_ms, last_ms
