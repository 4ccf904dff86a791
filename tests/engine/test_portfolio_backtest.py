"""Several symbols in one backtest, on real data: Binance BTC and ETH 15m candles around the
2024-08-05 crash (data/btc_eth_2024-08_15m; no open interest exists offline for ETH, so the
strategy's OI confirmation is off). Both symbols confirm on the same 15m candle at 2024-07-25
14:45, 2024-08-09 14:15 and 2024-08-11 21:45 UTC: that is where the portfolio caps bind.
"""

from __future__ import annotations

import pytest

from cryptobot.brokers.paper import PaperBroker
from cryptobot.clock import SimClock, iso_utc
from cryptobot.config import Settings
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.market_rules import load_market_rules
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.model import SignalStatus
from cryptobot.runners.backtest import SymbolInputs, run_portfolio_backtest
from cryptobot.strategy.loading import load_strategy
from tests.engine.conftest import REPO

DATA = REPO / "data" / "btc_eth_2024-08_15m"
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
SAME_CANDLE = ("2024-07-25T14:45:00Z", "2024-08-09T14:15:00Z", "2024-08-11T21:45:00Z")
LOOSE = {"max_open_positions": 2, "max_open_risk": 1.0, "max_entries_per_hour": 10}
RECORDED = ("signals", "gate_decisions", "orders", "fills", "trades", "equity_points",
            "candles", "summary")


def settings(symbols, portfolio=None, risk=None) -> Settings:
    raw = Settings().model_dump()
    raw["market"].update(symbols=list(symbols), base_timeframe="15m", signal_timeframe="15m")
    raw["strategy"]["params"] = {"oi_confirmation": False}
    raw["portfolio"].update(portfolio or {})
    raw["risk"].update(risk or {})
    return Settings.model_validate(raw)


@pytest.fixture(scope="module")
def markets():
    return {symbol: load_market_data(DATA, symbol) for symbol in (BTC, ETH)}


def backtest(markets, symbols, *, fast=True, portfolio=None, risk=None):
    config = settings(symbols, portfolio, risk)
    clock = SimClock(0)
    inputs = {s: SymbolInputs(markets[s], load_strategy(config.for_symbol(s), s),
                              PaperBroker(config.costs, clock), load_market_rules(s))
              for s in symbols}
    recorder = MemoryRecorder()
    result = run_portfolio_backtest(config, inputs, PassThroughGate(), recorder, clock,
                                    skip_quiet=fast)
    return result, recorder


def trade_path(trade):
    """A trade without its size and money (what shared equity cannot change): each exit's
    time, price and reason (the average exit price weighs them by lot-rounded sizes)."""
    return (trade.symbol, trade.side, trade.signal_id, trade.entry_ms, trade.entry_price,
            trade.initial_stop, tuple((leg.ts_ms, leg.price, leg.reason) for leg in trade.legs))


def entered(signals, symbol=None):
    return {s.signal_id: s for s in signals
            if s.status is SignalStatus.ENTERED and symbol in (None, s.symbol)}


def test_caps_that_do_not_bind_give_each_symbol_the_trades_of_its_own_run(markets):
    no_daily = {"max_daily_loss": 0.0}
    both, _ = backtest(markets, (BTC, ETH), portfolio=LOOSE, risk=no_daily)
    for symbol in (BTC, ETH):
        alone, _ = backtest(markets, (symbol,), portfolio=LOOSE, risk=no_daily)
        mine = [t for t in both.portfolio.trades if t.symbol == symbol]
        assert len(mine) >= 5
        assert [trade_path(t) for t in mine] == [trade_path(t) for t in alone.engine.trades]
        shared, own = entered(both.portfolio.signals, symbol), entered(alone.engine.signals)
        assert shared.keys() == own.keys()
        for signal_id, signal in shared.items():
            # One equity for both symbols: each size is the same fraction of the equity of
            # the moment (risk_usdt = equity x risk_per_trade); only the equity differs.
            per_risk = signal.metrics["qty_unrounded"] / signal.metrics["risk_usdt"]
            alone_per_risk = own[signal_id].metrics["qty_unrounded"] / own[signal_id].metrics[
                "risk_usdt"]
            assert per_risk == pytest.approx(alone_per_risk, rel=1e-12)
    at = {iso_utc(t.entry_ms) for t in both.portfolio.trades if t.symbol == BTC} & {
        iso_utc(t.entry_ms) for t in both.portfolio.trades if t.symbol == ETH}
    assert set(SAME_CANDLE) <= at
    assert both.summary["symbols"].keys() == {BTC, ETH}
    assert both.summary["trades"] == sum(s["trades"] for s in both.summary["symbols"].values())


def test_one_open_position_refuses_the_second_confirmation_of_the_same_candle(markets):
    result, recorder = backtest(markets, (BTC, ETH), portfolio={"max_open_positions": 1})
    refused = {iso_utc(s.decided_ms): s for s in result.portfolio.signals
               if s.reason.startswith("portfolio:")}
    for when in SAME_CANDLE:  # BTC comes first in the config: it takes the slot
        assert refused[when].symbol == ETH
        assert refused[when].reason.startswith("portfolio: max_open_positions 1 reached "
                                               "(open: BTC/USDT:USDT)")
        assert refused[when].status is SignalStatus.REJECTED
    assert all(s.reason.startswith("portfolio:") for s, _ in recorder.signals
               if s.signal_id in {r.signal_id for r in refused.values()})
    held = sorted((t.entry_ms, t.exit_ms) for t in result.portfolio.trades)
    assert all(a_exit <= b_entry for (_, a_exit), (b_entry, _) in zip(held, held[1:], strict=False))


