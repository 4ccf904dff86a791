"""ccxt factory URL rewriting, and the loopback server run inside a running loop."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

import aiohttp

from cryptobot.clock import DAY_MS, SimClock, parse_utc
from cryptobot.data import load_market_data
from cryptobot.exchange.ccxt_factory import make_exchange
from cryptobot.exchange.loopback_rest import LoopbackRestServer

CALM = Path(__file__).resolve().parents[2] / "data" / "btc_2024-05_calm"
CRASH = Path(__file__).resolve().parents[2] / "data" / "btc_2024-08_crash"
SYMBOL = "BTC/USDT:USDT"


def test_rest_url_rewrites_every_api_url_keeping_the_path():
    exchange = make_exchange("binanceusdm", rest_url="http://127.0.0.1:9")
    urls = exchange.urls["api"]
    assert urls["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"
    assert urls["fapiData"] == "http://127.0.0.1:9/futures/data"
    assert all(u.startswith("http://127.0.0.1:9/") for u in urls.values() if isinstance(u, str))
    assert exchange.enableRateLimit


def test_timeout_rate_limit_and_options_are_set_when_the_client_is_built():
    exchange = make_exchange("binanceusdm", timeout_ms=1234, rate_limit=False,
                             options={"fetchCurrencies": False})
    assert exchange.timeout == 1234 and not exchange.enableRateLimit
    assert exchange.options["fetchCurrencies"] is False
    assert exchange.options["defaultType"] == "swap"  # the linear-only options stay
    assert make_exchange("binanceusdm").options["fetchCurrencies"] is not False


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
    server = LoopbackRestServer(market, clock=SimClock(now_ms), closed_only=True)
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



async def _oi_hist(base_url: str, start_ms: int) -> tuple[int, object]:
    url = (f"{base_url}/futures/data/openInterestHist?symbol=BTCUSDT&period=5m"
           f"&startTime={start_ms}&limit=500")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def test_oi_history_beyond_30_days_is_refused_clearly_unless_turned_off():
    market = load_market_data(CRASH, SYMBOL)
    now_ms = parse_utc("2024-08-19T12:00")
    too_old_ms = now_ms - 30 * DAY_MS - 300_000
    answers = []
    for days in (30, None):
        server = LoopbackRestServer(market, clock=SimClock(now_ms), closed_only=True,
                                    oi_history_days=days)
        base_url = await server.start()
        try:
            answers.append(await _oi_hist(base_url, too_old_ms))
        finally:
            await server.stop()
    (refused_status, refused), (served_status, served) = answers
    assert refused_status == 400 and refused["code"] == -1130
    assert "30 days back, at 2024-07-20T12:00:00Z" in refused["msg"]
    assert "oi_history_days=None" in refused["msg"]
    assert served_status == 200
    assert served[0]["timestamp"] == int(market.open_interest["ts_ms"][0])  # all of it


async def test_a_31_day_warm_up_stays_inside_the_30_day_rule():
    """What a replay does at start (backfill.load_warm_up) against the default server."""
    from cryptobot.exchange.backfill import load_warm_up

    market = load_market_data(CRASH, SYMBOL)
    now_ms = parse_utc("2024-08-25T12:00")  # 31 days back is inside the recorded window
    server = LoopbackRestServer(market, clock=SimClock(now_ms), closed_only=True)
    rest = make_exchange("binanceusdm", rest_url=await server.start(), async_client=True,
                         rate_limit=False)
    try:
        warm = await load_warm_up(rest, SYMBOL, 300_000, now_ms, 31)
    finally:
        await rest.close()
        await server.stop()
    assert warm.candles[0].ts_open_ms == now_ms - 31 * DAY_MS
    oi_ms = [sample.ts_ms for sample in warm.open_interest]
    assert now_ms - 30 * DAY_MS <= oi_ms[0] <= now_ms - 30 * DAY_MS + 300_000
    assert oi_ms[-1] == int(market.open_interest["ts_ms"][-1])
    # every request names its own end, inside one page Binance documents
    pages = [(path, parse_qs(query)) for path, _, query in
             (line.partition("?") for line in server.request_log)]
    most = {"/fapi/v1/klines": 1500, "/futures/data/openInterestHist": 500}
    checked = [(path, q) for path, q in pages if path in most]
    assert {path for path, _ in checked} == set(most)
    for path, q in checked:
        limit, start, end = (int(q[k][0]) for k in ("limit", "startTime", "endTime"))
        assert limit <= most[path] and start <= end < start + limit * 300_000
