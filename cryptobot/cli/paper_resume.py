"""`cryptobot paper --resume [RUN_ID]`: an interrupted paper run goes on, in the same run.

Nothing of the engine's insides is stored; its state is rebuilt from the run's journal:
1. warm-up candles up to the run's start, as when it started (indicators only);
2. the run's own history since then (candles from the venue, or the replayed data, the open
   interest it stored, the funding rates), replayed through the strategy with its decisions
   dropped (`Engine.replay_history`): the indicators and a pending setup come back;
3. the open position (its working stop, targets and filled legs, into the paper broker and the
   engine) or an entry not filled yet, through the one restore live uses too
   (runners/restore.py); equity, the day's realised loss and the signals and trades so far.
The feed then takes over after the last candle the run handled: a replay streams the data from
there, a live stream repairs the gap from REST. Each base candle's rows are committed together,
so the journal always ends on a whole candle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptobot.engine.recorder import RunInfo
from cryptobot.errors import ConfigError, StoreError
from cryptobot.model import Candle, FundingRate, GateDecision, OpenInterest
from cryptobot.runners.restore import (
    RunJournal,
    handled_until_ms,
    last_day_started_ms,
    restore_open_position,
)
from cryptobot.runners.stream_session import ClockAdvance, SessionRun, warm_up_engine
from cryptobot.store import SqlRecorder, open_store
from cryptobot.store.sql_recorder import json_safe
from cryptobot.store.tables import (
    EquityPointRow,
    FillRow,
    GateDecisionRow,
    OpenInterestRow,
    OrderRow,
    SignalCandleRow,
    SignalRow,
    TradeRow,
)

if TYPE_CHECKING:
    from cryptobot.config import Settings

# What a resumed run must share with the run it goes on with: the rules it trades by.
TRADING_SECTIONS = ("market", "strategy", "exits", "risk", "costs")


@dataclass
class StoredRun:
    """What the store holds of a run to resume."""

    run_id: int
    info: RunInfo
    journal: RunJournal
    open_interest: list[OpenInterest]
    gate_decisions: list[tuple[GateDecision, str]]
    handled_ms: int  # every base candle closing by then was handled
    day_ms: int | None  # the last UTC day the run had begun
    row_counts: dict[type, int] = field(default_factory=dict)

    @property
    def is_replay(self) -> bool:
        return self.info.end_ms is not None  # a replay has an end; a live stream does not


def read_stored_run(db_url: str, wanted: str | None, settings: Settings,
                    replay: bool) -> StoredRun:
    """The run to go on with (`wanted`, else the last unfinished paper run), checked: a paper
    run, not finished, of the same kind (replay or live stream) and the same trading rules."""
    reader = open_store(db_url)
    try:
        run_id = _pick(reader, wanted)
        info = reader.run_info(run_id)
        summary = reader.summary(run_id)
        if info.mode != "paper":
            raise ConfigError(f"run {run_id} is a {info.mode} run: only paper runs resume")
        if summary is not None and not summary.get("stopped_early"):
            raise ConfigError(f"run {run_id} is finished: nothing to resume")
        is_replay = info.end_ms is not None
        if is_replay != replay:
            raise ConfigError(f"run {run_id} " + ("replayed stored data: add --replay with its "
                                                  "data" if is_replay else
                                                  "traded the live stream: drop --replay"))
        _check_rules(run_id, info, settings)
        signals, orders, fills = reader.signals(run_id), reader.orders(run_id), reader.fills(run_id)
        trades, candles = reader.trades(run_id), reader.candles(run_id)
        samples, gates = reader.open_interest(run_id), reader.gate_decisions(run_id)
        counts = {GateDecisionRow: len(gates), SignalRow: len(signals), OrderRow: len(orders),
                  FillRow: len(fills), TradeRow: len(trades),
                  EquityPointRow: len(reader.equity(run_id)), SignalCandleRow: len(candles),
                  OpenInterestRow: len(samples)}
    finally:
        reader.close()
    assert info.start_ms is not None
    return StoredRun(run_id, info, RunJournal(signals, orders, fills, trades), samples, gates,
                     handled_until_ms(info.start_ms, candles, orders, gates),
                     last_day_started_ms(gates), counts)


def _pick(reader: Any, wanted: str | None) -> int:
    if wanted is not None:
        return reader.resolve_run(wanted)
    for listing in reversed(reader.runs()):
        if listing.mode != "paper":
            continue
        summary = reader.summary(int(listing.run_id))
        if listing.finished_ms is None or (summary or {}).get("stopped_early"):
            return int(listing.run_id)
    raise StoreError(f"{reader.name}: no unfinished paper run to resume")


def _check_rules(run_id: int, info: RunInfo, settings: Settings) -> None:
    given = json_safe(settings.model_dump(mode="json"))
    for section in TRADING_SECTIONS:
        if info.settings.get(section) != given.get(section):
            raise ConfigError(f"run {run_id} was started with other [{section}] settings: "
                              "resume it with the config it started with")


class ContinuedRecorder(SqlRecorder):
    """A SqlRecorder whose `start_run` goes on with a stored run (`SqlRecorder.resume_run`)."""

    def __init__(self, url: str, stored: StoredRun, **options: Any) -> None:
        super().__init__(url, **options)
        self._stored = stored

    def start_run(self, info: RunInfo) -> str:
        stored = self._stored
        return self.resume_run(stored.run_id, stored.row_counts,
                               [decision for decision, _ in stored.gate_decisions])


@dataclass(frozen=True)
class FeedStart:
    """Where the feed takes over from what the engine was given."""

    last_closed_open_ms: int | None
    last_oi_ms: int | None
    last_funding_ms: int | None
    note: str  # for the console


async def prime_engine(run: SessionRun, rest: Any, interval_ms: int, signal_ms: int,
                       stored: StoredRun | None, advance_clock: ClockAdvance) -> FeedStart:
    """Warm the engine up before the run's first candle; a resumed run also gets its own
    history and its position back (see the module docstring)."""
    from cryptobot.exchange.backfill import load_warm_up

    engine, start_ms = run.engine, run.start_ms
    assert engine is not None and start_ms is not None
    # stopped before its state is back, a resumed run is left as it was stored
    run.restoring = stored is not None
    warm = await load_warm_up(rest, run.symbol, interval_ms, start_ms,
                              run.settings.feed.warmup_days, with_open_interest=stored is None)
    loaded = warm_up_engine(engine, warm, signal_ms)
    if stored is None:
        return FeedStart(warm.last_closed_open_ms,
                         warm.open_interest[-1].ts_ms if warm.open_interest else None, None,
                         f"warm-up: {loaded} base candles, {len(warm.open_interest)} OI "
                         "samples")
    candles, rates = await _history(rest, run.symbol, interval_ms, start_ms, stored.handled_ms)
    events: list[tuple[int, int, Any]] = [(s.ts_ms, 0, s) for s in stored.open_interest]
    events += [(r.ts_ms, 0, r) for r in rates]
    events += [(c.ts_close_ms, 1, c) for c in candles]
    events.sort(key=lambda item: (item[0], item[1]))  # the feed's order: samples first
    journal = stored.journal
    paid = engine.replay_history((event for _, _, event in events), advance_clock, journal)
    engine.broker.restore(journal.working_orders(), journal.position_qty())
    restored = restore_open_position(engine, journal, paid)
    engine.restore_account(journal.signals, journal.booked_trades(), stored.day_ms)
    run.restoring = False
    held = _show_position(run)
    if candles:
        run.prices[:] = [candles[0].open, candles[-1].close]
    samples = stored.open_interest
    return FeedStart(candles[-1].ts_open_ms if candles else warm.last_closed_open_ms,
                     samples[-1].ts_ms if samples else None,
                     rates[-1].ts_ms if rates else None,
                     f"resumed run {stored.run_id}: warm-up: {loaded} base candles, replayed "
                     f"{len(candles)} candles of its history, {len(journal.trades)} trades "
                     f"so far, " + ("flat" if restored is None else f"position {restored} "
                                    "restored" if held else f"entry {restored} pending"))


async def _history(rest: Any, symbol: str, interval_ms: int, start_ms: int,
                   until_ms: int) -> tuple[list[Candle], list[FundingRate]]:
    """The run's candles (opened from its start, closed by `until_ms`) and the funding rates
    the feed delivered meanwhile (the first settlement after the start onwards)."""
    from cryptobot.exchange.backfill import fetch_closed_candles, fetch_funding_history

    if until_ms <= start_ms:
        return [], []
    candles = await fetch_closed_candles(rest, symbol, interval_ms, start_ms, until_ms)
    rates = await fetch_funding_history(rest, symbol, start_ms + 1, until_ms)
    return candles, rates


def _show_position(run: SessionRun) -> bool:
    """The console's position line, as the restored engine holds it; True if it holds one."""
    assert run.engine is not None
    held = run.engine.open_position(None)
    if held is not None:
        run.recorder.position_qty = held["qty"] * (-1 if held["side"] == "short" else 1)
        run.recorder.entry_price = held["entry_price"]
    return held is not None