@pytest.mark.parametrize(("cap", "value", "named"), [
    ("max_entries_per_hour", 1, "portfolio: max_entries_per_hour 1 reached"),
    ("max_open_risk", 0.006, "portfolio: max_open_risk 0.60% of equity would be exceeded"),
])
def test_the_other_caps_refuse_the_second_entry_of_a_cascade(markets, cap, value, named):
    result, _ = backtest(markets, (BTC, ETH), portfolio={**LOOSE, cap: value})
    refused = {iso_utc(s.decided_ms): s for s in result.portfolio.signals
               if s.reason.startswith(named)}
    assert set(SAME_CANDLE) <= refused.keys()
    assert {refused[when].symbol for when in SAME_CANDLE} == {ETH}


def test_the_daily_loss_limit_counts_every_symbols_losses(markets):
    """2024-07-25: ETH is stopped out twice before BTC and ETH confirm at 14:45. With a limit of
    0.3% (30 USDT) BTC's entry is refused in the two-symbol run, for ETH's losses; alone, BTC
    enters."""
    tight = {"max_daily_loss": 0.003}
    both, _ = backtest(markets, (BTC, ETH), portfolio=LOOSE, risk=tight)
    alone, _ = backtest(markets, (BTC,), portfolio=LOOSE, risk=tight)
    at = "2024-07-25T14:45:00Z"
    shared = {(s.symbol, iso_utc(s.decided_ms)): s for s in both.portfolio.signals}
    eth_lost = -sum(t.pnl_usdt for t in both.portfolio.trades if t.symbol == ETH
                    and "2024-07-25T00:00:00Z" <= iso_utc(t.exit_ms) < at)
    assert eth_lost > 30
    assert shared[(BTC, at)].reason == (f"portfolio: daily loss limit: lost {eth_lost:.2f} USDT "
                                        "today (limit 30.00)")
    assert shared[(ETH, at)].reason.startswith("portfolio: daily loss limit")
    assert at in {iso_utc(t.entry_ms) for t in alone.engine.trades}


def test_two_symbols_fast_equals_every_candle_and_reruns_are_identical(markets):
    fast, fast_rec = backtest(markets, (BTC, ETH), portfolio={"max_open_positions": 1})
    again, again_rec = backtest(markets, (BTC, ETH), portfolio={"max_open_positions": 1})
    slow, slow_rec = backtest(markets, (BTC, ETH), fast=False,
                              portfolio={"max_open_positions": 1})
    for name in RECORDED:
        assert getattr(fast_rec, name) == getattr(again_rec, name), name
        if name != "candles":  # skipped candles are recorded in bulk, per symbol
            assert getattr(fast_rec, name) == getattr(slow_rec, name), name
    assert sorted(fast_rec.candles, key=_by_symbol) == sorted(slow_rec.candles, key=_by_symbol)
    assert fast.summary == slow.summary
    assert {c.symbol for c in fast_rec.candles} == {BTC, ETH}


def _by_symbol(candle):
    return candle.symbol, candle.ts_open_ms


def test_the_run_summary_counts_time_held_once_and_keeps_account_figures_to_the_run(markets):
    one_slot, _ = backtest(markets, (BTC, ETH), portfolio={"max_open_positions": 1})
    trades = one_slot.portfolio.trades
    span = one_slot.end_ms - one_slot.start_ms
    held = sum(t.exit_ms - t.entry_ms for t in trades)  # one at a time: no overlap
    assert one_slot.summary["exposure_pct"] == pytest.approx(held / span * 100.0)
    loose, _ = backtest(markets, (BTC, ETH), portfolio=LOOSE)
    per_symbol = loose.summary["symbols"]
    assert loose.summary["exposure_pct"] < sum(s["exposure_pct"] for s in per_symbol.values())
    assert loose.summary["exposure_pct"] > max(s["exposure_pct"] for s in per_symbol.values())
    for one in per_symbol.values():  # the equity is the run's, not each symbol's
        assert "final_equity_usdt" not in one and "max_drawdown_pct" not in one
    assert "portfolio: max_open_positions" in one_slot.summary["rejections"]


def test_restoring_the_account_through_every_engine_counts_each_trade_once(markets):
    """A resumed run gives each symbol's engine its signals and trades and the run's trades
    for the account: asked once per engine, the day's realised loss is still counted once."""
    tight = {"max_daily_loss": 0.003}
    ran, _ = backtest(markets, (BTC, ETH), portfolio=LOOSE, risk=tight)
    day_ms = ran.portfolio.account.day_ms
    booked = [(t, t.exit_ms) for t in ran.portfolio.trades]
    fresh, _ = backtest(markets, (BTC, ETH), portfolio=LOOSE, risk=tight)
    for engine in fresh.portfolio.engines.values():
        mine = [(t, ms) for t, ms in booked if t.symbol == engine.symbol]
        engine.restore_account([s for s in ran.portfolio.signals if s.symbol == engine.symbol],
                               mine, day_ms, run_trades=booked)
    assert fresh.portfolio.equity_usdt == ran.portfolio.equity_usdt
    restored, original = fresh.portfolio.account.daily_loss, ran.portfolio.account.daily_loss
    assert restored.realised_usdt == pytest.approx(original.realised_usdt, abs=1e-9)
    assert restored.day_start_equity == pytest.approx(original.day_start_equity, abs=1e-9)
