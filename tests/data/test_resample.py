"""Resampling: the vectorised and the incremental path agree, conserve volume, keep OHLC bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.data import CandleAggregator, candles_from_frame, resample_candles
from cryptobot.data.readers import read_market_file
from cryptobot.data.table import Table
from cryptobot.model import Candle

DUMPS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "dumps"
MIN_MS = 60_000


@st.composite
def base_candles(draw):
    """Random 1m candles with random holes, valid OHLC, epoch-aligned open times."""
    count = draw(st.integers(min_value=1, max_value=120))
    steps = draw(st.lists(st.integers(min_value=1, max_value=40), min_size=count, max_size=count))
    start = draw(st.integers(min_value=0, max_value=10_000)) * MIN_MS
    ts = start + np.cumsum(steps) * MIN_MS
    prices = st.floats(min_value=1.0, max_value=1e5, allow_nan=False)
    rows = []
    for t in ts:
        o, c, a, b = (draw(prices) for _ in range(4))
        v = draw(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
        rows.append((int(t), o, max(o, c, a), min(o, c, b), c, v))
    return pd.DataFrame(rows, columns=["ts_open_ms", "open", "high", "low", "close", "volume"])


def _table(frame: pd.DataFrame) -> Table:
    return Table({name: frame[name].to_numpy() for name in frame.columns})


def _incremental(frame: pd.DataFrame, target_ms: int) -> pd.DataFrame:
    aggregator = CandleAggregator(MIN_MS, target_ms)
    out: list[Candle] = []
    for candle in candles_from_frame(_table(frame), MIN_MS):
        out.extend(aggregator.add(candle))
    tail = aggregator.flush()
    if tail is not None:
        out.append(tail)
    return pd.DataFrame([(c.ts_open_ms, c.open, c.high, c.low, c.close, c.volume) for c in out],
                        columns=list(frame.columns))


@settings(max_examples=150, deadline=None)
@given(frame=base_candles(), multiple=st.sampled_from([1, 3, 5, 15, 60]))
def test_incremental_equals_vectorised_and_invariants_hold(frame, multiple):
    target_ms = multiple * MIN_MS
    vectorised = resample_candles(_table(frame), target_ms).to_pandas()
    incremental = _incremental(frame, target_ms)
    pd.testing.assert_frame_equal(vectorised, incremental, check_dtype=False)
    assert vectorised["volume"].sum() == pytest.approx(frame["volume"].sum(), rel=1e-12)
    assert (vectorised["high"] >= vectorised[["open", "close"]].max(axis=1)).all()
    assert (vectorised["low"] <= vectorised[["open", "close"]].min(axis=1)).all()
    assert (vectorised["ts_open_ms"] % target_ms == 0).all()
    assert vectorised["ts_open_ms"].is_monotonic_increasing and vectorised["ts_open_ms"].is_unique
    # each bucket's extremes come from its own base candles
    buckets = frame["ts_open_ms"] - frame["ts_open_ms"] % target_ms
    assert (frame.groupby(buckets)["high"].max().to_numpy() == vectorised["high"]).all()


@settings(max_examples=60, deadline=None)
@given(frame=base_candles())
def test_a_bucket_is_emitted_only_once_its_last_base_candle_is_in(frame):
    target_ms = 15 * MIN_MS
    aggregator = CandleAggregator(MIN_MS, target_ms)
    for candle in candles_from_frame(_table(frame), MIN_MS):
        for closed in aggregator.add(candle):
            # never before the bucket's end has been reached or passed by the feed
            assert closed.ts_close_ms <= candle.ts_close_ms


def test_emit_on_last_base_candle_and_on_later_bucket_after_gap():
    aggregator = CandleAggregator(MIN_MS, 3 * MIN_MS)

    def candle(minute, price, volume=1.0):
        return Candle(minute * MIN_MS, MIN_MS, price, price + 1, price - 1, price, volume)

    assert aggregator.add(candle(0, 10)) == []
    assert aggregator.add(candle(1, 11)) == []
    (first,) = aggregator.add(candle(2, 12))  # ends the bucket: emitted at once
    assert (first.ts_open_ms, first.open, first.high, first.low, first.close, first.volume) == \
        (0, 10, 13, 9, 12, 3.0)
    assert aggregator.add(candle(3, 20)) == []
    (partial,) = aggregator.add(candle(7, 30))  # minutes 4 and 5 missing: emit what exists
    assert (partial.ts_open_ms, partial.open, partial.close, partial.volume) == \
        (3 * MIN_MS, 20, 20, 1.0)
    assert aggregator.add(candle(7, 99)) == []  # a replayed duplicate is ignored
    tail = aggregator.flush()
    assert tail is not None and tail.close == 30


def test_wrong_multiple_or_interval_is_refused():
    with pytest.raises(ValueError):
        CandleAggregator(5 * MIN_MS, 7 * MIN_MS)
    with pytest.raises(ValueError):
        CandleAggregator(MIN_MS, 15 * MIN_MS).add(Candle(0, 5 * MIN_MS, 1, 1, 1, 1, 1))


def test_real_1m_resampled_to_15m_matches_binance_15m():
    one_minute = read_market_file(DUMPS / "binance_um_BTCUSDT_1m_2024-08-04T12_2024-08-06.csv")
    fifteen = read_market_file(DUMPS / "binance_um_BTCUSDT_15m_2024-08-05_window.csv").frame
    ours = resample_candles(one_minute.frame, 15 * MIN_MS)
    theirs = fifteen[np.isin(fifteen["ts_open_ms"], ours["ts_open_ms"])]
    assert len(ours) == len(theirs) == 144
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(ours[column], theirs[column])
    np.testing.assert_allclose(ours["volume"], theirs["volume"], rtol=1e-9)
