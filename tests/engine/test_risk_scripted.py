"""Risk rules through the engine on hand-checkable SYNTHETIC price paths: daily loss limit, kill
switch, gate REDUCE and BLOCK, lot rounding and minimum notional, volatility scaling, caps.

As in test_exits_scripted.py: equity 10,000 USDT, the scripted strategy decides at a signal
candle's close with stop 95, and the entry fills at the next base candle's open.
"""

from __future__ import annotations

import pytest

from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.risk import KillSwitch, size_position
from cryptobot.model import GateAction, GateDecision, OrderPurpose, SignalStatus
from tests.conftest import backtest_parts
from tests.engine.conftest import (
    BASE_MS,
    T0_MS,
    ScriptedEntries,
    feed,
    flat,
    make_engine,
    path_candles,
    run_scripted,
    settings_with,
)

PLAIN = {"volatility_scaling": False, "lot_rounding": False}
NO_COSTS = {"slippage_bps": 0.0}


def _entries(settings, *at: int, stop: float = 95.0) -> ScriptedEntries:
    strategy = ScriptedEntries(settings, settings.market.symbol)
    strategy.entry_at, strategy.stop_price = at, stop
    return strategy


def _signal(recorder, signal_id):
    return next(s for s, _ in recorder.signals if s.signal_id == signal_id)


def test_daily_loss_limit_stops_entries_for_the_rest_of_the_utc_day_scripted():
    """Risk 2%: qty = 200 / 5 = 40. A gap to 90 fills the stop at 90: -400 - 2.0 - 1.8 fees =
    -403.80 USDT, beyond 2% of the day's starting equity (200). The entry at 00:45 the same day
    is rejected; the one at 00:15 the next day goes through."""
    settings = settings_with(risk={**PLAIN, "risk_per_trade": 0.02}, costs=NO_COSTS,
                             portfolio={"max_open_risk": 0.02},
                             exits={"targets": "fixed_r"})
    rows = flat(100, 4) + [(90, 91, 89, 90)] + flat(100, 300)
    engine, recorder = run_scripted(rows, settings, strategy=_entries(settings, 1, 3, 97))
    (first,) = engine.trades  # the day-2 position is still open at the end
    assert first.legs[0].price == 90.0 and first.qty_base == 40.0
    assert first.pnl_usdt == pytest.approx(-403.8)
    blocked = _signal(recorder, "TEST-3")
    assert blocked.status is SignalStatus.REJECTED
    assert blocked.reason == "portfolio: daily loss limit: lost 403.80 USDT today (limit 200.00)"
    assert not [e for e in recorder.orders if e.intent.client_id.startswith("TEST-3")]
    assert _signal(recorder, "TEST-97").status is SignalStatus.ENTERED
    second = next(f for f in recorder.fills if f.client_id == "TEST-97-entry")
    assert second.ts_ms == T0_MS + 291 * BASE_MS  # 2024-01-02 00:15
    assert second.qty_base == pytest.approx(0.02 * (10_000 - 403.8) / 5)


def test_kill_switch_file_flattens_cancels_and_stops_scripted(tmp_path):
    kill = tmp_path / "KILL"
    settings = settings_with(risk={**PLAIN, "kill_switch_file": str(kill)}, costs=NO_COSTS,
                             exits={"targets": "fixed_r"})
    engine, recorder, clock = make_engine(settings, strategy=_entries(settings, 1, 5),
                                          kill_switch=KillSwitch(kill))
    candles = path_candles(flat(100, 20))
    feed(engine, clock, candles[:6])  # in the position from candle 3: stop and two targets
    assert {o.purpose for o in engine.broker.working_orders()} == {
        OrderPurpose.STOP, OrderPurpose.TP1, OrderPurpose.TP2}
    kill.write_text("")
    feed(engine, clock, candles[6:])
    assert engine.killed
    (trade,) = engine.trades
    assert trade.exit_reason == "flatten" and trade.exit_ms == candles[9].ts_open_ms
    assert engine.broker.working_orders() == ()
    canceled = [e.intent.client_id for e in recorder.orders if e.status == "canceled"]
    assert canceled == ["TEST-1-tp1", "TEST-1-tp2", "TEST-1-stop1"]
    later = _signal(recorder, "TEST-5")
    assert later.status is SignalStatus.REJECTED and "kill switch" in later.reason


