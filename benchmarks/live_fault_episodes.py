"""Episodes of the live fault suite: one venue account and one store, bot processes run one
after another over a stretch of the crash data, each killed at a drawn step and restarted.

A segment is one bot process (tests/live/fault_segment.py) over [start, end). When one is
killed, the venue is walked through the candles that pass while it is down (1-3, drawn: stops
and take-profits fire as on the exchange), and the next process starts at the candle after;
its warm-up and history come from its replay, its position from the store and the venue (it
must restore, not re-enter). `audit` then compares the venue with the store.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.live_fault_venue import (
    QTY_EPS,
    FaultVenue,
    closed_on_venue,
    dump_venue,
    duplicate_orders,
    journal_mismatches,
    lost_orders,
    own_orders,
    protection_log,
    take_profit_state,
    time_to_protected_ms,
    unprotected,
    unprotected_spans_ms,
)
from cryptobot.clock import iso_utc

REPO = Path(__file__).resolve().parents[1]
CANDLE_MS = 300_000
SEGMENT_TIMEOUT_S = 600
TOOK_OVER = "took over the open position"
SLOW_PROTECTION_MS = 5000  # the goal for a filled quantity without a stop while a bot runs

# Where a kill hurts most: between a fill and the orders that protect it, and inside a stop move.
KILL_STEPS_HIGH = ("after_fill:entry", "after_fill:tp1", "after_send:entry", "before_send:stop",
                   "stop_replaced_before_cancel")


@dataclass(frozen=True)
class KillPlan:
    """Per step name, the chance that a bot process kills itself there; each name is drawn
    only the first time the process reaches it (a fill in three parts is one chance)."""

    steps: dict[str, float] = field(default_factory=dict)
    default: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"steps": self.steps, "default": self.default, "once": True})

    @classmethod
    def at(cls, step: str) -> KillPlan:
        """Kill at the first time `step` is reached."""
        return cls({step: 1.0}, 0.0)


NO_KILLS = KillPlan()


def random_kill_plan(rng: random.Random) -> KillPlan:
    """One process's plan: likely at one of the steps where a kill hurts most (drawn, so that
    the kills spread over them), unlikely anywhere else."""
    return KillPlan({rng.choice(KILL_STEPS_HIGH): 0.7}, 0.03)


@dataclass(frozen=True)
class Chunk:
    """A stretch of the crash data around one backtest trade."""

    name: str  # the trade's signal id
    start_ms: int
    end_ms: int
    entry_ms: int
    exit_ms: int
    tp_legs: tuple[str, ...] = ("tp1", "tp2")  # the take-profits it had


@dataclass
class VenueOptions:
    """How hostile the venue is, the bot's matching settings, and what it trades."""

    error_rate: float = 0.0  # share of private calls that fail, over every kind the fake has
    partial_fills: bool = False  # taker fills in 3 parts
    latency_ms: int = 50  # venue clock per private request
    timeout_ms: int = 1000  # the bot's request timeout = what a stalled answer costs
    retry_base_delay_s: float = 0.5  # the bot's back-off (on the venue's clock)
    segment_timeout_s: float = SEGMENT_TIMEOUT_S  # wall clock, per bot process
    strategy_path: str | None = None  # [strategy] path; None: the config's (the long rule)


@dataclass
class SegmentResult:
    index: int
    start_ms: int
    end_ms: int
    returncode: int
    events: list[dict[str, Any]]
    console: str
    stderr: str
    wall_s: float

    def _last(self, name: str) -> dict[str, Any] | None:
        found = [e for e in self.events if e.get("event") == name]
        return found[-1] if found else None

    @property
    def kill_step(self) -> str | None:
        kill = self._last("kill")
        return None if kill is None else kill["step"]

    @property
    def killed(self) -> bool:
        return self.kill_step is not None and self.returncode < 0

    @property
    def walked_until_ms(self) -> int | None:
        walks = [e["close_ms"] for e in self.events if e.get("event") == "walk"]
        return max(walks) if walks else None

    @property
    def took_over(self) -> bool:
        return TOOK_OVER in self.console

    @property
    def steps(self) -> list[str]:
        return [e["step"] for e in self.events if e.get("event") == "step"]


