"""The strategy API's indicators: one definition, the same numbers however they are computed.

For random candle series (hypothesis): the whole-series values (a fast backtest), any rows on
their own (`at`: the rows a trigger still considers), the series grown one candle at a time
(live, through `SeriesCache`), and the values on the series cut short (causality) are all equal,
bit for bit, NaN where undefined.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.model import Candle
from cryptobot.strategy import ATR, SMA, Lag, RollingMax, RollingMedian, RollingMin
from cryptobot.strategy.candles import SignalCandles
from cryptobot.strategy.indicators import SeriesCache, declared

INTERVAL = 900_000
INDICATORS = [ATR(3), ATR(14), Lag(ATR(5)), Lag(ATR(5), 3), RollingMax("high", 4),
              RollingMin("low", 1), RollingMedian("volume", 5), RollingMedian("volume", 6),
              Lag(RollingMedian("volume", 4)), SMA("close", 3), Lag(SMA("volume", 7), 2)]


@st.composite
def candle_series(draw) -> list[Candle]:
    n = draw(st.integers(min_value=1, max_value=40))
    price = st.floats(min_value=1.0, max_value=1e5, allow_nan=False, allow_infinity=False)
    out = []
    for i in range(n):
        a, b, c, d = sorted(draw(st.lists(price, min_size=4, max_size=4)))
        o, cl = (b, c) if draw(st.booleans()) else (c, b)
        volume = draw(st.floats(min_value=0.0, max_value=1e6, allow_nan=False))
        out.append(Candle(i * INTERVAL, INTERVAL, o, d, a, cl, volume))
    return out


def _grown(candles: list[Candle]) -> SignalCandles:
    frame = SignalCandles(INTERVAL, capacity=2)  # small: the buffers grow several times
    for candle in candles:
        frame.close(candle)
    return frame


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


@settings(max_examples=60, deadline=None)
@given(candle_series())
def test_whole_series_rows_alone_grown_and_cut_are_identical(candles):
    whole = _grown(candles)
    for indicator in INDICATORS:
        values = indicator.values(whole)
        assert len(values) == len(candles)
        rows = np.arange(len(candles))[::-1]  # any order, any subset
        assert _same(np.asarray(indicator.at(whole, rows)), values[rows]), indicator
        assert _same(SeriesCache(whole).at(indicator, rows), values[rows]), indicator
        cache = SeriesCache(whole)
        for row in range(len(candles)):  # one row alone (a strategy's read): its own path
            assert _same(np.asarray(indicator.at(whole, np.array([row]))),
                         values[row:row + 1]), (indicator, row)
            one = cache.value(indicator, row)  # read as a float (`ctx.ind.atr`)
            assert type(one) is float and _same(np.array([one]), values[row:row + 1])
        growing, cache = SignalCandles(INTERVAL, capacity=1), None
        for i, candle in enumerate(candles):
            growing.close(candle)
            cache = cache or SeriesCache(growing)
            newest = cache.at(indicator, np.array([i]))
            assert _same(newest, values[i:i + 1]), (indicator, i)
        for cut in range(1, len(candles)):
            assert _same(indicator.values(_grown(candles[:cut])), values[:cut]), (indicator, cut)


def test_atr_is_wilders_seeded_with_the_first_range_worked_example():
    """ranges 2, 4 (|high - previous close| = 4 > 3), 1; period 2:
    2, 2 + (4 - 2) / 2 = 3, 3 + (1 - 3) / 2 = 2."""
    rows = [(10, 11, 9, 10), (12, 14, 11, 13), (13, 13.5, 12.5, 13)]
    frame = _grown([Candle(i * INTERVAL, INTERVAL, o, h, lo, c, 1.0)
                    for i, (o, h, lo, c) in enumerate(rows)])
    assert ATR(2).values(frame).tolist() == [2.0, 3.0, 2.0]
    assert np.isnan(Lag(ATR(2)).values(frame)[0]) and Lag(ATR(2)).values(frame)[2] == 3.0


def test_windowed_values_are_nan_until_the_window_is_full():
    frame = _grown([Candle(i * INTERVAL, INTERVAL, 1, 2, 1, 1, float(i)) for i in range(5)])
    values = RollingMedian("volume", 3).values(frame)
    assert np.isnan(values[:2]).all() and values[2:].tolist() == [1.0, 2.0, 3.0]


def test_equal_indicators_share_one_series():
    frame = _grown([Candle(i * INTERVAL, INTERVAL, 1, 2, 1, 1, 1.0) for i in range(5)])
    cache = SeriesCache(frame)
    assert cache.series(ATR(14)) is not None and ATR(14) == ATR(14)
    assert len(cache._series) == 1 and cache.series(ATR(14)).base is cache.series(ATR(14)).base


@pytest.mark.parametrize("names", [{"close": ATR(3)}, {"_x": ATR(3)}, {"a b": ATR(3)}])
def test_an_indicator_may_not_hide_a_column_or_be_unnamable(names):
    with pytest.raises(ValueError, match="not allowed"):
        declared(names)


def test_an_indicator_must_be_an_indicator():
    with pytest.raises(TypeError, match="not an Indicator"):
        declared({"atr": 14})


def test_median_is_numpys_bit_for_bit_without_importing_numpy_ma():
    import subprocess
    import sys

    from cryptobot.strategy.indicators import median

    rng = np.random.default_rng(7)
    for size in range(1, 12):
        for rows in (None, 1, 5):
            values = rng.normal(size=size if rows is None else (rows, size)) * 1e3
            values[rng.random(values.shape) < 0.1] = np.nan  # NaN: that row's median is NaN
            values[rng.random(values.shape) < 0.2] = 0.5  # ties
            values[rng.random(values.shape) < 0.1] = -0.0  # a zero's sign survives the mean
            for case in (values, values.astype(np.float32), values.round().astype(np.int64)
                         if not np.isnan(values).any() else values):
                expected, got = np.median(case, axis=-1), median(case)
                assert np.asarray(got).dtype == np.asarray(expected).dtype
                assert _same(np.atleast_1d(got), np.atleast_1d(expected)), case
                if not np.isnan(expected).any():  # the very bits
                    assert np.asarray(got).tobytes() == np.asarray(expected).tobytes(), case
    code = ("import sys, numpy as np; from cryptobot.strategy.indicators import median; "
            "median(np.array([[1.0, np.nan, 3.0]])); print('numpy.ma' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
