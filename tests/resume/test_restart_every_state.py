"""The engine's restart (engine/restart.py + runners/restore.py), in process, at a cut in each
state a run can be stopped in: nothing going on, a setup pending, an entry sent and not filled,
a position before TP1, after TP1 (break-even, trailing), after it paid funding, a market exit
working, and just after a trade closed. A new engine gets the journal stored up to the cut,
replays the history and takes the position over; fed the rest, it records exactly what the
uninterrupted engine recorded.

Real data: the bundled crash window (real Binance 5m candles and funding; SYNTHETIC open
interest, so `oi_confirmation = false`), the paper broker, events in the order a feed delivers
them; once with the liquidation-rebound strategy (longs, 2024-08-03..06, the macro gate of
config/replay.toml) and once with the short-squeeze strategy (shorts, 2024-08-05..09, its
profile: no macro gate).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import DAY_MS, LiveClock, SimClock
from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.loop import Engine
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.engine.risk import NeverEngaged
from cryptobot.exchange.replay import CandleColumns
from cryptobot.macro import build_gate
from cryptobot.model import Candle, FundingRate, OpenInterest, OrderPurpose
from cryptobot.runners.restore import (
    RunJournal,
    handled_until_ms,
    last_day_started_ms,
    restore_open_position,
)
from cryptobot.runners.stream_session import advance_sim_clock
from cryptobot.strategy.loading import load_strategy
from tests.conftest import DATA_DIR, REPO_ROOT
from tests.engine.conftest import feed, flat, make_engine, path_candles, settings_with

SYMBOL = "BTC/USDT:USDT"
WARMUP_MS = 4 * DAY_MS
# strategy: (its settings over config/replay.toml, first day, days)
RUNS = {
    "long": ("", 1_722_643_200_000, 3),  # 2024-08-03T00:00Z
    "short": ('[strategy]\npath = "strategies.short_squeeze:ShortSqueeze"\n'
              "[macro]\nenabled = false\n", 1_722_816_000_000, 4),  # 2024-08-05T00:00Z
}
TABLES = ("signals", "gate_decisions", "orders", "fills", "trades", "equity_points", "candles",
          "oi_samples")


@dataclass
class Window:
    settings: object
    start_ms: int
    warm: list[Candle]
    warm_oi: list[OpenInterest]
    events: list  # what the feed delivers from START_MS on, in its order


@pytest.fixture(scope="module", params=sorted(RUNS))
def window(request, tmp_path_factory) -> Window:
    extra, start_ms, days = RUNS[request.param]
    path = tmp_path_factory.mktemp("cfg") / "replay.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / "replay.toml"}"\n{extra}'
                    "[strategy.params]\noi_confirmation = false\n")
    settings = load_settings(path)
    market = load_market_data(DATA_DIR / "btc_2024-08_crash", SYMBOL, start_ms - WARMUP_MS,
                              start_ms + days * DAY_MS)
    candles = list(CandleColumns.from_frame(market.candles, market.base_interval_ms))
    oi = [OpenInterest(int(t), float(c), float(v)) for t, c, v in zip(
        market.open_interest["ts_ms"], market.open_interest["oi_contracts"],
        market.open_interest["oi_value_usdt"], strict=True)]
    rates = [FundingRate(int(t), float(r)) for t, r in zip(
        market.funding["ts_ms"], market.funding["rate"], strict=True)]
    events = [(s.ts_ms, 0, s) for s in oi if s.ts_ms > start_ms]
    events += [(r.ts_ms, 0, r) for r in rates if r.ts_ms > start_ms]
    events += [(c.ts_close_ms, 1, c) for c in candles if c.ts_open_ms >= start_ms]
    events.sort(key=lambda item: (item[0], item[1]))
    return Window(settings, start_ms, [c for c in candles if c.ts_open_ms < start_ms],
                  [s for s in oi if s.ts_ms <= start_ms], [e for _, _, e in events])


def _engine(window: Window, recorder: MemoryRecorder) -> tuple[Engine, SimClock]:
    settings = window.settings
    clock = SimClock(window.start_ms)
    engine = Engine(settings, load_strategy(settings, SYMBOL),
                    PaperBroker(settings.costs, clock), build_gate(settings, LiveClock()),
                    recorder, clock, kill_switch=NeverEngaged())
    engine.warm_up(window.warm)
    return engine, clock


def _feed(engine: Engine, clock: SimClock, event) -> None:
    advance = advance_sim_clock(clock)
    if isinstance(event, Candle):
        advance(event.ts_close_ms)
        engine.on_base_candle(event)
    elif isinstance(event, OpenInterest):
        advance(event.ts_ms)
        engine.on_open_interest(event)
    else:
        advance(event.ts_ms)
        engine.on_funding(event)


def _rows(recorder: MemoryRecorder) -> dict[str, list]:
    return {name: list(getattr(recorder, name)) for name in TABLES}


def _state(engine: Engine) -> str:
    held = engine.open_position(None)
    if held is not None and held["funding_usdt"]:
        return "funding paid"  # held over an 8h settlement
    if held is not None:
        return "after tp1" if held["qty"] < held["qty_at_entry"] else "position"
    if not engine.is_idle():
        return "entry working"
    if engine.strategy_waiting():
        return "setup pending"
    if engine.trades and engine.recorder.trades[-1][0].exit_ms >= engine.clock.now_ms() - 600_000:
        return "trade just closed"
    return "nothing"


@pytest.fixture(scope="module")
def uninterrupted(window):
    """The whole run, and after each event what was stored and the engine's state."""
    recorder = MemoryRecorder()
    engine, clock = _engine(window, recorder)
    for sample in window.warm_oi:
        engine.on_open_interest(sample)
    cuts = []
    for event in window.events:
        _feed(engine, clock, event)
        if isinstance(event, Candle):
            cuts.append((_state(engine), {name: len(rows) for name, rows in
                                          _rows(recorder).items()}))
    engine.finish()
    assert len(engine.trades) >= 3
    return _rows(recorder), cuts


