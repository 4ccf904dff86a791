"""The bundled folders load as real candles-plus-OI pairs; the synthetic OI is reproducible."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cryptobot.clock import parse_utc
from cryptobot.data import OpenInterestSeries, load_market_data
from cryptobot.data.readers import read_market_file
from cryptobot.data.synthetic_oi import OUTPUT_FILE, daily_anchors, generate

DATA = Path(__file__).resolve().parents[2] / "data"
SYMBOL = "BTC/USDT:USDT"


def test_synthetic_oi_file_is_what_the_generator_makes():
    assert OUTPUT_FILE.read_text() == generate()


def test_synthetic_oi_hits_the_real_daily_values_and_falls_on_the_crash_day():
    market = load_market_data(DATA / "btc_2024-08_crash", SYMBOL)
    assert market.oi_synthetic
    assert any("SYNTHETIC" in s for s in market.sources)
    series = OpenInterestSeries.from_frame(market.open_interest)
    anchors = daily_anchors()
    for day in ("2024-08-04", "2024-08-05", "2024-08-06"):
        end_ms = parse_utc(day) + 86_400_000
        sample = series.last_at_or_before(end_ms)
        assert sample.ts_ms == end_ms
        assert abs(sample.oi_value_usdt - anchors[end_ms]) < 0.01
    before = series.last_at_or_before(parse_utc("2024-08-05")).oi_value_usdt
    after = series.last_at_or_before(parse_utc("2024-08-06")).oi_value_usdt
    assert after / before - 1 < -0.20


def test_crash_folder_has_funding_covering_the_window():
    market = load_market_data(DATA / "btc_2024-08_crash", SYMBOL)
    assert market.base_interval_ms == 300_000 and market.gaps == ()
    assert market.funding["ts_ms"][0] <= market.candles["ts_open_ms"][0]
    assert market.funding["ts_ms"][-1] >= market.candles["ts_open_ms"][-1] - 8 * 3600_000


def test_calm_folder_is_a_real_pair_and_candles_equal_the_feather():
    market = load_market_data(DATA / "btc_2024-05_calm", SYMBOL)
    assert not market.oi_synthetic
    assert not any("SYNTHETIC" in s for s in market.sources)
    feather = read_market_file(DATA / "btc_5m_2023-11_2024-12" / "BTC_USDT_USDT-5m-futures.feather")
    same = feather.frame[np.isin(feather.frame["ts_open_ms"], market.candles["ts_open_ms"])]
    pd.testing.assert_frame_equal(same.to_pandas(), market.candles.to_pandas())
    oi_ts = market.open_interest["ts_ms"]
    candle_ts = market.candles["ts_open_ms"]
    assert candle_ts[0] < oi_ts[0] and oi_ts[-1] < candle_ts[-1]
    assert len(market.funding) > 0


def test_every_folder_ships_funding():
    for folder in ("btc_2024-08_crash", "btc_2024-05_calm", "btc_5m_2023-11_2024-12"):
        files = [read_market_file(p) for p in (DATA / folder).glob("*funding*.csv")]
        assert len(files) == 1 and np.isfinite(files[0].frame["rate"]).all()
