"""`data download` against a loopback server that answers like Binance: pages, 429, resume,
several symbols under one progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptobot.clock import DAY_MS, SimClock, parse_utc
from cryptobot.data import load_market_data, load_markets
from cryptobot.data.download import Downloader
from cryptobot.data.market_store import MarketStore
from cryptobot.errors import DataError, TemporaryExchangeError
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.loopback_rest import FaultPlan, LoopbackRestServer

CALM = Path(__file__).resolve().parents[2] / "data" / "btc_2024-05_calm"
SYMBOL = "BTC/USDT:USDT"
SINCE, UNTIL = parse_utc("2024-05-09T12:00"), parse_utc("2024-05-11T00:00")
NOW = parse_utc("2024-05-20")  # OI span inside Binance's 30 days


@pytest.fixture(scope="module")
def market():
    return load_market_data(CALM, SYMBOL)


def _downloader(base_url: str, store: MarketStore, clock: SimClock, sleeps: list[float],
                **kwargs) -> Downloader:
    exchange = make_exchange("binanceusdm", rest_url=base_url)
    exchange.rateLimit = 1  # keep ccxt's limiter on, but fast against loopback
    return Downloader(exchange, store, clock, page_limit=100, oi_page_limit=120,
                      sleep=sleeps.append, **kwargs)


def _expected(market, column, frame, since=SINCE, until=UNTIL):
    ts = frame[column]
    return frame[(ts >= since) & (ts < until)]


def _assert_same(table, expected):
    pd.testing.assert_frame_equal(table.to_pandas(), expected.to_pandas())


def test_paginated_download_equals_the_source_data(tmp_path, market):
    clock = SimClock(NOW)
    store = MarketStore(tmp_path / "store")
    server = LoopbackRestServer(market, clock=clock)
    with server as base_url:
        result = _downloader(base_url, store, clock, []).run(SYMBOL, "5m", SINCE, UNTIL)
    assert result.notes == []
    candles = store.read("binanceusdm", SYMBOL, "candles", 300_000).frame
    _assert_same(candles, _expected(market, "ts_open_ms", market.candles))
    oi = store.read("binanceusdm", SYMBOL, "open_interest").frame
    _assert_same(oi, _expected(market, "ts_ms", market.open_interest))
    klines = [r for r in server.request_log if r.startswith("/fapi/v1/klines")]
    assert len(klines) == -(-len(candles) // 100)  # one request per page of 100


def test_rate_limit_answers_wait_for_retry_after_and_retry(tmp_path, market):
    clock = SimClock(NOW)
    store = MarketStore(tmp_path / "store")
    sleeps: list[float] = []
    server = LoopbackRestServer(market, clock=clock,
                                faults=FaultPlan(rate_limit_every=3, retry_after_s=7))
    with server as base_url:
        result = _downloader(base_url, store, clock, sleeps).run(SYMBOL, "5m", SINCE, UNTIL)
    assert server.faults.rate_limited >= 3
    assert sleeps == [7.0] * server.faults.rate_limited == [7.0] * result.retries
    candles = store.read("binanceusdm", SYMBOL, "candles", 300_000).frame
    _assert_same(candles, _expected(market, "ts_open_ms", market.candles))


def test_rate_limit_is_bounded(tmp_path, market):
    clock = SimClock(NOW)
    sleeps: list[float] = []
    server = LoopbackRestServer(market, clock=clock, faults=FaultPlan(rate_limit_every=1))
    with server as base_url, pytest.raises(TemporaryExchangeError, match="gave up after 3 tries"):
        _downloader(base_url, MarketStore(tmp_path), clock, sleeps, max_retries=2).run(
            SYMBOL, "5m", SINCE, UNTIL)
    assert len(sleeps) == 2


def test_resume_after_the_server_drops(tmp_path, market):
    clock = SimClock(NOW)
    store = MarketStore(tmp_path / "store")
    server = LoopbackRestServer(market, clock=clock, faults=FaultPlan(drop_after=4))
    with server as base_url:
        with pytest.raises(TemporaryExchangeError):
            _downloader(base_url, store, clock, [], max_retries=1).run(SYMBOL, "5m", SINCE, UNTIL)
        partial = store.read("binanceusdm", SYMBOL, "candles", 300_000).frame
        full = _expected(market, "ts_open_ms", market.candles)
        assert 0 < len(partial) < len(full)  # the pages fetched before the drop were kept
        server.faults.drop_after = None
        server.request_log.clear()
        _downloader(base_url, store, clock, []).run(SYMBOL, "5m", SINCE, UNTIL)
    first_kline = next(r for r in server.request_log if r.startswith("/fapi/v1/klines"))
    resume_ms = int(partial["ts_open_ms"][-1]) + 300_000
    assert f"startTime={resume_ms}" in first_kline  # restarted after what was stored
    candles = store.read("binanceusdm", SYMBOL, "candles", 300_000).frame
    assert len(np.unique(candles["ts_open_ms"])) == len(candles)
    _assert_same(candles, full)


def test_span_older_than_30_days_says_so_and_points_to_metrics(tmp_path, market):
    clock = SimClock(UNTIL + 40 * DAY_MS)
    store = MarketStore(tmp_path / "store")
    with LoopbackRestServer(market, clock=clock) as base_url:
        result = _downloader(base_url, store, clock, []).run(SYMBOL, "5m", SINCE, UNTIL)
    assert result.open_interest is None
    (note,) = result.notes
    assert "last 30 days only" in note and "metrics" in note
    assert store.read("binanceusdm", SYMBOL, "open_interest") is None
    assert len(store.read("binanceusdm", SYMBOL, "candles", 300_000).frame) > 0


def test_running_candle_is_not_stored(tmp_path, market):
    clock = SimClock(SINCE + 3 * 300_000 + 1)  # the fourth candle is still open
    store = MarketStore(tmp_path / "store")
    with LoopbackRestServer(market, clock=clock) as base_url:
        _downloader(base_url, store, clock, []).run(SYMBOL, "5m", SINCE, UNTIL)
    candles = store.read("binanceusdm", SYMBOL, "candles", 300_000).frame
    assert candles["ts_open_ms"].tolist() == [SINCE + i * 300_000 for i in range(3)]


def test_span_beyond_the_data_says_where_the_exchange_has_no_candles(tmp_path, market):
    # The calm window holds 2024-05-01 .. 2024-05-12: ask for a day more on each side.
    clock = SimClock(NOW)
    store = MarketStore(tmp_path / "store")
    with LoopbackRestServer(market, clock=clock) as base_url:
        result = _downloader(base_url, store, clock, []).run(
            SYMBOL, "1h", parse_utc("2024-04-30"), parse_utc("2024-05-14"))
    assert result.notes == [
        "the exchange has no BTC/USDT:USDT candles from 2024-04-30T00:00:00Z to "
        "2024-05-01T00:00:00Z (1d00h)",
        "the exchange has no BTC/USDT:USDT candles from 2024-05-13T00:00:00Z to "
        "2024-05-14T00:00:00Z (1d00h)"]
    assert len(store.read("binanceusdm", SYMBOL, "candles", 3_600_000).frame) == 12 * 24


def test_unknown_timeframe_is_a_data_error(tmp_path):
    downloader = Downloader(None, MarketStore(tmp_path), SimClock(NOW))
    with pytest.raises(DataError, match=r"--timeframe: unknown timeframe '7x'"):
        downloader.run(SYMBOL, "7x", SINCE, UNTIL)


BTC_ETH = Path(__file__).resolve().parents[2] / "data" / "btc_eth_2024-08_15m"
ETH = "ETH/USDT:USDT"
TWO_FROM, TWO_UNTIL = parse_utc("2024-08-04"), parse_utc("2024-08-06")


@pytest.fixture(scope="module")
def btc_and_eth():
    return load_markets(BTC_ETH, [SYMBOL, ETH])


def test_two_symbols_are_stored_under_one_progress(tmp_path, btc_and_eth):
    clock = SimClock(parse_utc("2024-08-25"))  # OI inside Binance's 30 days: asked, none held
    store = MarketStore(tmp_path / "store")
    reports: list[tuple[float, str]] = []
    server = LoopbackRestServer(list(btc_and_eth.values()), clock=clock)
    with server as base_url:
        results = _downloader(base_url, store, clock, [],
                              progress=lambda share, doing: reports.append((share, doing))
                              ).run_all([SYMBOL, ETH], "15m", TWO_FROM, TWO_UNTIL)
    assert list(results) == [SYMBOL, ETH]
    for symbol, market in btc_and_eth.items():
        stored = store.read("binanceusdm", symbol, "candles", 900_000).frame
        expected = _expected(market, "ts_open_ms", market.candles, TWO_FROM, TWO_UNTIL)
        _assert_same(stored, expected)
        assert results[symbol].candles.rows_added == 2 * 96
    shares = [share for share, _ in reports]
    assert shares == sorted(shares) and shares[-1] == 1.0  # one share for the whole download
    half = next(i for i, (_, doing) in enumerate(reports) if doing.startswith(ETH))
    assert all(doing.startswith(SYMBOL) for _, doing in reports[:half])
    assert shares[half - 1] == 0.5 and all(doing.startswith(ETH) for _, doing in reports[half:])
    assert sum("exchangeInfo" in r for r in server.request_log) == 1  # markets loaded once


def test_cli_downloads_two_symbols_with_one_progress_bar(run_cli, tmp_path, btc_and_eth):
    server = LoopbackRestServer(list(btc_and_eth.values()), clock=SimClock(NOW))
    store = tmp_path / "store"
    with server as base_url:
        code, out, err = run_cli("data", "download", "--symbol", f"{SYMBOL},{ETH}",
                                 "--timeframe", "15m", "--since", "2024-08-04", "--until",
                                 "2024-08-06", "--store", str(store), "--rest-url", base_url)
    assert (code, err) == (0, ""), err
    bars = [line for line in out.splitlines() if line.startswith("download")]
    assert len(bars) == 1 and bars[0].startswith("download 2 symbols")
    assert out.count("downloaded into") == 2
    assert out.count("last 30 days only") == 1  # a note for every symbol is said once
    for symbol in (SYMBOL, ETH):
        stored = MarketStore(store).read("binanceusdm", symbol, "candles", 900_000).frame
        assert len(stored) == 2 * 96
    both = load_markets(store, [SYMBOL, ETH])
    assert both[ETH].candles["close"].max() < 10_000 < both[SYMBOL].candles["close"].min()


@pytest.mark.parametrize(("symbols", "message"), [
    (f"{SYMBOL},,{ETH}", f"error: --symbol '{SYMBOL},,{ETH}': an empty item; "),
    (f"{SYMBOL},", f"error: --symbol '{SYMBOL},': an empty item; "),
    (f"{SYMBOL}, BTCUSDT", f"error: --symbol '{SYMBOL}, BTCUSDT': BTCUSDT is listed twice"),
    (f"{SYMBOL},SOL/USDT:USDT", "error: --symbol: SOL/USDT:USDT is not a binanceusdm market"),
])
def test_cli_bad_symbol_list_is_one_error_line_before_any_download(run_cli, tmp_path,
                                                                    btc_and_eth, symbols,
                                                                    message):
    server = LoopbackRestServer(list(btc_and_eth.values()), clock=SimClock(NOW))
    with server as base_url:
        code, _, err = run_cli("data", "download", "--symbol", symbols, "--timeframe", "15m",
                               "--since", "2024-08-04", "--until", "2024-08-06",
                               "--store", str(tmp_path / "s"), "--rest-url", base_url)
    assert code == 2 and err.strip().count("\n") == 0 and err.startswith(message), err
    assert not any("klines" in r for r in server.request_log)
    assert not (tmp_path / "s").exists()
