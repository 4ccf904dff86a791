"""The fast backtest path (precomputed, quiet candles skipped) == feeding every base candle.

Everything the engine decides and records is compared: trades, signals, gate decisions (daily and
at signals), orders, fills, equity points, signal candles, OI samples, the summary and the time
in the market; on real data, with and without OI confirmation, with the default exits
(milestones, trailing, funding, volatility scaling) and the cross-check profile, on data with
holes (as --allow-gaps allows) and with a warm-up before the traded span.
"""

from __future__ import annotations

import shutil

import pytest

from cryptobot.clock import parse_utc
from cryptobot.config import load_settings
from cryptobot.data import load_market_data
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.market_rules import load_market_rules
from cryptobot.engine.recorder import MemoryRecorder
from cryptobot.runners.backtest import run_backtest
from cryptobot.strategy.loading import load_strategy
from tests.conftest import backtest_parts
from tests.engine.conftest import REPO, settings_with

SYMBOL = "BTC/USDT:USDT"
FOURTEEN_MONTHS = REPO / "data" / "btc_5m_2023-11_2024-12"
CRASH = REPO / "data" / "btc_2024-08_crash"
RECORDED = ("signals", "gate_decisions", "orders", "fills", "trades", "equity_points",
            "candles", "oi_samples", "summary")


def _run(settings, market, fast, start_ms=None, rules=None):
    strategy = load_strategy(settings, SYMBOL)
    recorder = MemoryRecorder()
    result = run_backtest(settings, market, strategy, PassThroughGate(), recorder,
                          *backtest_parts(settings), skip_quiet=fast, start_ms=start_ms,
                          market_rules=rules)
    return result, recorder


def assert_identical(settings, market, start_ms=None, rules=None):
    fast, fast_rec = _run(settings, market, True, start_ms, rules)
    slow, slow_rec = _run(settings, market, False, start_ms, rules)
    for name in RECORDED:
        assert getattr(fast_rec, name) == getattr(slow_rec, name), name
    assert fast.engine.trades == slow.engine.trades
    assert fast.engine.signals == slow.engine.signals
    assert fast.engine.exposure_ms == slow.engine.exposure_ms
    assert fast.summary == slow.summary
    assert fast.engine.candles_processed < slow.engine.candles_processed  # it did skip
    return fast, fast_rec


@pytest.mark.slow
def test_crosscheck_profile_on_14_months():
    result, recorder = assert_identical(load_settings(REPO / "config" / "crosscheck.toml"),
                                        load_market_data(FOURTEEN_MONTHS, SYMBOL))
    assert len(result.engine.trades) == 81
    assert len(recorder.candles) == 122_688 // 3


@pytest.mark.slow
def test_default_exits_funding_and_scaling_on_14_months():
    """Default profile with OI confirmation off (the 14-month file has no OI): milestone
    targets, the trailing stop after TP1, funding every 8h, volatility scaling, lot rounding."""
    settings = settings_with(params={"oi_confirmation": False})
    result, _ = assert_identical(settings, load_market_data(FOURTEEN_MONTHS, SYMBOL),
                                 rules=load_market_rules(SYMBOL))
    reasons = {leg.reason for t in result.engine.trades for leg in t.legs}
    assert {"tp1", "trailing_stop", "breakeven_stop", "stop"} <= reasons
    assert any(t.funding_usdt != 0.0 for t in result.engine.trades)
    assert result.summary["funding_charged"] is True


@pytest.mark.parametrize(("oi_confirmation", "oi_drop_pct", "trades"), [
    (True, 1.5, 2),  # the default rule confirms 2 of the 16 spikes (SYNTHETIC OI)
    (True, 10.0, 0),  # a rule no spike passes
    (False, 1.5, 12),
])
def test_crash_window_with_oi_on_and_off(oi_confirmation, oi_drop_pct, trades):
    settings = settings_with(params={"oi_confirmation": oi_confirmation,
                                     "oi_drop_pct": oi_drop_pct})
    result, recorder = assert_identical(settings, load_market_data(CRASH, SYMBOL),
                                        rules=load_market_rules(SYMBOL))
    assert recorder.oi_samples, "the engine records the OI samples it was given"
    assert len(recorder.oi_samples) == len(result.engine.market.open_interest)
    assert len(result.engine.trades) == trades