def _first_cut_per_state(cuts) -> dict[str, int]:
    firsts: dict[str, int] = {}
    for index, (state, _) in enumerate(cuts):
        firsts.setdefault(state, index)
    return firsts


def test_every_state_a_run_can_stop_in_occurs(uninterrupted):
    _, cuts = uninterrupted
    assert set(_first_cut_per_state(cuts)) >= {
        "nothing", "setup pending", "entry working", "position", "after tp1",
        "funding paid", "trade just closed"}


@pytest.mark.parametrize("state", ["setup pending", "entry working", "position", "after tp1",
                                   "funding paid", "trade just closed", "nothing"])
def test_a_restarted_engine_goes_on_exactly_as_the_uninterrupted_one(window, uninterrupted,
                                                                     state):
    reference, cuts = uninterrupted
    firsts = _first_cut_per_state(cuts)
    counts = cuts[firsts[state]][1]
    stored = MemoryRecorder()  # what the store holds at the cut
    for name in TABLES:
        setattr(stored, name, list(reference[name][:counts[name]]))
    journal = RunJournal(stored.signals, stored.orders, stored.fills, stored.trades)
    until = handled_until_ms(window.start_ms, stored.candles, stored.orders,
                             stored.gate_decisions)
    last_oi = stored.oi_samples[-1].ts_ms

    engine, clock = _engine(window, stored)
    history = [e for e in window.events if not isinstance(e, OpenInterest)
               and (e.ts_close_ms if isinstance(e, Candle) else e.ts_ms) <= until]
    history = sorted([*stored.oi_samples, *history], key=lambda e: (
        e.ts_close_ms if isinstance(e, Candle) else e.ts_ms, isinstance(e, Candle)))
    paid = engine.replay_history(history, advance_sim_clock(clock), journal)
    engine.broker.restore(journal.working_orders(), journal.position_qty())
    restore_open_position(engine, journal, paid)
    engine.restore_account(journal.signals, journal.booked_trades(),
                           last_day_started_ms(stored.gate_decisions))
    for event in window.events:
        if isinstance(event, OpenInterest):
            if event.ts_ms > last_oi:
                _feed(engine, clock, event)
        elif (event.ts_close_ms if isinstance(event, Candle) else event.ts_ms) > until:
            _feed(engine, clock, event)
    engine.finish()
    assert _rows(stored) == reference


def test_a_restart_while_the_time_stop_is_working_sends_no_second_exit():
    """SYNTHETIC path: entry at 100 (stop 95), nothing happens, the 1h time stop sends its
    market exit; the process stops before it fills. The restarted engine waits for that exit
    (no second one, which the broker would refuse) and books the same trade."""
    settings = settings_with(exits={"time_stop_hours": 1.0})
    candles = path_candles(flat(100, 30))
    reference, recorder, clock = make_engine(settings)
    counts, states = [], []
    for candle in candles:
        feed(reference, clock, [candle])
        counts.append({name: len(rows) for name, rows in _rows(recorder).items()})
        states.append(any(e.intent.purpose is OrderPurpose.TIME_EXIT and e.status == "open"
                          for e in recorder.orders) and not reference.trades)
    cut = states.index(True)  # the time exit was sent on this candle
    engine, stored, clock = make_engine(settings)  # its recorder: what the store holds
    for name in TABLES:
        setattr(stored, name, list(getattr(recorder, name)[:counts[cut][name]]))
    journal = RunJournal(stored.signals, stored.orders, stored.fills, stored.trades)
    engine.replay_history(candles[:cut + 1], advance_sim_clock(clock), journal)
    engine.broker.restore(journal.working_orders(), journal.position_qty())
    assert restore_open_position(engine, journal) == "TEST-1"
    engine.restore_account(journal.signals, journal.booked_trades(),
                           last_day_started_ms(stored.gate_decisions))
    feed(engine, clock, candles[cut + 1:])
    assert _rows(stored) == _rows(recorder)
    assert [leg.reason for leg in engine.trades[0].legs] == ["time_stop"]
