"""The rebound's evidence through the real engine and the backtest runner: every signal that
reached a spike carries every item; `[evidence] required_beyond_oi` refuses an entry short of it.

The 2024-08-05 crash folder has SYNTHETIC open interest (data/btc_2024-08_crash, labelled): its
two entries are the signals whose open interest fell. The December 2024 span of the 14-month
real folder meets the real forceOrder records (data/liquidations).
"""

from __future__ import annotations

import json

import pytest

from cryptobot.clock import DAY_MS, parse_utc
from cryptobot.data import load_market_data
from cryptobot.data.liquidation_files import load_liquidations
from cryptobot.engine.evidence import ITEM_NAMES
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.model import SignalStatus
from cryptobot.runners.backtest import SymbolInputs, run_backtest, run_portfolio_backtest
from cryptobot.strategy import Params
from cryptobot.strategy.loading import load_strategy
from tests.conftest import backtest_parts
from tests.engine.conftest import REPO, EnterAtTheCascade, settings_with

CRASH = REPO / "data" / "btc_2024-08_crash"
FOURTEEN_MONTHS = REPO / "data" / "btc_5m_2023-11_2024-12"
SYMBOL = "BTC/USDT:USDT"


def crash_run(market, fast=True, **evidence):
    settings = settings_with(market={"base_timeframe": "5m"}, evidence=evidence)
    return run_backtest(settings, market, load_strategy(settings, SYMBOL), PassThroughGate(),
                        MemoryRecorder(), *backtest_parts(settings), skip_quiet=fast)


@pytest.fixture(scope="module")
def crash_market():
    return load_market_data(CRASH, SYMBOL)


@pytest.fixture(scope="module")
def recorded(crash_market):
    """Default settings: evidence recorded, none required beyond open interest."""
    return crash_run(crash_market)


def test_every_signal_stores_every_item_with_its_value(recorded):
    signals = recorded.engine.signals
    assert signals
    for signal in signals:
        assert tuple(item.name for item in signal.evidence) == ITEM_NAMES
        oi = signal.evidence[0]
        assert oi.value == signal.metrics["oi_change_pct"]
    entered = [s for s in signals if s.status is SignalStatus.ENTERED]
    assert len(entered) == 2 == len(recorded.engine.trades)
    for signal in entered:
        holding = {item.name: item.holds for item in signal.evidence}
        # Only open interest holds: no liquidation data for August 2024, funding at +0.01%
        # (not flushed), and the pass-through gate reads neither credit nor repo.
        assert holding == {"open_interest": True, "liquidations": None,
                           "funding_flushed": False, "credit_holding": None, "repo_calm": None}


def test_a_signal_that_needs_two_items_is_refused_when_only_open_interest_holds(crash_market,
                                                                               recorded):
    result = crash_run(crash_market, required_beyond_oi=2)
    assert result.engine.trades == []
    before = {s.signal_id: s for s in recorded.engine.signals if s.status is SignalStatus.ENTERED}
    refused = [s for s in result.engine.signals if s.signal_id in before]
    assert len(refused) == 2
    for signal in refused:
        assert signal.status is SignalStatus.REJECTED
        assert signal.reason.startswith(
            "evidence 0 of 2 required beyond open interest: liquidations unknown (no liquidation "
            "data covers the spike window")
        assert "funding not flushed (last rate +0.0100%" in signal.reason
        assert "credit unknown" in signal.reason and "funding markets unknown" in signal.reason
        assert signal.evidence == before[signal.signal_id].evidence


def test_the_entry_goes_ahead_once_enough_items_hold(crash_market, recorded):
    # +0.01% counts as flushed at this threshold: one item beyond open interest holds.
    result = crash_run(crash_market, required_beyond_oi=1, funding_flushed_rate=0.0001)
    assert [t.entry_ms for t in result.engine.trades] == \
        [t.entry_ms for t in recorded.engine.trades]
    result = crash_run(crash_market, required_beyond_oi=2, funding_flushed_rate=0.0001)
    assert result.engine.trades == []


def test_every_candle_path_measures_the_same_evidence(crash_market):
    fast = crash_run(crash_market, required_beyond_oi=2)
    slow = crash_run(crash_market, fast=False, required_beyond_oi=2)
    assert slow.engine.signals == fast.engine.signals


def december(fast: bool, liquidations):
    settings = settings_with(market={"base_timeframe": "5m"},
                             evidence={"liquidation_median_days": 1})
    start, end = parse_utc("2024-12-04"), parse_utc("2024-12-07")
    market = load_market_data(FOURTEEN_MONTHS, SYMBOL, start, end, warmup_ms=3 * DAY_MS)
    broker, clock = backtest_parts(settings)
    inputs = {SYMBOL: SymbolInputs(market, load_strategy(settings, SYMBOL), broker,
                                   liquidations=liquidations)}
    return run_portfolio_backtest(settings, inputs, PassThroughGate(), MemoryRecorder(),
                                  clock, skip_quiet=fast, start_ms=start, end_ms=end)


