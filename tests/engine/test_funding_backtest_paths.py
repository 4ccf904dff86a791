"""Funding on the real crash window (real Binance 5m candles) with SYNTHETIC funding stamps: the
real 8h rates stamped milliseconds and seconds off the hour, and a series that moves from 8h to
4h and 1h settlements around the crash. Both backtest paths charge the same, and what they
charge is what an independent count of the positions held at each settlement gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cryptobot.clock import HOUR_MS, parse_utc
from cryptobot.data import load_market_data
from cryptobot.data.funding_times import settlement_ms
from cryptobot.data.table import Table
from cryptobot.engine.market_rules import load_market_rules
from tests.engine.conftest import REPO, settings_with
from tests.engine.test_fast_path import SYMBOL, assert_identical

CRASH = REPO / "data" / "btc_2024-08_crash"
SETTINGS = settings_with(params={"oi_confirmation": False})


def _with_funding(market, stamps: list[int], rates: list[float]):
    frame = Table({"ts_ms": np.array(stamps, dtype=np.int64),
                   "rate": np.array(rates, dtype=np.float64)})
    return dataclasses.replace(market, funding=frame)


def _jittered_synthetic(market):
    """The real rates, each stamp 1 ms, 3 ms, 999 ms or 4.321 s after its hour."""
    real = market.funding
    offsets = np.resize(np.array([1, 3, 999, 4_321]), len(real))
    return _with_funding(market, (real["ts_ms"] + offsets).tolist(),
                         real["rate"].tolist())


def _intervals_synthetic(market, four_from: str = "2024-08-01",
                         one_from: str = "2024-08-04T12:00", one_until: str = "2024-08-06T12:00"):
    """8h settlements, then 4h from `four_from`, then 1h over [one_from, one_until), then 8h
    again; each rate is the real 8h rate in force scaled to its interval, stamped 2 ms late."""
    real = market.funding
    start, end = int(real["ts_ms"][0]), int(real["ts_ms"][-1])
    four_from, one_from, one_until = map(parse_utc, (four_from, one_from, one_until))
    stamps, t = [], start
    while t <= end:
        stamps.append(t)
        step = 8 if t < four_from or t >= one_until + 8 * HOUR_MS else (
            1 if one_from <= t < one_until else 4)
        t += step * HOUR_MS
    real_ts = real["ts_ms"]
    in_force = np.searchsorted(real_ts, stamps, side="right") - 1
    gaps = np.diff(np.r_[stamps, stamps[-1] + 8 * HOUR_MS]) / (8 * HOUR_MS)
    rates = real["rate"][in_force] * gaps
    return _with_funding(market, [s + 2 for s in stamps], rates.tolist())


def _expected_funding(trade, market) -> tuple[float, int]:
    """What the trade held at each settlement after its entry, at the open of the base candle
    that opens there, times the rate: counted from its legs, not by the engine; and how many
    settlements that was."""
    opens = market.candles["open"]
    ts_open = market.candles["ts_open_ms"]
    total, last, count = 0.0, None, 0
    for ts_ms, rate in zip(market.funding["ts_ms"], market.funding["rate"], strict=True):
        settled = settlement_ms(int(ts_ms))
        if settled == last or settled <= trade.entry_ms or settled > trade.exit_ms:
            continue
        last = settled
        held = trade.qty_base - sum(leg.qty_base for leg in trade.legs if leg.ts_ms < settled)
        i = int(np.searchsorted(ts_open, settled))
        total += held * float(opens[i]) * float(rate)
        count += 1
    return total, count


@pytest.mark.parametrize(("make", "intervals"), [(_jittered_synthetic, "8h"),
                                                  (_intervals_synthetic, "8h/4h/1h")])
def test_both_backtest_paths_charge_every_settlement_once_synthetic(make, intervals):
    market = make(load_market_data(CRASH, SYMBOL))
    result, _ = assert_identical(SETTINGS, market, rules=load_market_rules(SYMBOL))
    trades = result.engine.trades
    assert result.engine._trade is None  # every trade closed: all of them are counted below
    assert sum(1 for t in trades if t.funding_usdt != 0.0) >= 3
    expected = [_expected_funding(trade, market) for trade in trades]
    for trade, (usdt, _) in zip(trades, expected, strict=True):
        assert trade.funding_usdt == pytest.approx(usdt, rel=1e-9, abs=1e-12), trade.signal_id
    summary = result.summary
    assert summary["funding_charged"] is True
    assert summary["funding_usdt"] == pytest.approx(sum(usdt for usdt, _ in expected))
    assert summary["funding_rates_charged"] == sum(n for _, n in expected)
    assert summary["funding_note"].startswith(
        f"from {summary['funding_rates_charged']} rates (of ")
    assert summary["funding_note"].endswith(f"intervals {intervals}")
    assert "binance_um_BTCUSDT_funding_8h_2024-07-22_2024-08-19.csv" in summary["funding_note"]


def test_funding_on_with_no_rate_in_the_span_says_so():
    real = load_market_data(CRASH, SYMBOL)
    market = _with_funding(real, [], [])
    result, _ = assert_identical(SETTINGS, market, rules=load_market_rules(SYMBOL))
    assert result.summary["funding_charged"] is False
    assert result.summary["funding_usdt"] == 0.0
    assert result.summary["funding_note"].startswith(
        "not charged: no funding rate settled in the span")


def test_stamps_off_the_hour_charge_what_the_hour_would_synthetic():
    real = load_market_data(CRASH, SYMBOL)
    rules = load_market_rules(SYMBOL)
    on_grid, _ = assert_identical(SETTINGS, real, rules=rules)
    jittered, _ = assert_identical(SETTINGS, _jittered_synthetic(real), rules=rules)
    assert [t.funding_usdt for t in jittered.engine.trades] == [
        t.funding_usdt for t in on_grid.engine.trades]
    assert any(t.funding_usdt for t in on_grid.engine.trades)
