"""The short-squeeze strategy trades (not only signals): shorts on the real 14-month file, and
the same signals and trades from the backtest and from `paper --replay` (the live adapter
against a loopback Binance) on the bundled crash window. Open-interest confirmation is OFF:
the 14-month file has no open interest, and the crash window's 5m OI is SYNTHETIC (its falls
sit in red candles, so it confirms no squeeze)."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from cryptobot.cli.paper_command import _replay
from cryptobot.cli.paper_console import ConsoleRecorder
from cryptobot.clock import LiveClock
from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.market_rules import load_market_rules
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.engine.risk import KillSwitch
from cryptobot.macro import build_gate
from cryptobot.model import Side
from cryptobot.runners.backtest import run_backtest
from cryptobot.runners.stream_session import SessionRun, finish_session
from cryptobot.strategy.loading import load_strategy
from tests.conftest import DATA_DIR, REPO_ROOT, backtest_parts

SYMBOL = "BTC/USDT:USDT"


def short_settings(tmp_path, base: str):
    path = tmp_path / "short.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / base}"\n'
                    '[strategy]\npath = "strategies.short_squeeze:ShortSqueeze"\n'
                    "[strategy.params]\noi_confirmation = false\n")
    return load_settings(path)


def backtest(settings, market):
    return run_backtest(settings, market, load_strategy(settings, SYMBOL),
                        build_gate(settings, LiveClock()), MemoryRecorder(),
                        *backtest_parts(settings), skip_quiet=True,
                        market_rules=load_market_rules(SYMBOL))


@pytest.mark.slow
def test_the_short_rule_makes_short_trades_on_the_14_month_file(tmp_path):
    settings = short_settings(tmp_path, "crosscheck.toml")
    market = load_market_data(DATA_DIR / "btc_5m_2023-11_2024-12", SYMBOL)
    trades = backtest(settings, market).engine.trades
    assert len(trades) >= 5
    assert {t.side for t in trades} == {Side.SELL}
    for trade in trades:  # every stop above the entry, every target leg below it or a stop
        assert trade.initial_stop > trade.entry_price
        for leg in trade.legs:
            if leg.reason in ("tp1", "tp2"):
                assert leg.price < trade.entry_price


@pytest.mark.slow
def test_backtest_and_paper_replay_agree_on_every_short(tmp_path):
    settings = short_settings(tmp_path, "replay.toml")
    market = load_market_data(DATA_DIR / "btc_2024-08_crash", SYMBOL)
    result = backtest(settings, market)

    stored = MemoryRecorder()
    run = SessionRun(settings, SYMBOL, ConsoleRecorder(stored, Console(quiet=True)), "memory",
                     KillSwitch(settings.risk.kill_switch_file))
    asyncio.run(_replay(run, market, None, None, speed=0.0))
    summary = finish_session(run)
    paper = run.engine

    assert len(result.engine.trades) >= 3  # the comparison below is about something
    assert {t.side for t in result.engine.trades} == {Side.SELL}
    assert paper.signals == result.engine.signals
    assert paper.trades == result.engine.trades
    assert stored.fills == result.engine.recorder.fills
    assert summary["total_pnl_usdt"] == result.summary["total_pnl_usdt"]
