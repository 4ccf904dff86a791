"""A folder or store holding several markets: each symbol gets its own files, the others are
ignored, and a file whose market cannot be told is one error naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cryptobot.clock import DAY_MS, parse_utc
from cryptobot.data import load_market_data, load_markets
from cryptobot.data.importer import import_files
from cryptobot.data.market_store import MarketStore
from cryptobot.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
BTC_ETH = ROOT / "data" / "btc_eth_2024-08_15m"
BTC_CANDLES = BTC_ETH / "binance_um_BTCUSDT_15m_2024-08-05_window.csv"
ETH_CANDLES = BTC_ETH / "binance_um_ETHUSDT_15m_2024-08-05_window.csv"
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
WINDOW_FROM, WINDOW_TO = parse_utc("2024-07-22"), parse_utc("2024-08-20")


def test_bundled_folder_gives_each_symbol_its_own_candles_and_funding():
    btc = load_market_data(BTC_ETH, BTC)
    eth = load_market_data(BTC_ETH, ETH)
    for market, name in ((btc, "BTCUSDT"), (eth, "ETHUSDT")):
        assert market.base_interval_ms == 900_000 and market.gaps == ()
        assert len(market.candles) == 29 * 96
        assert int(market.candles["ts_open_ms"][0]) == WINDOW_FROM
        assert int(market.candles["ts_open_ms"][-1]) == WINDOW_TO - 900_000
        assert market.open_interest.empty and not market.oi_synthetic
        assert len(market.sources) == 2 and all(name in s for s in market.sources)
        assert market.funding["ts_ms"][0] <= WINDOW_FROM
        assert market.funding["ts_ms"][-1] >= WINDOW_TO - 8 * 3_600_000
    # Two different markets: BTC's crash low 48,888, ETH's 2,112.
    assert btc.candles["low"].min() >= 48_000 and btc.candles["high"].max() <= 71_000
    assert eth.candles["low"].min() >= 2_000 and eth.candles["high"].max() <= 3_700
    assert not np.array_equal(btc.funding["rate"], eth.funding["rate"])


def test_load_markets_equals_one_symbol_at_a_time():
    start_ms = parse_utc("2024-08-01")
    both = load_markets(BTC_ETH, [ETH, BTC], start_ms, parse_utc("2024-08-15"),
                        warmup_ms=3 * DAY_MS)
    assert list(both) == [ETH, BTC]
    for symbol, market in both.items():
        alone = load_market_data(BTC_ETH, symbol, start_ms, parse_utc("2024-08-15"),
                                 warmup_ms=3 * DAY_MS)
        assert market.symbol == symbol
        assert market.candles.equals(alone.candles)
        assert market.funding.equals(alone.funding)
        assert market.sources == alone.sources
    with pytest.raises(DataError, match=r"BTCUSDT asked for twice \(BTC/USDT:USDT, BTCUSDT\)"):
        load_markets(BTC_ETH, [BTC, "BTCUSDT"])


def test_a_third_symbol_is_one_error_listing_what_the_folder_holds():
    with pytest.raises(DataError) as caught:
        load_market_data(BTC_ETH, "SOL/USDT:USDT")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{BTC_ETH}: holds BTCUSDT (")
    assert "ETHUSDT (binance_um_ETHUSDT_15m_2024-08-05_window.csv and 1 more) data, " \
        "not SOL/USDT:USDT (SOLUSDT)" in message
    with pytest.raises(DataError, match=r"holds BTCUSDT .*ETHUSDT .*not SOL/USDT:USDT"):
        load_markets(BTC_ETH, [BTC, "SOL/USDT:USDT"])


def test_unnamed_file_in_a_mixed_folder_is_one_error_naming_it(tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(BTC_ETH, folder)
    shutil.copy(ETH_CANDLES, folder / "candles.csv")
    with pytest.raises(DataError) as caught:
        load_market_data(folder, BTC)
    assert str(caught.value) == (
        f"{folder / 'candles.csv'}: names no market, and {folder} holds several (BTCUSDT, "
        "ETHUSDT); put the market id in its name (e.g. binance_um_BTCUSDT_...)")


def test_unnamed_files_belong_to_the_one_market_a_folder_holds(tmp_path):
    folder = tmp_path / "btc"
    folder.mkdir()
    shutil.copy(BTC_CANDLES, folder)
    funding = BTC_ETH / "binance_um_BTCUSDT_funding_8h_2024-07_2024-08.csv"
    shutil.copy(funding, folder / "funding.csv")  # names no market: the folder's one market
    market = load_market_data(folder, BTC)
    assert "funding.csv" in market.sources and len(market.funding) > 0
    with pytest.raises(DataError, match=r"holds BTCUSDT \(binance_um_BTCUSDT_15m_2024-08-05_"
                                        r"window.csv and 1 more\) data, not ETH/USDT:USDT"):
        load_market_data(folder, ETH)


def test_store_holds_both_markets_and_loads_like_the_folder(tmp_path):
    store = MarketStore(tmp_path / "store")
    for symbol, market in (("BTCUSDT", BTC), ("ETHUSDT", ETH)):
        import_files(store, "binanceusdm", market, sorted(BTC_ETH.glob(f"*{symbol}*.csv")))
    from_store = load_markets(store.root, [BTC, ETH])
    from_folder = load_markets(BTC_ETH, [BTC, ETH])
    for symbol in (BTC, ETH):
        assert from_store[symbol].candles.equals(from_folder[symbol].candles)
        assert from_store[symbol].funding.equals(from_folder[symbol].funding)
    with pytest.raises(DataError, match=r"no binanceusdm SOL/USDT:USDT candles stored \(stored: "
                                        r"binanceusdm BTC/USDT:USDT, binanceusdm ETH/USDT:USDT\)"):
        load_market_data(store.root, "SOL/USDT:USDT")