def test_the_december_flash_crash_fell_in_the_recorders_gap():
    """The one spike of 2024-12-04 .. 06 (22:15 UTC on the 5th) lies in the forceOrder file's
    gap: its liquidations are unknown, never "none"; both ways of feeding agree."""
    records = load_liquidations(REPO / "data" / "liquidations", SYMBOL, 60 * 60_000)
    fast, slow = december(True, records), december(False, records)
    (signal,) = fast.portfolio.signals
    assert signal.spike_ms == parse_utc("2024-12-05T22:15")
    liquidations = signal.evidence[1]
    assert liquidations.name == "liquidations" and liquidations.holds is None
    assert "no liquidation data covers the spike window 22:15-22:30" in liquidations.detail
    assert slow.portfolio.signals == fast.portfolio.signals
    funding = signal.evidence[2]
    assert funding.holds is False and funding.value == pytest.approx(0.00047059)


@pytest.mark.parametrize("required", [1, 2])
def test_real_liquidations_count_as_evidence_in_the_engine(required):
    settings = settings_with(market={"base_timeframe": "5m"},
                             evidence={"liquidation_median_days": 1,
                                       "required_beyond_oi": required})
    start, end = parse_utc("2024-12-05"), parse_utc("2024-12-06")
    market = load_market_data(FOURTEEN_MONTHS, SYMBOL, start, end, warmup_ms=DAY_MS)
    records = load_liquidations(REPO / "data" / "liquidations", SYMBOL, 60 * 60_000)
    broker, clock = backtest_parts(settings)
    inputs = {SYMBOL: SymbolInputs(market, EnterAtTheCascade(Params(), SYMBOL), broker,
                                   liquidations=records)}
    result = run_portfolio_backtest(settings, inputs, PassThroughGate(), MemoryRecorder(),
                                    clock, skip_quiet=True, start_ms=start, end_ms=end)
    (signal,) = result.portfolio.signals
    liquidations = signal.evidence[1]
    assert liquidations.holds is True and liquidations.value > 10
    if required == 1:
        assert signal.status is SignalStatus.ENTERED
    else:
        assert signal.status is SignalStatus.REJECTED
        assert signal.reason.startswith("evidence 1 of 2 required beyond open interest: "
                                        "funding not flushed")


def test_the_backtest_cli_reads_liquidations_and_names_their_coverage(run_cli, tmp_path):
    from tests.engine.test_backtest_cli import _config

    config = _config(tmp_path, f'[evidence]\nliquidations_dir = "{REPO / "data" / "liquidations"}"'
                               '\nliquidation_median_days = 1\n')
    code, out, err = run_cli("backtest", "--config", config, "--data", str(FOURTEEN_MONTHS),
                             "--from", "2024-12-05", "--to", "2024-12-05", "--json",
                             "--db", f"sqlite:///{tmp_path / 'e.sqlite'}")
    assert code == 0, err
    outcome = json.loads(out)
    assert outcome["summary"]["liquidations"].startswith(
        "1844 liquidations (binance_forceOrder_BTCUSDT_2024-12.csv), covering "
        "2024-12-04T16:46 .. 2024-12-05T01:54, ")
    (signal,) = outcome["signals"]  # the 22:15 flash crash, in the recorder's gap
    assert signal["evidence"][1] == {
        "name": "liquidations", "value": None, "holds": None,
        "detail": "no liquidation data covers the spike window 22:15-22:30"}


def test_a_broken_liquidation_record_is_one_clear_error(run_cli, tmp_path):
    from tests.engine.test_backtest_cli import _config

    folder = tmp_path / "liquidations"
    folder.mkdir()
    lines = (REPO / "data" / "liquidations" / "binance_forceOrder_BTCUSDT_2024-12.csv") \
        .read_text().splitlines()[:4]
    lines[3] = lines[3].replace("+05:30", "")  # a trade time without its UTC offset
    (folder / "force_orders.csv").write_text("\n".join(lines) + "\n")
    config = _config(tmp_path, f'[evidence]\nliquidations_dir = "{folder}"\n')
    code, out, err = run_cli("backtest", "--config", config, "--data", str(CRASH), "--db",
                             f"sqlite:///{tmp_path / 'e.sqlite'}")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {folder / 'force_orders.csv'}:4: not a forceOrder record")


def test_a_short_strategys_rejected_signals_are_judged_as_shorts(crash_market):
    """ShortSqueeze's rejections get a short's funding rule (flushed at or over minus the
    threshold, 0 by default), as its entries do; never a long's."""
    settings = settings_with(market={"base_timeframe": "5m"},
                             strategy={"path": "strategies.short_squeeze:ShortSqueeze",
                                       "params": {"oi_confirmation": False}})
    result = run_backtest(settings, crash_market, load_strategy(settings, SYMBOL),
                          PassThroughGate(), MemoryRecorder(), *backtest_parts(settings),
                          skip_quiet=True)
    rejected = [s for s in result.engine.signals if s.status is SignalStatus.REJECTED]
    entered = [s for s in result.engine.signals if s.status is SignalStatus.ENTERED]
    assert rejected and entered
    for signal in rejected + entered:
        funding = signal.evidence[2]
        assert funding.name == "funding_flushed", signal.signal_id
        assert funding.holds is (funding.value >= 0) and "flushed at >= " in funding.detail
    assert any(s.evidence[2].holds for s in rejected)  # a long's rule would say no to these