@dataclass
class Kill:
    segment: int
    step: str
    venue_ms: int
    position_qty: float  # its size on the venue, long or short
    stop_qty: float
    downtime_candles: int = 0
    restart_ms: int = 0


@dataclass
class Restart:
    segment: int
    after: str  # the kill step (or "error")
    start_ms: int  # the venue's clock when the process started
    position_qty: float  # its size on the venue at that moment, long or short
    took_over: bool
    first_candle: dict[str, Any] | None  # the venue once its first candle had been handled


@dataclass
class Episode:
    chunk: Chunk
    folder: Path
    venue: FaultVenue
    store_url: str  # the runs and the live broker's tables
    segments: list[SegmentResult] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ended_ms: int = 0


def run_segment(venue: FaultVenue, config: Path, start_ms: int, end_ms: int, walked_until_ms: int,
                seed: int, plan: KillPlan, folder: Path, index: int,
                timeout_s: float = SEGMENT_TIMEOUT_S) -> SegmentResult:
    """One bot process; returns once it ended (by itself, by its kill, or after the timeout)."""
    record, console = folder / f"seg{index:03d}.jsonl", folder / f"seg{index:03d}.console.txt"
    command = [sys.executable, "-m", "tests.live.fault_segment", "--config", str(config),
               "--venue", venue.url, "--start", iso_utc(start_ms), "--end", iso_utc(end_ms),
               "--walked-until", str(walked_until_ms), "--seed", str(seed),
               "--kill-plan", plan.to_json(), "--record", str(record), "--console", str(console),
               "--segment", str(index)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
        returncode, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        partial = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        returncode, stderr = 124, f"timed out after {timeout_s}s\n{partial}"
    (folder / f"seg{index:03d}.stderr.txt").write_text(stderr or "")
    events = [json.loads(line) for line in record.read_text().splitlines()
              if line.strip()] if record.exists() else []
    return SegmentResult(index, start_ms, end_ms, returncode, events,
                         console.read_text() if console.exists() else "", stderr or "",
                         time.perf_counter() - started)


def write_config(folder: Path, options: VenueOptions) -> tuple[Path, Any]:
    from tests.live.loopback_live import settings_from, write_live_config

    folder.mkdir(parents=True, exist_ok=True)
    sections: dict[str, dict[str, object]] = {
        "live": {"request_timeout_ms": options.timeout_ms,
                 "retry_base_delay_s": options.retry_base_delay_s}}
    if options.strategy_path:
        sections["strategy"] = {"path": options.strategy_path}
    path = write_live_config(folder, **sections)
    return path, settings_from(path)


def run_episode(chunk: Chunk, folder: Path, candles: dict[int, Any], options: VenueOptions,
                kills_wanted: int, plan: KillPlan | Callable[[random.Random], KillPlan],
                rng: random.Random, downtime_candles: tuple[int, int] = (1, 3)) -> Episode:
    """Segments over `chunk`, killed per `plan` (or a plan drawn per process) until
    `kills_wanted` kills; after the last kill one more process runs (no kills) to the chunk's
    end."""
    draw = plan if callable(plan) else (lambda _: plan)
    folder.mkdir(parents=True, exist_ok=True)
    config, settings = write_config(folder, options)
    venue = FaultVenue(candles[chunk.start_ms].close, chunk.start_ms,
                       error_rate=options.error_rate, partial_fills=options.partial_fills,
                       latency_ms=options.latency_ms, timeout_ms=options.timeout_ms,
                       seed=rng.randrange(2**31))
    episode = Episode(chunk, folder, venue, settings.store.url)
    start, end, walked = chunk.start_ms, chunk.end_ms, chunk.start_ms
    after: str | None = None
    while True:
        before = venue.snapshot()
        index = len(episode.segments)
        plans = draw(rng) if len(episode.kills) < kills_wanted else NO_KILLS
        segment = run_segment(venue, config, start, end, walked, rng.randrange(2**31), plans,
                              folder, index, options.segment_timeout_s)
        episode.segments.append(segment)
        if after is not None:
            episode.restarts.append(Restart(index, after, before["now_ms"], abs(before["qty"]),
                                            segment.took_over,
                                            venue.marks.get((index, "first_candle"))))
        walked = max(walked, segment.walked_until_ms or walked)
        if segment.killed:
            down = venue.snapshot()
            kill = Kill(index, segment.kill_step or "?", down["now_ms"], abs(down["qty"]),
                        down["stop_qty"], rng.randint(*downtime_candles))
            for _ in range(kill.downtime_candles):
                walked += CANDLE_MS
                if walked in candles:
                    venue.walk(candles[walked])
            kill.restart_ms = venue.now_ms()
            episode.kills.append(kill)
            start, after = walked, kill.step
            end = max(end, start + 3 * CANDLE_MS)  # the restart always handles a few candles
            continue
        if segment.returncode != 0:
            episode.errors.append(f"segment {index} exited {segment.returncode}: "
                                  + (segment.stderr.strip().splitlines() or ["?"])[-1][:300])
            if len(episode.errors) >= 3 or walked >= end:
                break
            start, after = walked, "error"
            continue
        break
    episode.ended_ms = venue.now_ms()
    return episode


def audit(episode: Episode, keep: bool = False) -> dict[str, Any]:
    """The episode's counts (see benchmarks/live_faults.py) and what went wrong, in words."""
    from cryptobot.brokers.live.state import LiveState
    from cryptobot.store import open_store

    state = episode.venue.state
    live = LiveState(episode.store_url)
    rows, fills = live.orders(), live.fills()
    live.close()
    store_trades = []
    try:
        store = open_store(episode.store_url)
        for listing in store.runs():
            store_trades += [trade for trade, _ in store.trades(int(listing.run_id))]
        store.close()
    except Exception as exc:  # noqa: BLE001 - an empty store holds no trade; say so
        episode.errors.append(f"run store unreadable: {exc}")
    log = protection_log(state)
    down = [(k.venue_ms, k.restart_ms) for k in episode.kills]
    spans = unprotected_spans_ms(log, down, until_ms=episode.ended_ms)
    waits = [(a, b) for a, b, _ in episode.venue.faults.waits]
    spans_outside_waits = unprotected_spans_ms(log, down + waits, until_ms=episode.ended_ms)
    restarts = []
    kill_ms = {k.segment: k.venue_ms for k in episode.kills}
    for restart in episode.restarts:
        until = kill_ms.get(restart.segment, episode.ended_ms)
        snap = restart.first_candle
        needs_tp, tp_working = (take_profit_state(snap, {episode.chunk.name: episode.chunk.tp_legs})
                                if snap else (False, True))
        to_stop = (time_to_protected_ms(log, restart.start_ms, until)
                   if restart.position_qty > QTY_EPS else None)
        restarts.append({
            "segment": restart.segment, "after": restart.after,
            "position_at_start": restart.position_qty, "took_over": restart.took_over,
            "finished": snap is not None, "killed": restart.segment in kill_ms,
            "unprotected_at_first_candle": bool(snap and unprotected(snap["qty"],
                                                                     snap["stop_qty"])),
            "needs_tp": needs_tp, "tp_working": tp_working,
            "to_stop_ms": to_stop, "first_candle": snap})
    slow = [f"{(b - a) / 1000:g} s without a full stop from venue ms {a} while "
            f"{running_at(episode, a)} ran" for a, b in spans if b - a > SLOW_PROTECTION_MS]
    duplicates = duplicate_orders(state)
    lost = lost_orders(state, rows)
    journal = journal_mismatches(state, fills, store_trades)
    result = {
        "chunk": episode.chunk.name, "folder": str(episode.folder),
        "segments": len(episode.segments), "kills": [k.__dict__ for k in episode.kills],
        "restarts": restarts, "duplicates": duplicates, "lost": lost, "journal": journal,
        "max_unprotected_ms": max((b - a for a, b in spans), default=0),
        "max_unprotected_outside_waits_ms": max((b - a for a, b in spans_outside_waits),
                                                default=0),
        "rate_limit_waits": [[a, b, kind] for a, b, kind in episode.venue.faults.waits],
        "unprotected_over_1s": sum(1 for a, b in spans if b - a > 1000),
        "unprotected_spans": spans, "slow_protection": slow,
        "downtime_ms": sum(b - a for a, b in down),
        "trades_on_venue": closed_on_venue(state), "trades_stored": len(store_trades),
        "entries_on_venue": sorted(o["clientOrderId"] for o in own_orders(state)
                                   if o["clientOrderId"].endswith("-entry")),
        "faults_injected": episode.venue.fault_counts(), "errors": episode.errors,
        **episode.venue.misbehaviour(),
    }
    if keep:
        (episode.folder / "venue.json").write_text(dump_venue(state, episode.venue.faults.trace))
        (episode.folder / "audit.json").write_text(json.dumps(result, indent=1, default=str))
    return result


def running_at(episode: Episode, venue_ms: int) -> str:
    """Which bot process ran at that venue time, in words."""
    started = [(seg.events[0].get("venue_ms", 0), seg.index) for seg in episode.segments
               if seg.events and seg.events[0].get("event") == "start"]
    index = max((i for ms, i in started if ms <= venue_ms), default=0)
    after = next((r.after for r in episode.restarts if r.segment == index), None)
    return f"segment {index}" + (f" (restarted after a kill at {after})" if after else "")


def crash_candles() -> dict[int, Any]:
    """Every 5m candle of the bundled crash window, by its close."""
    from cryptobot.data import load_market_data
    from cryptobot.exchange.replay import CandleColumns
    from tests.live.loopback_live import CRASH_DIR, SYMBOL

    market = load_market_data(CRASH_DIR, SYMBOL, exchange="binanceusdm")
    return {c.ts_close_ms: c for c in CandleColumns.from_frame(market.candles,
                                                                market.base_interval_ms)}


def backtest_chunks(settings: Any, lead_ms: int = 2 * 3_600_000, tail_ms: int = 1_800_000,
                    longest_ms: int = 30 * 3_600_000) -> list[Chunk]:
    """The backtest's trades on the crash data with the live config (OI confirmation off), each
    as a chunk from 2h before its spike to 30 min after its exit (at most 30h): a live replay
    of the chunk sees the spike stream by, enters and usually exits."""
    from cryptobot.brokers.paper import PaperBroker
    from cryptobot.clock import SimClock
    from cryptobot.data import load_market_data
    from cryptobot.engine.recorder import MemoryRecorder
    from cryptobot.macro import build_gate
    from cryptobot.runners.backtest import run_backtest
    from cryptobot.strategy.loading import load_strategy
    from tests.live.loopback_live import CRASH_DIR, SYMBOL

    market = load_market_data(CRASH_DIR, SYMBOL, exchange="binanceusdm")
    clock = SimClock(0)
    recorder = MemoryRecorder()
    result = run_backtest(settings, market, load_strategy(settings, SYMBOL),
                          build_gate(settings, clock), recorder,
                          PaperBroker(settings.costs, clock), clock, skip_quiet=False)
    legs: dict[str, set[str]] = defaultdict(set)
    for event in recorder.orders:
        if event.intent.purpose.value in ("tp1", "tp2"):
            legs[event.intent.client_id.rsplit("-", 1)[0]].add(event.intent.purpose.value)
    spikes = {s.signal_id: s.spike_ms for s in result.engine.signals}
    last_close = int(market.candles["ts_open_ms"][-1]) + market.base_interval_ms
    chunks = []
    for trade in result.engine.trades:
        start = spikes.get(trade.signal_id, trade.entry_ms) - lead_ms
        start -= start % 900_000
        end = min(trade.exit_ms + tail_ms, start + longest_ms, last_close)
        end -= end % CANDLE_MS
        chunks.append(Chunk(trade.signal_id, start, end, trade.entry_ms, trade.exit_ms,
                            tuple(sorted(legs[trade.signal_id]))))
    return chunks
