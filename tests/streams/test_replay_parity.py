"""PARITY: the same real data through the backtest runner and through `paper --replay` (the live
adapter against a loopback Binance) gives identical signals and trades. Guards the engine forever.

data/btc_2024-08_crash: real Binance 5m candles and funding; its 5m open interest is SYNTHETIC
(anchored to the real daily values, see SYNTHETIC_OI_METHOD.md). `oi_drop_pct` is lowered to
0.4% so that signals whose acceptance hinges on open-interest timing actually trade.
"""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console

from cryptobot.cli.paper_command import _replay
from cryptobot.cli.paper_console import ConsoleRecorder
from cryptobot.clock import LiveClock
from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.engine.risk import KillSwitch
from cryptobot.macro import build_gate
from cryptobot.runners.backtest import run_backtest
from cryptobot.runners.stream_session import SessionRun, finish_session
from cryptobot.strategy.loading import load_strategy
from tests.conftest import DATA_DIR, REPO_ROOT, backtest_parts

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def parity_settings(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "parity.toml"
    path.write_text(f'extends = "{REPO_ROOT / "config" / "replay.toml"}"\n'
                    "[strategy.params]\noi_drop_pct = 0.4\n")
    return load_settings(path)


@pytest.mark.slow
def test_backtest_and_paper_replay_agree_on_every_signal_and_trade(parity_settings):
    from cryptobot.engine.market_rules import load_market_rules

    settings = parity_settings
    market = load_market_data(DATA_DIR / "btc_2024-08_crash", SYMBOL)
    assert market.oi_synthetic and not market.funding.empty

    backtest = run_backtest(settings, market, load_strategy(settings, SYMBOL),
                            build_gate(settings, LiveClock()), MemoryRecorder(),
                            *backtest_parts(settings), skip_quiet=True,
                            market_rules=load_market_rules(SYMBOL))

    stored = MemoryRecorder()
    run = SessionRun(settings, SYMBOL, ConsoleRecorder(stored, Console(quiet=True)), "memory",
                     KillSwitch(settings.risk.kill_switch_file))
    asyncio.run(_replay(run, market, None, None, speed=0.0))
    summary = finish_session(run)
    paper = run.engine

    assert len(backtest.engine.trades) >= 3  # the comparison below is about something
    assert any(s.metrics.get("oi_change_pct") is not None for s in paper.signals)
    assert paper.signals == backtest.engine.signals
    assert paper.trades == backtest.engine.trades
    assert [f for f in stored.fills] == [f for f in backtest.engine.recorder.fills]
    assert summary["total_pnl_usdt"] == backtest.summary["total_pnl_usdt"]
    # the replay really went through the stream, reconnects and repairs included
    stats = run.session.feed.stats
    assert stats.messages > 0.9 * len(market.candles)
    assert stats.rotations >= 20 and stats.duplicates_dropped + stats.repaired_candles > 0
