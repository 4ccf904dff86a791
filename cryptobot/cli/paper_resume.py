"""`cryptobot paper --resume [RUN_ID]`: an interrupted paper run goes on, in the same run.

Nothing of the engine's insides is stored; its state is rebuilt from the run's journal:
1. warm-up candles up to the run's start, as when it started (indicators only);
2. the run's own history since then (candles from the venue, or the replayed data, the open
   interest it stored, the funding rates), replayed through the strategy with its decisions
   dropped (`Engine.replay_history`): the indicators and a pending setup come back;
3. the open position (its working stop, targets and filled legs, into the paper broker and the
   engine) or an entry not filled yet, through the one restore live uses too
   (runners/restore.py); equity, the day's realised loss and the signals and trades so far.
A run of several symbols does this for every symbol's engine: each gets its own warm-up, its
own history (all symbols' merged in the order the feed delivered them, so the one clock moves
as it did) and its own position from its own journal; the equity, the day's loss and the
entries of the last hour are the run's, from every symbol's journal.
The feed then takes over after the last candle the run handled, symbol by symbol: a replay
streams the data from there, a live stream repairs the gap from REST. Each base candle's rows
are committed together, so the journal always ends on a whole candle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptobot.engine.recorder import OrderEvent, RunInfo
from cryptobot.errors import ConfigError, StoreError
from cryptobot.model import Candle, FundingRate, GateDecision, OpenInterest, SignalStatus
from cryptobot.runners.restore import (
    RunJournal,
    handled_by_symbol,
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
    SignalCandleChunkRow,
    SignalRow,
    TradeRow,
)

if TYPE_CHECKING:
    from cryptobot.config import Settings

# What a resumed run must share with the run it goes on with: the rules it trades by.
TRADING_SECTIONS = ("market", "strategy", "exits", "risk", "portfolio", "costs")


@dataclass
class StoredRun:
    """What the store holds of a run to resume."""

    run_id: int
    info: RunInfo
    journal: RunJournal
    open_interest: list[OpenInterest]
    gate_decisions: list[tuple[GateDecision, str]]
    handled_ms: int  # every base candle (of any symbol) closing by then was handled
    day_ms: int | None  # the last UTC day the run had begun
    row_counts: dict[type, int] = field(default_factory=dict)
    candles: list[Candle] = field(default_factory=list)  # the signal candles it stored
    orders: list[OrderEvent] = field(default_factory=list)

    @property
    def is_replay(self) -> bool:
        return self.info.end_ms is not None  # a replay has an end; a live stream does not

    def handled(self, symbols: tuple[str, ...], interval_ms: int) -> dict[str, int]:
        """How far each symbol got (`handled_by_symbol`; a replay's stream is ordered)."""
        assert self.info.start_ms is not None
        return handled_by_symbol(self.info.start_ms, symbols, self.candles, self.orders,
                                 self.journal.signals, self.gate_decisions,
                                 interval_ms if self.is_replay else None)


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
                  EquityPointRow: len(reader.equity(run_id)),
                  SignalCandleChunkRow: reader.signal_candle_chunk_count(run_id),
                  OpenInterestRow: len(samples)}
    finally:
        reader.close()
    assert info.start_ms is not None
    return StoredRun(run_id, info, RunJournal(signals, orders, fills, trades), samples, gates,
                     handled_until_ms(info.start_ms, candles, orders, gates),
                     last_day_started_ms(gates), counts, candles, orders)


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
    stored = _in_todays_layout(info.settings)
    for section in TRADING_SECTIONS:
        if section not in stored and section == "portfolio":
            continue  # a run stored before the caps existed: one symbol, nothing to compare
        if stored.get(section) != given.get(section):
            raise ConfigError(f"run {run_id} was started with other [{section}] settings: "
                              "resume it with the config it started with")


def _in_todays_layout(stored: dict[str, Any]) -> dict[str, Any]:
    """A run's stored settings with the keys that moved since it was stored where they are
    now: `market.symbol` is a one-symbol `market.symbols`; `risk.max_open_positions` (one
    symbol: it never bound) went to `[portfolio]`."""
    stored = dict(stored)
    market, risk = dict(stored.get("market") or {}), dict(stored.get("risk") or {})
    if "symbol" in market:
        market["symbols"] = [market.pop("symbol")]
    risk.pop("max_open_positions", None)
    stored.update(market=market, risk=risk)
    return stored


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
    """Where the feed takes over from what the engines were given, by symbol."""

    last_closed_open_ms: dict[str, int | None]
    last_oi_ms: dict[str, int | None]
    last_funding_ms: dict[str, int | None]
    note: str  # for the console


