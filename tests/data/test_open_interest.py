"""Point-in-time OI: a sample is invisible before its own timestamp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cryptobot.data import OpenInterestSeries
from cryptobot.data.readers import read_market_file

OI_FILE = (Path(__file__).resolve().parents[2] / "data" / "btc_2024-05_calm"
           / "binance_BTCUSDT_5m_oi_2024-05-09_2024-05-11.csv")
REAL_SERIES = OpenInterestSeries.from_frame(read_market_file(OI_FILE).frame)


def test_a_sample_is_invisible_one_ms_before_its_time():
    series = OpenInterestSeries.from_frame(read_market_file(OI_FILE).frame)
    first, second = int(series.ts_ms[0]), int(series.ts_ms[1])
    assert series.last_at_or_before(first - 1) is None
    at_first = series.last_at_or_before(first)
    assert at_first is not None and at_first.ts_ms == first
    assert at_first.oi_contracts == series.oi_contracts[0]
    assert series.last_at_or_before(second - 1).ts_ms == first  # the next one not yet visible
    assert series.last_at_or_before(second).ts_ms == second


@given(st.integers(min_value=1715270000000, max_value=1715440000000))
def test_lookup_never_returns_a_future_sample(ts_ms):
    series = REAL_SERIES
    sample = series.last_at_or_before(ts_ms)
    later = series.ts_ms[series.ts_ms <= ts_ms]
    if sample is None:
        assert later.size == 0
    else:
        assert sample.ts_ms <= ts_ms and sample.ts_ms == later.max()


def test_vectorised_lookup_matches_scalar():
    series = OpenInterestSeries.from_frame(read_market_file(OI_FILE).frame)
    probes = np.arange(series.ts_ms[0] - 600_000, series.ts_ms[-1] + 600_000, 77_777)
    found = series.index_at_or_before(probes)
    for probe, index in zip(probes, found, strict=True):
        sample = series.last_at_or_before(int(probe))
        assert (sample is None and index == -1) or sample.ts_ms == series.ts_ms[index]
