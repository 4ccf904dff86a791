"""load_market_data on plain folders: span cuts, gaps, validation errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cryptobot.clock import parse_utc
from cryptobot.data import load_market_data
from cryptobot.errors import DataError, GapError

ROOT = Path(__file__).resolve().parents[2]
CRASH_CANDLES = ROOT / "data" / "btc_2024-08_crash" / "binance_um_BTCUSDT_5m_2024-08-05_window.csv"
CALM = ROOT / "data" / "btc_2024-05_calm"
SYMBOL = "BTC/USDT:USDT"


def _copy_without_lines(tmp_path: Path, drop: range) -> Path:
    lines = CRASH_CANDLES.read_text().splitlines(keepends=True)
    kept = [line for number, line in enumerate(lines, start=1) if number not in drop]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "candles.csv").write_text("".join(kept))
    return folder


def test_span_cuts_by_open_time_end_exclusive_and_keeps_oi_in_force():
    start, end = parse_utc("2024-05-10"), parse_utc("2024-05-11")
    market = load_market_data(CALM, SYMBOL, start_ms=start, end_ms=end)
    ts = market.candles["ts_open_ms"]
    assert ts[0] == start and ts[-1] == end - 300_000 and len(ts) == 288
    oi_ts = market.open_interest["ts_ms"]
    assert oi_ts[0] <= start < oi_ts[1] and oi_ts[-1] < end
    assert market.funding["ts_ms"][0] <= start


def test_gap_longer_than_an_hour_is_an_error_naming_it(tmp_path):
    # lines 1002..1014 are 13 candles = 65 minutes missing
    folder = _copy_without_lines(tmp_path, range(1002, 1015))
    with pytest.raises(GapError, match=r"missing for 1h05m from 2024-07-25T11:20:00Z"):
        load_market_data(folder, SYMBOL)
    market = load_market_data(folder, SYMBOL, allow_gaps=True)
    assert market.gaps == ((parse_utc("2024-07-25T11:20"), parse_utc("2024-07-25T12:25")),)
    # outside the requested span the hole does not matter
    assert load_market_data(folder, SYMBOL, start_ms=parse_utc("2024-07-26")).gaps == ()


def test_short_gap_is_reported_not_raised(tmp_path):
    folder = _copy_without_lines(tmp_path, range(1002, 1005))
    market = load_market_data(folder, SYMBOL)
    assert market.gaps == ((parse_utc("2024-07-25T11:20"), parse_utc("2024-07-25T11:35")),)
    assert "2024-07-25T11:20:00Z +15m" in market.describe()


@pytest.mark.parametrize(("old", "new", "message"), [
    (",68145.1,982.923", ",68145.1,-982.923", r"candles.csv line 2: volume -982.923 is negative"),
    ("68210.7,68101.0", "68110.7,68101.0", r"candles.csv line 2: high 68110.7 is below"),
    ("68210.7,68101.0", "68210.7,68200.0", r"candles.csv line 2: low 68200.0 is above"),
    (",68145.1,982.923", ",nan,982.923", r"candles.csv line 2: close 'nan' is not a finite"),
    (",68145.1,982.923", ",abc,982.923", r"candles.csv line 2: close 'abc' is not a finite"),
])
def test_bad_row_is_one_error_naming_file_and_line(tmp_path, old, new, message):
    folder = _copy_without_lines(tmp_path, range(0))
    path = folder / "candles.csv"
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(DataError, match=message) as caught:
        load_market_data(folder, SYMBOL)
    assert "\n" not in str(caught.value)


def test_duplicate_and_unsorted_rows_are_named(tmp_path):
    lines = CRASH_CANDLES.read_text().splitlines(keepends=True)
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "dup.csv").write_text("".join(lines[:5] + [lines[4]] + lines[5:10]))
    with pytest.raises(DataError, match=r"dup.csv line 6: open time .* is duplicate"):
        load_market_data(folder, SYMBOL)
    (folder / "dup.csv").write_text("".join(lines[:3] + [lines[5], lines[3]]))
    with pytest.raises(DataError, match=r"dup.csv line 5: .* out of order"):
        load_market_data(folder, SYMBOL)


def test_single_file_path_and_missing_path(tmp_path):
    market = load_market_data(CRASH_CANDLES, SYMBOL)
    assert market.open_interest.empty and market.funding.empty and not market.oi_synthetic
    with pytest.raises(DataError, match="no such data folder"):
        load_market_data(tmp_path / "nope", SYMBOL)
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(ROOT / "data" / "btc_2024-08_crash" / "SYNTHETIC_OI_METHOD.md", empty)
    with pytest.raises(DataError, match="no candle file"):
        load_market_data(empty, SYMBOL)


# ---- the requested span against the data's own span ----------------------------------------
# The crash window holds 5m candles 2024-07-22T00:00 .. 2024-08-19T23:55.

def test_span_ending_after_the_last_candle_is_an_error_naming_it():
    end = parse_utc("2024-08-21")
    with pytest.raises(GapError, match=r"missing for 1d00h from 2024-08-20T00:00:00Z to "
                                       r"2024-08-21T00:00:00Z"):
        load_market_data(CRASH_CANDLES, SYMBOL, start_ms=parse_utc("2024-08-10"), end_ms=end)
    market = load_market_data(CRASH_CANDLES, SYMBOL, start_ms=parse_utc("2024-08-10"),
                              end_ms=end, allow_gaps=True)
    assert market.uncovered == ((parse_utc("2024-08-20"), end),)
    assert "no candles 2024-08-20T00:00:00Z .. 2024-08-21T00:00:00Z (1d00h)" in market.describe()


def test_trading_start_before_the_first_candle_is_an_error():
    with pytest.raises(GapError, match=r"missing for 2d00h from 2024-07-20T00:00:00Z"):
        load_market_data(CRASH_CANDLES, SYMBOL, start_ms=parse_utc("2024-07-20"), warmup_ms=0)


def test_missing_warm_up_is_reported_not_raised():
    start, warmup_ms = parse_utc("2024-08-01"), 31 * 86_400_000
    market = load_market_data(CRASH_CANDLES, SYMBOL, start_ms=start, warmup_ms=warmup_ms)
    assert market.candles["ts_open_ms"][0] == parse_utc("2024-07-22")  # all there is
    assert market.uncovered == ((start - warmup_ms, parse_utc("2024-07-22")),)
    assert "no candles 2024-07-01T00:00:00Z .. 2024-07-22T00:00:00Z" in market.describe()
    # A start that folds the warm-up in (no warmup_ms) is reported the same way.
    folded = load_market_data(CRASH_CANDLES, SYMBOL, start_ms=start - warmup_ms)
    assert folded.uncovered == market.uncovered


def test_a_span_inside_the_data_has_nothing_uncovered():
    market = load_market_data(CRASH_CANDLES, SYMBOL, start_ms=parse_utc("2024-08-01T00:02"),
                              end_ms=parse_utc("2024-08-20"), warmup_ms=0)
    assert market.uncovered == ()  # a start inside the first candle misses no candle
