"""Review fixes: a file's market must match --symbol, SYNTHETIC follows the rows loaded, bad rows
name their real line, unknown timeframes fail before any request, empty spans say both spans."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cryptobot.clock import DAY_MS, SimClock, parse_utc
from cryptobot.data import load_market_data
from cryptobot.data.importer import import_files
from cryptobot.data.market_store import MarketStore
from cryptobot.errors import DataError
from cryptobot.exchange.loopback_rest import LoopbackRestServer

ROOT = Path(__file__).resolve().parents[2]
CRASH = ROOT / "data" / "btc_2024-08_crash"
CRASH_CANDLES = CRASH / "binance_um_BTCUSDT_5m_2024-08-05_window.csv"
CALM = ROOT / "data" / "btc_2024-05_calm"
CALM_CANDLES = CALM / "binance_um_BTCUSDT_5m_2024-05-01_2024-05-12.csv"
HYPE_METRICS = ROOT / "tests" / "fixtures" / "dumps" / "HYPEUSDT-metrics-5m-excerpt.csv"
SYMBOL = "BTC/USDT:USDT"


def test_folder_of_btc_files_refuses_another_symbol():
    with pytest.raises(DataError, match=r"btc_2024-08_crash: holds BTCUSDT "
                                        r"\(binance_um_BTCUSDT_\S+ and 2 more\) data, not "
                                        r"ETH/USDT:USDT \(ETHUSDT\)") as caught:
        load_market_data(CRASH, "ETH/USDT:USDT")
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match=r"holds BTCUSDT data, not ETH/USDT:USDT"):
        load_market_data(CRASH_CANDLES, "ETH/USDT:USDT")
    assert load_market_data(CRASH, "BTCUSDT").symbol == "BTCUSDT"  # a market id is a symbol too


def test_freqtrade_file_name_says_its_market(tmp_path):
    candles = load_market_data(CRASH_CANDLES, SYMBOL).candles[:50].to_pandas()
    frame = candles.assign(date=pd.to_datetime(candles["ts_open_ms"], unit="ms", utc=True))
    folder = tmp_path / "ft"
    folder.mkdir()
    frame[["date", "open", "high", "low", "close", "volume"]].to_feather(
        folder / "BTC_USDT_USDT-5m-futures.feather")
    with pytest.raises(DataError, match=r"ft: holds BTCUSDT \(BTC_USDT_USDT-5m-futures.feather\) "
                                        r"data, not ETH/USDT:USDT"):
        load_market_data(folder, "ETH/USDT:USDT")
    assert len(load_market_data(folder, SYMBOL).candles) == 50


def test_files_that_name_no_market_are_accepted_for_any_symbol(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    shutil.copy(CRASH_CANDLES, folder / "candles.csv")
    assert len(load_market_data(folder, "ETH/USDT:USDT").candles) == 8352


def test_import_refuses_metrics_of_another_market(run_cli, tmp_path):
    store = tmp_path / "s"
    code, _, err = run_cli("data", "import", "--store", str(store), str(HYPE_METRICS))
    assert code == 2 and err.strip().count("\n") == 0
    assert err.startswith(f"error: {HYPE_METRICS}: holds HYPEUSDT data, not BTC/USDT:USDT")
    assert not store.exists()
    code, _, err = run_cli("data", "import", "--store", str(store), "--symbol",
                           "HYPE/USDT:USDT", str(HYPE_METRICS))
    assert code == 0, err
    assert MarketStore(store).read("binanceusdm", "HYPE/USDT:USDT", "open_interest") is not None


def test_metrics_symbol_column_wins_over_a_silent_name(tmp_path):
    renamed = tmp_path / "metrics.csv"  # the name says nothing; the symbol column does
    shutil.copy(HYPE_METRICS, renamed)
    with pytest.raises(DataError, match=r"metrics.csv: holds HYPEUSDT data, not BTC/USDT:USDT"):
        import_files(MarketStore(tmp_path / "s"), "binanceusdm", SYMBOL, [renamed])


def test_real_oi_is_not_synthetic_in_a_store_that_also_holds_synthetic_oi(tmp_path):
    store = MarketStore(tmp_path / "store")
    import_files(store, "binanceusdm", SYMBOL, sorted(CRASH.glob("*.csv")))
    import_files(store, "binanceusdm", SYMBOL, sorted(CALM.glob("*.csv")))
    calm = load_market_data(store.root, SYMBOL, start_ms=parse_utc("2024-05-09"),
                            end_ms=parse_utc("2024-05-11"))
    assert len(calm.open_interest) > 300 and not calm.oi_synthetic
    assert not any("SYNTHETIC" in source for source in calm.sources)
    assert "binance_BTCUSDT_5m_oi_2024-05-09_2024-05-11.csv" in calm.sources
    crash = load_market_data(store.root, SYMBOL, start_ms=parse_utc("2024-08-04"),
                             end_ms=parse_utc("2024-08-06"))
    assert crash.oi_synthetic and any("SYNTHETIC" in source for source in crash.sources)
    assert not any("2024-05" in source for source in crash.sources)


def _with_lines(tmp_path: Path, inserts: dict[int, str]) -> Path:
    """The calm candles with `text` placed so that it is file line `number`."""
    lines = CALM_CANDLES.read_text().splitlines(keepends=True)
    for number in sorted(inserts):
        lines.insert(number - 1, inserts[number])
    path = tmp_path / "candles.csv"
    path.write_text("".join(lines))
    return path


def test_garbage_row_names_its_real_line_and_its_text(tmp_path):
    path = _with_lines(tmp_path, {200: "garbage,row,here\n"})
    with pytest.raises(DataError) as caught:
        load_market_data(path, SYMBOL)
    assert str(caught.value) == (f"{path} line 200: open_time_ms 'garbage' is not a time "
                                 "(epoch number or date)")
    path = _with_lines(tmp_path, {50: "\n", 120: "\n", 300: "garbage,row,here\n"})
    with pytest.raises(DataError, match=r"candles.csv line 300: open_time_ms 'garbage'"):
        load_market_data(path, SYMBOL)


@pytest.mark.parametrize("cell", ["n/a", "1_000", "\u0661\u0662"])  # the last: Arabic-Indic 12
def test_bad_price_cell_shows_its_text_not_a_numpy_repr(tmp_path, cell):
    # float() itself would read "1_000" and other scripts' digits: a price file never holds them
    fields = CALM_CANDLES.read_text().splitlines()[9].split(",")
    fields[5] = cell
    path = _with_lines(tmp_path, {})
    lines = path.read_text().splitlines(keepends=True)
    lines[9] = ",".join(fields) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(DataError) as caught:
        load_market_data(path, SYMBOL)
    assert str(caught.value) == f"{path} line 10: close {cell!r} is not a finite number"


def test_download_refuses_a_timeframe_the_exchange_lacks_before_any_request(run_cli, tmp_path):
    market = load_market_data(CALM, SYMBOL)
    server = LoopbackRestServer(market, clock=SimClock(parse_utc("2025-01-01")))
    with server as base_url:
        code, _, err = run_cli("data", "download", "--timeframe", "7m", "--since", "2024-05-02",
                               "--until", "2024-05-03", "--store", str(tmp_path / "s"),
                               "--rest-url", base_url)
    assert code == 2 and err.strip().count("\n") == 0
    assert err.startswith("error: --timeframe: '7m' is not a binanceusdm interval")
    assert "15m" in err and server.request_count == 0
    assert not (tmp_path / "s").exists()


def test_span_after_the_data_names_both_spans():
    with pytest.raises(DataError) as caught:
        load_market_data(CRASH_CANDLES, SYMBOL, start_ms=parse_utc("2030-01-01"),
                         warmup_ms=31 * DAY_MS)
    message = str(caught.value)
    assert "requested span 2030-01-01T00:00:00Z .. the end" in message
    assert "the data holds 2024-07-22T00:00:00Z .. 2024-08-19T" in message
    assert "2029-12" not in message
