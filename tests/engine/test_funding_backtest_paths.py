"""Funding on the real crash window (real Binance 5m candles) with SYNTHETIC funding stamps: the
real 8h rates stamped milliseconds and seconds off the hour, and a series that moves from 8h to
4h and 1h settlements around the crash. Both backtest paths charge the same, and what they
charge is what an independent count of the positions held at each settlement gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cryptobot.clock import HOUR_MS, parse_utc
from cryptobot.data import load_market_data
from cryptobot.data.funding_times import settlement_ms
from cryptobot.engine.market_rules import load_market_rules
from tests.engine.conftest import REPO, settings_with
from tests.engine.test_fast_path import SYMBOL, assert_identical

CRASH = REPO / "data" / "btc_2024-08_crash"
SETTINGS = settings_with(params={"oi_confirmation": False})


def _with_funding(market, stamps: list[int], rates: list[float]):
    frame = pd.DataFrame({"ts_ms": np.array(stamps, dtype=np.int64),
                          "rate": np.array(rates, dtype=np.float64)})
    return dataclasses.replace(market, funding=frame)


def _jittered_synthetic(market):
    """The real rates, each stamp 1 ms, 3 ms, 999 ms or 4.321 s after its hour."""
    real = market.funding
    offsets = np.resize(np.array([1, 3, 999, 4_321]), len(real))
    return _with_funding(market, (real["ts_ms"].to_numpy() + offsets).tolist(),
                         real["rate"].tolist())


def _intervals_synthetic(market):
    """8h settlements, then 4h from 2024-08-01, then 1h over 2024-08-04 12:00 .. 08-06 12:00,
    then 8h again; each rate is the real 8h rate in force scaled to its interval, stamped 2 ms
    late."""
    real = market.funding
    start, end = int(real["ts_ms"].iloc[0]), int(real["ts_ms"].iloc[-1])
    four_from, one_from = parse_utc("2024-08-01"), parse_utc("2024-08-04T12:00")
    one_until = parse_utc("2024-08-06T12:00")
    stamps, t = [], start
    while t <= end:
        stamps.append(t)
        step = 8 if t < four_from or t >= one_until + 8 * HOUR_MS else (
            1 if one_from <= t < one_until else 4)
        t += step * HOUR_MS
    real_ts = real["ts_ms"].to_numpy()
    in_force = np.searchsorted(real_ts, stamps, side="right") - 1
    gaps = np.diff(np.r_[stamps, stamps[-1] + 8 * HOUR_MS]) / (8 * HOUR_MS)
    rates = real["rate"].to_numpy()[in_force] * gaps
    return _with_funding(market, [s + 2 for s in stamps], rates.tolist())


def _expected_funding(trade, market) -> float:
    """What the trade held at each settlement after its entry, at the open of the base candle
    that opens there, times the rate: counted from its legs, not by the engine."""
    opens = market.candles["open"].to_numpy()
    ts_open = market.candles["ts_open_ms"].to_numpy()
    total, last = 0.0, None
    for ts_ms, rate in zip(market.funding["ts_ms"], market.funding["rate"], strict=True):
        settled = settlement_ms(int(ts_ms))
        if settled == last or settled <= trade.entry_ms or settled > trade.exit_ms:
            continue
        last = settled
        held = trade.qty_base - sum(leg.qty_base for leg in trade.legs if leg.ts_ms < settled)
        i = int(np.searchsorted(ts_open, settled))
        total += held * float(opens[i]) * float(rate)
    return total


@pytest.mark.parametrize("make", [_jittered_synthetic, _intervals_synthetic])
def test_both_backtest_paths_charge_every_settlement_once_synthetic(make):
    market = make(load_market_data(CRASH, SYMBOL))
    result, _ = assert_identical(SETTINGS, market, rules=load_market_rules(SYMBOL))
    trades = result.engine.trades
    assert sum(1 for t in trades if t.funding_usdt != 0.0) >= 3
    for trade in trades:
        assert trade.funding_usdt == pytest.approx(_expected_funding(trade, market), rel=1e-9,
                                                   abs=1e-12), trade.signal_id


def test_stamps_off_the_hour_charge_what_the_hour_would_synthetic():
    real = load_market_data(CRASH, SYMBOL)
    rules = load_market_rules(SYMBOL)
    on_grid, _ = assert_identical(SETTINGS, real, rules=rules)
    jittered, _ = assert_identical(SETTINGS, _jittered_synthetic(real), rules=rules)
    assert [t.funding_usdt for t in jittered.engine.trades] == [
        t.funding_usdt for t in on_grid.engine.trades]
    assert any(t.funding_usdt for t in on_grid.engine.trades)