class StubGate:
    """A gate with a fixed answer (the macro gate's shape, none of its data)."""

    def __init__(self, action: GateAction, factor: float, reasons: tuple[str, ...]) -> None:
        self.action, self.factor, self.reasons = action, factor, reasons

    def decide(self, now_ms: int) -> GateDecision:
        return GateDecision(now_ms, self.action, self.factor, self.reasons)


def test_gate_reduce_halves_the_size_scripted():
    settings = settings_with(risk=PLAIN, costs=NO_COSTS, exits={"targets": "fixed_r"})
    gate = StubGate(GateAction.REDUCE, 0.5, ("QT active",))
    engine, recorder = run_scripted(flat(100, 8), settings, gate=gate)
    (signal, decision), = recorder.signals
    assert signal.status is SignalStatus.ENTERED and decision.action is GateAction.REDUCE
    assert signal.metrics["gate_size_factor"] == 0.5
    entry = next(f for f in recorder.fills if f.purpose is OrderPurpose.ENTRY)
    assert entry.qty_base == 5.0  # 50 / (100 - 95) = 10, x 0.5


def test_gate_block_rejects_with_its_reasons_scripted():
    settings = settings_with(risk=PLAIN, costs=NO_COSTS)
    gate = StubGate(GateAction.BLOCK, 0.0, ("QT active", "credit worsening"))
    engine, recorder = run_scripted(flat(100, 8), settings, gate=gate)
    (signal, decision), = recorder.signals
    assert signal.status is SignalStatus.REJECTED
    assert signal.reason == "gate BLOCK: QT active; credit worsening"
    assert decision.action is GateAction.BLOCK
    assert ("signal" in {trigger for _, trigger in recorder.gate_decisions})
    assert recorder.orders == [] and engine.trades == []


RULES = MarketRules("BTCUSDT", lot_step=0.001, min_qty=0.001, min_notional_usdt=100.0)


def test_lot_rounding_rounds_the_size_down_scripted():
    """Stop 95.3: qty = 50 / 4.7 = 10.638297... -> 10.638; TP1 half of it, 5.319."""
    settings = settings_with(risk={"volatility_scaling": False}, costs=NO_COSTS,
                             exits={"targets": "fixed_r"})
    engine, recorder = run_scripted(flat(100, 8), settings, stop_price=95.3, rules=RULES)
    signal = _signal(recorder, "TEST-1")
    assert signal.metrics["qty_unrounded"] == pytest.approx(10.638297872)
    entry = next(f for f in recorder.fills if f.purpose is OrderPurpose.ENTRY)
    assert entry.qty_base == 10.638
    targets = {o.purpose: o.qty_base for o in engine.broker.working_orders()}
    assert targets[OrderPurpose.TP1] == 5.319 and targets[OrderPurpose.TP2] == pytest.approx(5.319)


def test_a_position_too_small_to_split_exits_whole_at_tp1_scripted():
    """Lots of 10: qty 10.638 -> 10 (one lot); half of it rounds to 0 lots, so TP1 takes all 10
    rather than leaving the trade with no target, no break-even and no trailing stop."""
    coarse = MarketRules("BTCUSDT", lot_step=10.0, min_qty=10.0, min_notional_usdt=100.0)
    settings = settings_with(risk={"volatility_scaling": False}, costs=NO_COSTS,
                             exits={"targets": "fixed_r"})
    engine, recorder = run_scripted(flat(100, 8), settings, stop_price=95.3, rules=coarse)
    entry = next(f for f in recorder.fills if f.purpose is OrderPurpose.ENTRY)
    assert entry.qty_base == 10.0
    targets = {o.purpose: o.qty_base for o in engine.broker.working_orders()}
    assert targets[OrderPurpose.TP1] == 10.0 and OrderPurpose.TP2 not in targets


