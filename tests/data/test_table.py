"""The numpy loading path agrees with what pandas made of the same cells: merge, time text,
feather time units; and a malformed CSV is one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from cryptobot.data.frames import RowLocator, merge_frames
from cryptobot.data.readers import read_market_file
from cryptobot.data.table import Table
from cryptobot.data.text_times import epoch_ms
from cryptobot.errors import DataError


def test_merge_keeps_the_last_row_of_each_time_sorted_as_pandas_does():
    older = Table({"ts_ms": np.array([30, 10, 20], dtype=np.int64),
                   "rate": np.array([3.0, 1.0, 2.0])})
    newer = Table({"ts_ms": np.array([20, 40, 10], dtype=np.int64),
                   "rate": np.array([-2.0, 4.0, -1.0])})
    merged = merge_frames([older, newer])
    frame = pd.concat([older.to_pandas(), newer.to_pandas()], ignore_index=True)
    expected = frame.drop_duplicates("ts_ms", keep="last").sort_values("ts_ms", kind="stable")
    assert merged["ts_ms"].tolist() == expected["ts_ms"].tolist() == [10, 20, 30, 40]
    assert merged["rate"].tolist() == expected["rate"].tolist() == [-1.0, -2.0, 3.0, 4.0]


def test_time_text_reads_as_pandas_reads_it():
    texts = ["2024-08-05", "2024-08-05 00:05:00", "2024-08-05T00:10:00Z",
             "2024-08-05T02:15:00+02:00", "2024-08-05T00:20:00.999", "08/05/2024 00:25",
             "Aug 5 2024 00:30"]
    cells = np.array(texts, dtype=object)
    ours = epoch_ms(cells, RowLocator("t.csv", 2), "date")
    moments = pd.to_datetime(pd.Series(texts), utc=True, format="mixed")
    theirs = (moments - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    assert ours.tolist() == theirs.astype(float).tolist()


def test_epoch_numbers_in_seconds_ms_and_us_and_a_bad_cell_named():
    cells = np.array(["1722816000", "1722816000000", "1722816000000000"])
    assert epoch_ms(cells, RowLocator("t.csv", 2), "time").tolist() == [1722816000000.0] * 3
    with pytest.raises(DataError, match=r"^t.csv line 3: time 'soon' is not a time"):
        epoch_ms(np.array(["1722816000", "soon"]), RowLocator("t.csv", 2), "time")


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_feather_dates_of_any_unit(tmp_path, unit):
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    seconds = 1_722_816_000 + 300 * np.arange(4, dtype=np.int64)
    prices = np.array([100.0, 101.0, 102.0, 103.0])
    path = tmp_path / "BTC_USDT_USDT-5m-futures.feather"
    feather.write_feather(pa.table({
        "date": pa.array(seconds * per_second, type=pa.timestamp(unit, tz="UTC")),
        "open": prices, "high": prices + 1, "low": prices - 1, "close": prices,
        "volume": np.ones(4)}), path)
    parsed = read_market_file(path)
    assert parsed.frame["ts_open_ms"].tolist() == (seconds * 1000).tolist()
    assert parsed.interval_ms == 300_000 and parsed.frame["high"].tolist() == (prices + 1).tolist()


def test_feather_dates_as_a_date_column(tmp_path):
    days = np.array(["2024-08-05", "2024-08-06", "2024-08-07"], dtype="datetime64[D]")
    prices = np.array([100.0, 101.0, 102.0])
    path = tmp_path / "BTC_USDT_USDT-1d-futures.feather"
    feather.write_feather(pa.table({"date": pa.array(days), "open": prices, "high": prices + 1,
                                    "low": prices - 1, "close": prices, "volume": np.ones(3)}),
                          path)
    parsed = read_market_file(path)
    assert parsed.frame["ts_open_ms"].tolist() == [1722816000000 + i * 86_400_000
                                                   for i in range(3)]
    assert parsed.interval_ms == 86_400_000


def test_a_row_longer_than_the_header_is_one_clear_error(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_text("open_time_ms,open,high,low,close,volume\n"
                    "1722816000000,1,2,0.5,1.5,10\n"
                    "1722816300000,1,2,0.5,1.5,10,7\n")
    with pytest.raises(DataError, match=r"candles.csv: not a readable CSV \(line 3 has 7 "
                                        r"fields, the first 6\)"):
        read_market_file(path)


def test_blank_lines_are_skipped_and_errors_still_name_the_file_line(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_text("open_time_ms,open,high,low,close,volume\n"
                    "1722816000000,1,2,0.5,1.5,10\n\n,,,,,\n"
                    "1722816300000,1,2,0.5,1.5,-10\n")
    with pytest.raises(DataError, match=r"^\S*candles.csv line 5: volume -10.0 is negative"):
        read_market_file(path)


def test_a_table_takes_rows_by_slice_mask_or_positions_not_by_one_index():
    table = Table({"ts_ms": np.array([1, 2, 3], dtype=np.int64), "rate": np.array([.1, .2, .3])})
    assert table[1:]["ts_ms"].tolist() == [2, 3]
    assert table[table["rate"] > 0.15]["ts_ms"].tolist() == [2, 3]
    assert list(table[np.array([2, 0])].rows()) == [(3, 0.3), (1, 0.1)]
    with pytest.raises(TypeError):
        table[0]
    with pytest.raises(ValueError, match="different lengths"):
        Table({"a": np.zeros(2), "b": np.zeros(3)})
