"""One candle rule set: the file validator (vectorised) and the stream path (one candle) agree on
every candle, and a file's bad row is one error naming the file, the line and the rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptobot.clock import DAY_MS, MINUTE_MS, parse_utc
from cryptobot.data.candle_checks import (
    CandleRule,
    candle_problem,
    grid,
    problem_codes,
    symbol_problem,
    time_problem,
)
from cryptobot.data.frames import RowLocator, validate_candles
from cryptobot.errors import DataError

FIVE_MIN = 5 * MINUTE_MS
PRICES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.sampled_from([0.0, -1.0, 100.0, 100.0 + 1e-8, 99.99999999]),
                   st.floats(min_value=90, max_value=110))
ROW = st.tuples(st.integers(0, 10_000).map(lambda n: n * MINUTE_MS), PRICES, PRICES, PRICES,
                PRICES, st.one_of(PRICES, st.just(0.0)))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=40),
       interval_ms=st.sampled_from([None, MINUTE_MS, FIVE_MIN, DAY_MS, 7 * DAY_MS,
                                    3 * DAY_MS, 7 * MINUTE_MS]))
def test_the_vectorised_and_the_one_candle_rules_agree(rows, interval_ms):
    columns = [np.array(values) for values in zip(*rows, strict=True)]
    columns[0] = columns[0].astype(np.int64)
    ts, o, h, lo, c, v = columns
    vectorised = problem_codes(ts, interval_ms, o, h, lo, c, v)
    one_by_one = [candle_problem(int(row[0]), interval_ms, *row[1:]) for row in rows]
    assert [CandleRule(int(code)) for code in vectorised] == one_by_one


@pytest.mark.parametrize(("row", "rule"), [
    ((0, 100, 101, 99, 100, 5), CandleRule.OK),
    ((0, 100, 101, 99, math.nan, 5), CandleRule.PRICE_NOT_FINITE),
    ((0, 100, math.inf, 99, 100, 5), CandleRule.PRICE_NOT_FINITE),
    ((0, 100, 101, 99, 0.0, 5), CandleRule.PRICE_NOT_POSITIVE),
    ((0, 100, 101, -99, 100, 5), CandleRule.PRICE_NOT_POSITIVE),
    ((0, 100, 101, 99, 100, -5), CandleRule.BAD_VOLUME),
    ((0, 100, 101, 99, 100, math.nan), CandleRule.BAD_VOLUME),
    ((0, 100, 99, 101, 100, 5), CandleRule.HIGH_BELOW_LOW),
    ((0, 102, 101, 99, 100, 5), CandleRule.HIGH_BELOW_BODY),
    ((0, 98, 101, 99, 100, 5), CandleRule.LOW_ABOVE_BODY),
    ((0, 100, 100 * (1 - 1e-12), 99, 100, 5), CandleRule.OK),  # float rounding is forgiven
    ((MINUTE_MS, 100, 101, 99, 100, 5), CandleRule.OFF_GRID),
])
def test_each_rule(row, rule):
    assert candle_problem(row[0], FIVE_MIN, *row[1:]) is rule


def test_the_grid_of_each_timeframe():
    monday = parse_utc("2024-08-05")
    assert grid(FIVE_MIN) == (FIVE_MIN, 0)
    assert candle_problem(monday, 7 * DAY_MS, 1, 1, 1, 1, 0) is CandleRule.OK
    assert candle_problem(monday + DAY_MS, 7 * DAY_MS, 1, 1, 1, 1, 0) is CandleRule.OFF_GRID
    assert candle_problem(monday + DAY_MS, 3 * DAY_MS, 1, 1, 1, 1, 0) is CandleRule.OK
    assert grid(7 * MINUTE_MS) is None  # no venue has it: no grid to hold it to


def test_stream_only_rules():
    assert symbol_problem("ETHUSDT", "BTCUSDT") == "ETHUSDT data on the BTCUSDT stream"
    assert symbol_problem(None, "BTCUSDT") is None
    assert symbol_problem("btcusdt", "BTCUSDT") is None
    now_ms = parse_utc("2024-08-05T00:00")
    assert time_problem(now_ms, FIVE_MIN, now_ms) is None  # closes one interval on: fine
    assert "in the future" in time_problem(now_ms + FIVE_MIN, FIVE_MIN, now_ms)


def _frame(rows):
    return pd.DataFrame(rows, columns=["ts_open_ms", "open", "high", "low", "close", "volume"])


@pytest.mark.parametrize(("bad", "message"), [
    ((100, 101, 99, 0.0, 5), "line 4: close 0.0 is not a positive price"),
    ((100, 101, 99, -3.0, 5), "line 4: close -3.0 is not a positive price"),
    ((100, 99, 101, 100, 5), "line 4: high 99.0 is below low 101.0"),
    ((100, 101, 99, 100, -1), "line 4: volume -1.0 is negative"),
])
def test_a_bad_file_row_is_one_error_with_file_and_line(bad, message):
    start = parse_utc("2024-08-05")
    rows = [(start + i * FIVE_MIN, 100, 101, 99, 100, 5) for i in range(5)]
    rows[2] = (rows[2][0], *bad)
    with pytest.raises(DataError) as caught:
        validate_candles(_frame(rows), RowLocator("f.csv", 2))
    assert str(caught.value) == f"f.csv {message}"


def test_an_off_grid_row_is_refused_against_the_file_s_own_timeframe():
    start = parse_utc("2024-08-05")
    rows = [(start + i * FIVE_MIN, 100, 101, 99, 100, 5) for i in range(6)]
    rows[3] = (rows[3][0] + MINUTE_MS, *rows[3][1:])
    with pytest.raises(DataError, match=r"f.csv line 5: open time \d+ \(2024-08-05T00:16:00Z\) "
                                        r"is not on the 5m grid"):
        validate_candles(_frame(rows), RowLocator("f.csv", 2))


def test_a_file_candle_from_the_future_is_one_error(tmp_path):
    from cryptobot.clock import SimClock
    from cryptobot.data import load_market_data

    start = parse_utc("2024-08-05")
    lines = ["open_time_ms,open,high,low,close,volume"] + [
        f"{start + i * FIVE_MIN},100,101,99,100,5" for i in range(12)]
    path = tmp_path / "BTCUSDT-5m.csv"
    path.write_text("\n".join(lines) + "\n")
    assert len(load_market_data(path, "BTC/USDT:USDT", clock=SimClock(start + DAY_MS)).candles) \
        == 12
    with pytest.raises(DataError, match=r"BTCUSDT-5m.csv line 13: open time "
                                        r"2024-08-05T00:55:00Z is in the future"):
        load_market_data(path, "BTC/USDT:USDT", clock=SimClock(start + 50 * MINUTE_MS))