def test_below_minimum_notional_is_skipped_with_a_reason_scripted():
    """Equity 100: risk 0.50 USDT, qty 0.1, notional 10 USDT < the 100 USDT minimum."""
    settings = settings_with(risk={"volatility_scaling": False, "starting_equity_usdt": 100.0},
                             costs=NO_COSTS)
    engine, recorder = run_scripted(flat(100, 8), settings, rules=RULES)
    signal = _signal(recorder, "TEST-1")
    assert signal.status is SignalStatus.REJECTED
    assert signal.reason == "size too small: notional 10.00 USDT is below the minimum 100 USDT"
    assert recorder.orders == []


@pytest.mark.parametrize(("atr_pct_now", "median", "history_days", "factor"), [
    (0.02, 0.01, 2.0, 0.5),  # twice as volatile as usual: half size
    (0.10, 0.01, 2.0, 0.25),  # ten times: 0.1, floored at 0.25
    (0.005, 0.01, 2.0, 1.0),  # calmer than usual: never scaled up
    (0.02, 0.01, 0.5, 1.0),  # less than a day of history: not applied
])
def test_volatility_scaling_factor(atr_pct_now, median, history_days, factor):
    risk = settings_with().risk
    sized = size_position(risk, 10_000.0, 100.0, 95.0, atr_pct_now, median, history_days,
                          1.0, None)
    assert sized.details["volatility_factor"] == factor
    assert sized.qty_base == pytest.approx(10.0 * factor)  # 50 / 5 x factor


def test_leverage_and_max_notional_caps():
    """Stop 0.1 under 100: 50 / 0.1 = 500 BTC = 50,000 USDT. 3x leverage caps it at 300 BTC;
    a 20,000 USDT max notional at 200 BTC."""
    risk = settings_with(risk=PLAIN).risk
    sized = size_position(risk, 10_000.0, 100.0, 99.9, None, None, 0.0, 1.0, None)
    assert sized.qty_base == pytest.approx(300.0) and sized.details["capped"] == 1.0
    capped = risk.model_copy(update={"max_notional_usdt": 20_000.0})
    sized = size_position(capped, 10_000.0, 100.0, 99.9, None, None, 0.0, 1.0, None)
    assert sized.qty_base == pytest.approx(200.0) and sized.details["capped"] == 1.0


def test_max_notional_cap_through_the_engine_scripted():
    settings = settings_with(risk={**PLAIN, "max_notional_usdt": 20_000.0}, costs=NO_COSTS)
    rows = [(100, 100.05, 99.95, 100)] * 6
    engine, recorder = run_scripted(rows, settings, stop_price=99.9)
    entry = next(f for f in recorder.fills if f.purpose is OrderPurpose.ENTRY)
    assert entry.qty_base == pytest.approx(200.0)
    assert _signal(recorder, "TEST-1").metrics["capped"] == 1.0


@pytest.mark.parametrize("fast", [True, False])
def test_a_backtest_ignores_the_kill_switch_file(tmp_path, fast):
    """History is replayed as it was: `cryptobot kill` (the file) must not change a backtest."""
    from cryptobot.data import load_market_data
    from cryptobot.engine.gate import PassThroughGate
    from cryptobot.engine.recorder import MemoryRecorder
    from cryptobot.runners.backtest import run_backtest
    from cryptobot.strategy.loading import load_strategy
    from tests.engine.conftest import REPO

    kill = tmp_path / "KILL"
    kill.write_text("")
    market = load_market_data(REPO / "data" / "btc_2024-08_crash", "BTC/USDT:USDT")
    runs = []
    for path in (kill, tmp_path / "absent"):
        settings = settings_with(risk={"kill_switch_file": str(path)},
                                 params={"oi_confirmation": False})
        strategy = load_strategy(settings, "BTC/USDT:USDT")
        runs.append(run_backtest(settings, market, strategy, PassThroughGate(),
                                 MemoryRecorder(), *backtest_parts(settings), skip_quiet=fast))
    with_file, without = runs
    assert not with_file.engine.killed
    assert with_file.engine.trades and with_file.engine.trades == without.engine.trades
    assert not any("kill switch" in s.reason for s in with_file.engine.signals)
