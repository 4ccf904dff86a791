"""A sweep from the client's side: load the data once, build what every combination shares,
send the combinations to the cluster, store each result as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptobot.config import Settings
from cryptobot.store.sweeps import SweepResult, SweepWriter
from cryptobot.sweep.cluster import run_on_cluster
from cryptobot.sweep.grid import Params
from cryptobot.sweep.job import MarketPack, Span, gate_key, liquidations_key

Progress = Callable[[SweepResult], None]


@dataclass(frozen=True)
class Task:
    """One backtest to run: a combination (its index and parameters), its settings and span;
    `window` and `phase` for walk-forward."""

    combination: int
    params: Params
    settings: Settings
    span: Span
    window: int | None = None
    phase: str | None = None


@dataclass(frozen=True)
class SweepPlan:
    """A sweep ready to run: its combinations (parameters and checked settings), the shared
    data, the span asked for (`asked`) and the span that data trades (`traded`)."""

    params: list[Params]
    combinations: list[Settings]
    pack: MarketPack
    asked: Span
    traded: tuple[int, int]
    warmup_ms: int
    detail: bool  # keep each combination's signals and trades

    def tasks(self) -> list[Task]:
        return [Task(i, p, s, self.asked)
                for i, (p, s) in enumerate(zip(self.params, self.combinations, strict=True))]


def load_pack(combinations: list[Settings], data: Path, span: Span, allow_gaps: bool,
              warmup_ms: int) -> MarketPack:
    """The market data (with `warmup_ms` before the span, as `cryptobot backtest` loads it),
    market rules, gates and recorded liquidations that the combinations need, built once on
    the client."""
    from cryptobot.clock import LiveClock
    from cryptobot.data import load_market_data
    from cryptobot.data.liquidation_files import load_liquidations
    from cryptobot.engine.market_rules import load_market_rules
    from cryptobot.macro import build_gate

    base = combinations[0]
    exchange = base.market.exchange
    markets = {s: load_market_data(data, s, span.start_ms, span.end_ms, allow_gaps=allow_gaps,
                                   exchange=exchange, warmup_ms=warmup_ms)
               for s in base.market.symbols}
    rules = {s: load_market_rules(s) if exchange == "binanceusdm" else None
             for s in base.market.symbols}
    gates = {}
    liquidations = {}
    for settings in combinations:  # the macro caches age by the wall clock, as in a backtest
        if (key := gate_key(settings)) not in gates:
            gates[key] = build_gate(settings, LiveClock())
        if (key := liquidations_key(settings)) not in liquidations:
            gap_ms = int(settings.evidence.liquidation_gap_minutes * 60_000)
            liquidations[key] = {s: load_liquidations(settings.evidence.liquidations_dir, s,
                                                      gap_ms) for s in base.market.symbols}
    return MarketPack(markets, rules, gates, liquidations)


def run_tasks(client: Any, pack: MarketPack, tasks: list[Task], writer: SweepWriter,
              detail: bool, progress: Progress | None = None) -> list[SweepResult]:
    """Every task on the cluster; each result stored as it arrives. Returns them in task
    order. Interrupted (Ctrl-C), what was stored stays stored."""
    results: list[SweepResult | None] = [None] * len(tasks)
    outcomes = run_on_cluster(client, pack, [(t.settings, t.span) for t in tasks], detail)
    for index, outcome in _closing(outcomes):
        result = to_result(tasks[index], outcome)
        writer.add(result)
        results[index] = result
        if progress is not None:
            progress(result)
    return [r for r in results if r is not None]


def to_result(task: Task, outcome: dict) -> SweepResult:
    detail = ({"signals": outcome["signals"], "trades": outcome["trades"]}
              if "signals" in outcome else None)
    return SweepResult(task.combination, task.params, outcome.get("summary"),
                       outcome.get("error"), outcome.get("elapsed_s", 0.0), detail, task.window,
                       task.phase, task.span.start_ms, task.span.end_ms)


def _closing(generator: Iterator) -> Iterator:
    """The generator, closed however the loop ends (an interrupt cancels the rest)."""
    try:
        yield from generator
    finally:
        generator.close()