def _holed_copy(tmp_path, cuts: list[tuple[int, int]]):
    """The crash window with rows removed: holes of many sizes, some cutting 15m buckets short
    and some inside open positions."""
    folder = tmp_path / "holed"
    folder.mkdir()
    for source in CRASH.iterdir():
        if source.name.endswith("_window.csv") and "5m" in source.name:
            lines = source.read_text().splitlines(keepends=True)
            keep = [line for n, line in enumerate(lines)
                    if not any(a <= n < b for a, b in cuts)]
            (folder / source.name).write_text("".join(keep))
        elif source.is_file():
            shutil.copy(source, folder / source.name)
    return folder


@pytest.mark.parametrize("profile", ["default", "crosscheck"])
def test_data_with_holes(tmp_path, profile):
    settings = (settings_with(params={"oi_confirmation": False}) if profile == "default"
                else load_settings(REPO / "config" / "crosscheck.toml"))
    # 1 row, 2 rows (a bucket cut short), 20 rows, a whole day, ... at various places
    cuts = [(1500, 1501), (1900, 1902), (2000, 2020), (2310, 2311), (2400, 2688),
            (3001, 3003), (3500, 3530), (4005, 4006), (5000, 5050)]
    market = load_market_data(_holed_copy(tmp_path, cuts), SYMBOL, allow_gaps=True)
    assert market.gaps
    result, _ = assert_identical(settings, market, rules=load_market_rules(SYMBOL))
    assert result.engine.trades


def test_warm_up_before_the_traded_span():
    settings = settings_with(params={"oi_confirmation": False})
    market = load_market_data(CRASH, SYMBOL)
    result, _ = assert_identical(settings, market, start_ms=parse_utc("2024-08-03T07:40"))
    assert result.engine.trades


def test_precomputed_aggregation_and_session_vwap_match_the_incremental_ones(tmp_path):
    """Bit for bit, on data with holes: the signal candles each base candle closes, the day's
    VWAP and the previous day's close."""
    import numpy as np

    from cryptobot.data.resample import CandleAggregator, candles_from_frame
    from cryptobot.engine.market_view import SessionVwap
    from cryptobot.runners.quiet_skip import PrecomputedAggregator, precompute

    market = load_market_data(_holed_copy(tmp_path, [(100, 102), (400, 700), (1000, 1001)]),
                              SYMBOL, allow_gaps=True)
    arrays = {k: market.candles[k] for k in market.candles.columns}
    pre = precompute(arrays, 900_000, 300_000)
    fast, slow = PrecomputedAggregator(pre, 900_000), CandleAggregator(300_000, 900_000)
    session = SessionVwap()
    for i, candle in enumerate(candles_from_frame(market.candles, 300_000)):
        assert fast.add(candle) == slow.add(candle)
        session.update(candle)
        vwap, prev_close = pre.known.session.at(i)
        assert vwap == session.vwap
        assert prev_close == session.prev_day_close or (
            np.isnan(prev_close) and np.isnan(session.prev_day_close))


def test_items_read_the_numbers_numpy_scalars_give():
    import numpy as np

    from cryptobot.runners.quiet_skip import items

    rng = np.random.default_rng(3)
    prices = rng.normal(size=50) * 1e4
    prices[::7] = -0.0
    for column in (prices, prices.astype(np.float32), prices[::3], prices.astype(">f8"),
                   rng.integers(-2**62, 2**62, size=50), rng.random(50) < 0.5):
        read = items(column)
        convert = {"f": float, "i": int, "b": bool}[column.dtype.kind]
        for i in range(len(column)):
            value = read[i]
            assert type(value) is convert(column[i]).__class__
            assert repr(value) == repr(convert(column[i]))  # the same number, its sign too
