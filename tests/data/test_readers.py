"""Each reader on real files, recognised by content whatever the file is called."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.data.readers import CANDLES, FUNDING, OPEN_INTEREST, read_market_file
from cryptobot.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
DUMPS = ROOT / "tests" / "fixtures" / "dumps"
DATA = ROOT / "data"


def _first_line(path: Path) -> str:
    return path.read_text().split("\n", 1)[0]


def test_headerless_kline_dump_spot_5m():
    path = DUMPS / "BTCUSDT-5m-2024-08.csv"
    parsed = read_market_file(path)
    assert (parsed.kind, parsed.layout, parsed.interval_ms) == (CANDLES, "binance-kline", 300_000)
    fields = _first_line(path).split(",")
    assert len(parsed.frame) == len(path.read_text().strip().splitlines())
    first = next(parsed.frame.rows())
    assert first[0] == int(fields[0])
    assert list(first[1:]) == [float(x) for x in fields[1:6]]


def test_kline_dump_with_header_1m_and_zipped(tmp_path):
    path = DUMPS / "binance_um_BTCUSDT_1m_2024-08-04T12_2024-08-06.csv"
    parsed = read_market_file(path)
    assert (parsed.kind, parsed.interval_ms, len(parsed.frame)) == (CANDLES, 60_000, 2160)
    zipped = tmp_path / "whatever.bin"  # the name says nothing: content decides
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(path, "BTCUSDT-1m-2024-08-05.csv")
    from_zip = read_market_file(zipped)
    assert from_zip.frame.equals(parsed.frame)
    assert "BTCUSDT-1m-2024-08-05.csv" in from_zip.source


def test_plain_candle_csv_matches_its_utc_column():
    path = DATA / "btc_2024-08_crash" / "binance_um_BTCUSDT_5m_2024-08-05_window.csv"
    parsed = read_market_file(path)
    raw = pd.read_csv(path)
    assert parsed.interval_ms == 300_000
    assert (parsed.frame["ts_open_ms"] == raw["open_time_ms"]).all()
    moments = pd.to_datetime(raw["open_time_utc"], utc=True)
    from_text = (moments - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    assert (parsed.frame["ts_open_ms"] == from_text.to_numpy()).all()
    assert parsed.frame["ts_open_ms"].dtype == np.int64


def test_freqtrade_feather():
    parsed = read_market_file(DATA / "btc_5m_2023-11_2024-12" / "BTC_USDT_USDT-5m-futures.feather")
    assert (parsed.kind, parsed.layout) == (CANDLES, "freqtrade-feather")
    assert parsed.interval_ms == 300_000
    assert len(parsed.frame) == 122_688
    assert parsed.frame["ts_open_ms"][0] == 1698796800000  # 2023-11-01T00:00Z


def test_metrics_daily_skips_blank_event_days(tmp_path):
    path = DUMPS / "BTCUSDT_metrics_daily_2022-06_2023-01.csv"
    lines = path.read_text().strip().splitlines()[1:]
    filled = [line for line in lines if line.split(",")[2].strip()]
    parsed = read_market_file(path)
    assert parsed.kind == OPEN_INTEREST and parsed.layout == "binance-metrics"
    assert 0 < len(parsed.frame) == len(filled) < len(lines)
    assert parsed.frame["oi_contracts"][0] == float(filled[0].split(",")[2])


def test_metrics_5m_zipped(tmp_path):
    path = DUMPS / "HYPEUSDT-metrics-5m-excerpt.csv"
    zipped = tmp_path / "HYPEUSDT-metrics-2025-05-30.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(path, path.name)
    parsed = read_market_file(zipped)
    assert len(parsed.frame) == 12
    assert np.all(np.diff(parsed.frame["ts_ms"]) == 300_000)
    assert parsed.frame["ts_ms"][0] == 1748601000000  # 2025-05-30T10:30Z


def test_open_interest_hist_rows():
    path = DATA / "btc_2024-05_calm" / "binance_BTCUSDT_5m_oi_2024-05-09_2024-05-11.csv"
    parsed = read_market_file(path)
    assert (parsed.kind, parsed.layout, len(parsed.frame)) == \
        (OPEN_INTEREST, "binance-openInterestHist", 527)
    fields = path.read_text().splitlines()[1].split(",")
    assert list(next(parsed.frame.rows())) == [int(fields[0]), float(fields[1]), float(fields[2])]


def test_funding_csv():
    parsed = read_market_file(DATA / "funding" / "binance_um_BTCUSDT_funding_8h.csv")
    assert parsed.kind == FUNDING and list(parsed.frame.columns) == ["ts_ms", "rate"]
    assert (np.diff(parsed.frame["ts_ms"]) > 0).all()


def test_ccxt_shaped_json_lists(tmp_path):
    candles = read_market_file(DUMPS / "BTCUSDT-5m-2024-08.csv").frame[:5].to_pandas()
    ohlcv = tmp_path / "ohlcv.json"
    ohlcv.write_text(json.dumps(candles.values.tolist()))
    parsed = read_market_file(ohlcv)
    assert parsed.kind == CANDLES and parsed.interval_ms == 300_000
    np.testing.assert_allclose(parsed.frame.to_pandas().to_numpy(dtype=float),
                               candles.to_numpy(dtype=float))
    oi = tmp_path / "oi.json"
    oi.write_text(json.dumps([
        {"symbol": "BTC/USDT:USDT", "openInterestAmount": 70887.608,
         "openInterestValue": 4420877317.8768, "timestamp": 1715271000000},
        {"symbol": "BTC/USDT:USDT", "openInterestAmount": 71165.804,
         "openInterestValue": None, "timestamp": 1715271300000}]))
    parsed_oi = read_market_file(oi)
    assert parsed_oi.kind == OPEN_INTEREST
    assert np.isnan(parsed_oi.frame["oi_value_usdt"][1])


def test_content_not_name_decides(tmp_path):
    disguised = tmp_path / "candles.csv"
    shutil.copy(DATA / "btc_2024-05_calm" / "binance_BTCUSDT_5m_oi_2024-05-09_2024-05-11.csv",
                disguised)
    assert read_market_file(disguised).kind == OPEN_INTEREST


def test_unknown_layout_is_one_clear_error(tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match=r"odd.csv: unrecognised layout"):
        read_market_file(odd)


def test_adjusted_prices_a_few_ulps_off_are_repaired_not_rejected():
    """The bundled HYG file (Yahoo adjusted closes) has high 4e-15 under close on line 355:
    float rounding, read as a daily candle with high lifted to the close."""
    path = DATA / "macro" / "HYG_daily_adjusted.csv"
    line = path.read_text().splitlines()[354].split(",")
    assert float(line[2]) < float(line[4])  # the artefact is in the file
    parsed = read_market_file(path)
    assert (parsed.kind, parsed.interval_ms) == (CANDLES, 86_400_000)
    frame = parsed.frame.to_pandas()
    row = frame[frame["ts_open_ms"] == pd.Timestamp(line[0], tz="UTC").value // 1_000_000]
    assert row["high"].iloc[0] == float(line[4]) == row["close"].iloc[0]
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