async def prime_engine(run: SessionRun, rest: Any, interval_ms: int, signal_ms: int,
                       stored: StoredRun | None, advance_clock: ClockAdvance) -> FeedStart:
    """Warm every symbol's engine up before the run's first candle; a resumed run also gets
    its own history and its positions back (see the module docstring)."""
    from cryptobot.exchange.backfill import load_warm_up

    portfolio, start_ms = run.portfolio(), run.start_ms
    assert start_ms is not None
    # stopped before its state is back, a resumed run is left as it was stored
    run.restoring = stored is not None
    warm, loaded = {}, 0
    for symbol, engine in portfolio.engines.items():
        warm[symbol] = await load_warm_up(rest, symbol, interval_ms, start_ms,
                                          run.settings.feed.warmup_days,
                                          with_open_interest=stored is None)
        loaded += warm_up_engine(engine, warm[symbol], signal_ms)
    if stored is None:
        samples = sum(len(w.open_interest) for w in warm.values())
        return FeedStart({s: w.last_closed_open_ms for s, w in warm.items()},
                         {s: w.open_interest[-1].ts_ms if w.open_interest else None
                          for s, w in warm.items()}, dict.fromkeys(warm),
                         f"warm-up: {loaded} base candles, {samples} OI samples")
    history = await _replay_history(run, rest, interval_ms, stored, advance_clock)
    journal = stored.journal
    restored = []
    for symbol, engine in portfolio.engines.items():
        own = history.journals[symbol]
        engine.broker.restore(own.working_orders(), own.position_qty())
        signal_id = restore_open_position(engine, own, history.funding_paid)
        if signal_id is not None:
            held = engine.open_position(None) is not None
            restored.append(f"position {signal_id} restored" if held
                            else f"entry {signal_id} pending")
        engine.restore_account(own.signals, own.booked_trades(), stored.day_ms,
                               run_trades=journal.booked_trades())
    for signal in sorted(journal.signals, key=lambda s: s.decided_ms):
        if signal.status is SignalStatus.ENTERED:  # the entries of the hour count again
            portfolio.account.entered(signal.decided_ms)
    run.restoring = False
    _show_positions(run)
    replayed = sum(len(candles) for candles in history.candles.values())
    return FeedStart(
        {s: candles[-1].ts_open_ms if candles else warm[s].last_closed_open_ms
         for s, candles in history.candles.items()},
        {s: max((o.ts_ms for o in stored.open_interest if o.symbol in ("", s)), default=None)
         for s in portfolio.engines},
        {s: rates[-1].ts_ms if rates else None for s, rates in history.rates.items()},
        f"resumed run {stored.run_id}: warm-up: {loaded} base candles, replayed {replayed} "
        f"candles of its history, {len(journal.trades)} trades so far, "
        + (", ".join(restored) or "flat"))


@dataclass
class _History:
    """What a resumed run's own history gave back, by symbol."""

    journals: dict[str, RunJournal]  # each symbol's own (the run's, for one symbol)
    candles: dict[str, list[Candle]]
    rates: dict[str, list[FundingRate]]
    funding_paid: dict[str, float]  # by signal id, while the history was replayed


async def _replay_history(run: SessionRun, rest: Any, interval_ms: int, stored: StoredRun,
                          advance_clock: ClockAdvance) -> _History:
    """Every symbol's own history since the run's start, into its engine (decisions dropped),
    all symbols' events merged as the feed delivered them: in time order, samples before the
    candle they precede, ties in the symbols' order."""
    portfolio = run.portfolio()
    assert run.start_ms is not None
    symbols = tuple(portfolio.engines)
    handled = stored.handled(symbols, interval_ms)
    history = _History({s: stored.journal if len(symbols) == 1 else stored.journal.of_symbol(s)
                        for s in symbols}, {}, {}, {})
    events: list[tuple[int, int, int, Any]] = []
    for index, symbol in enumerate(symbols):
        candles, rates = await _history(rest, symbol, interval_ms, run.start_ms, handled[symbol])
        history.candles[symbol], history.rates[symbol] = candles, rates
        events += [(o.ts_ms, index, 0, o) for o in stored.open_interest
                   if o.symbol in ("", symbol)]
        events += [(r.ts_ms, index, 0, r) for r in rates]
        events += [(c.ts_close_ms, index, 1, c) for c in candles]
        if candles:
            run.prices[symbol] = [candles[0].open, candles[-1].close]
    events.sort(key=lambda item: item[:3])  # the feed's order
    for _, index, _, event in events:
        symbol = symbols[index]
        paid = portfolio.engines[symbol].replay_history((event,), advance_clock,
                                                        history.journals[symbol])
        for signal_id, usdt in paid.items():
            history.funding_paid[signal_id] = history.funding_paid.get(signal_id, 0.0) + usdt
    return history


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


def _show_positions(run: SessionRun) -> None:
    """The console's position lines, as the restored engines hold them."""
    for symbol, engine in run.portfolio().engines.items():
        held = engine.open_position(None)
        if held is None:
            continue
        qty = held["qty"] * (-1 if held["side"] == "short" else 1)
        run.recorder.positions[symbol] = (qty, held["entry_price"])
        if len(run.symbols) == 1:
            run.recorder.position_qty, run.recorder.entry_price = qty, held["entry_price"]
