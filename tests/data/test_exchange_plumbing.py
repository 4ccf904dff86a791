"""ccxt factory URL rewriting, and the loopback server run inside a running loop."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from cryptobot.clock import SimClock, parse_utc
from cryptobot.data import load_market_data
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.loopback_rest import LoopbackRestServer

CALM = Path(__file__).resolve().parents[2] / "data" / "btc_2024-05_calm"
SYMBOL = "BTC/USDT:USDT"


def test_rest_url_rewrites_every_api_url_keeping_the_path():
    exchange = make_exchange("binanceusdm", rest_url="http://127.0.0.1:9")
    urls = exchange.urls["api"]
    assert urls["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    assert urls["fapiData"] == "http://127.0.0.1:9/futures/data"
    assert all(u.startswith("http://127.0.0.1:9/") for u in urls.values() if isinstance(u, str))
    assert exchange.enableRateLimit


def test_load_markets_makes_one_exchange_info_call_and_knows_btc():
    market = load_market_data(CALM, SYMBOL)
    server = LoopbackRestServer(market, clock=SimClock(parse_utc("2024-05-20")))
    with server as base_url:
        exchange = make_exchange("binanceusdm", rest_url=base_url)
        markets = exchange.load_markets()
    assert server.request_log == ["/fapi/v1/exchangeInfo"]
    assert markets[SYMBOL]["linear"] and markets[SYMBOL]["id"] == "BTCUSDT"


async def test_async_server_serves_only_closed_candles_and_past_oi():
    market = load_market_data(CALM, SYMBOL)
    now_ms = parse_utc("2024-05-10T00:07")
    server = LoopbackRestServer(market, visible_until_ms=lambda: now_ms)
    base_url = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{base_url}/fapi/v1/klines?symbol=BTCUSDT&interval=5m&limit=2"
            async with session.get(url) as response:
                rows = await response.json()
            async with session.get(f"{base_url}/fapi/v1/openInterest?symbol=BTCUSDT") as response:
                oi = await response.json()
            async with session.get(f"{base_url}/fapi/v1/klines?symbol=XYZ&interval=5m") as response:
                assert response.status == 400 and (await response.json())["code"] == -1121
    finally:
        await server.stop()
    # 00:05 is still open at 00:07: the last closed candle opened at 00:00
    assert [r[0] for r in rows] == [now_ms - 7 * 60_000 - 300_000, now_ms - 7 * 60_000]
    assert oi["time"] == parse_utc("2024-05-10T00:05")
