"""A fake Binance USD-M REST server on 127.0.0.1 that answers like Binance from MarketData.

Endpoints: /fapi/v1/ping, /time, /exchangeInfo (a recorded answer), /klines, /openInterest,
/fundingRate, /fundingInfo and /futures/data/openInterestHist, with Binance's
startTime/endTime/limit rules. /fundingInfo lists, as Binance does, only adjusted symbols: each
served market whose funding interval in force (from its rates) is not 8h, and the example row of
Binance's docs (BLZUSDT, another market, adjusted caps at 8h) that a client must pass over.
`app` is the aiohttp Application, so other parts can add routes (e.g. order endpoints).

Run it in a background thread for sync ccxt (`with LoopbackRestServer(...) as base_url:`) or in
a running loop (`base_url = await server.start()` ... `await server.stop()`). Faults on demand:
HTTP 429 with Retry-After on every Nth request, or connections closed after K requests.
`clock` is the server's now: it serves only samples taken by then, and with `closed_only` (a
replay) only candles closed by then.

Like Binance, /futures/data/openInterestHist refuses a startTime more than `oi_history_days`
(30) before the server's now, with Binance's code -1130 and a message naming the limit; pass
`oi_history_days=None` to serve the whole recorded history (a replay or a backfill test that
wants older OI than Binance would give).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from cryptobot.clock import DAY_MS, Clock, iso_utc
from cryptobot.data.market_data import MarketData
from cryptobot.data.resample import resample_candles
from cryptobot.data.table import Table
from cryptobot.data.timeframes import timeframe_to_ms
from cryptobot.exchange.symbols import market_id

EXCHANGE_INFO_FILE = (Path(__file__).resolve().parents[2] / "data" / "exchange"
                      / "binance_usdm_exchange_info.json")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NO_RECORDED_OI_CODE = -1199  # no Binance code: the loopback's own "not in the recorded data"


@dataclass
class FaultPlan:
    """Misbehaviour on demand; mutable, so a test can heal the server between runs."""

    rate_limit_every: int | None = None  # every Nth request answers HTTP 429
    retry_after_s: int = 1
    drop_after: int | None = None  # requests after the Kth are cut off without an answer
    rate_limited: int = field(default=0, init=False)
    dropped: int = field(default=0, init=False)


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None):
    return web.json_response({"code": code, "msg": message}, status=status, headers=headers)


def _int_param(request: web.Request, name: str) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"code": -1100, "msg": f"Illegal characters "
                                 f"found in parameter '{name}'"}),
                                 content_type="application/json") from None


def _window(ts: np.ndarray, start: int | None, end: int | None, limit: int) -> slice:
    """Binance's rule: from startTime forward, else back from endTime (or the latest)."""
    lo = 0 if start is None else int(np.searchsorted(ts, start, side="left"))
    hi = len(ts) if end is None else int(np.searchsorted(ts, end, side="right"))
    if start is None:
        return slice(max(lo, hi - limit), hi)
    return slice(lo, min(hi, lo + limit))


class LoopbackRestServer:
    def __init__(self, markets: MarketData | Sequence[MarketData], *, clock: Clock,
                 closed_only: bool = False, faults: FaultPlan | None = None,
                 oi_history_days: int | None = 30,
                 exchange_info_file: Path = EXCHANGE_INFO_FILE) -> None:
        markets = [markets] if isinstance(markets, MarketData) else list(markets)
        self.markets = {market_id(m.symbol): m for m in markets}
        self.faults = faults or FaultPlan()
        self.closed_only = closed_only
        self.clock = clock
        self.oi_history_days = oi_history_days
        self.exchange_info = json.loads(exchange_info_file.read_text())
        self.request_count = 0
        self.request_log: list[str] = []
        self.app = web.Application(middlewares=[self._faults_middleware])
        self.app.router.add_get("/fapi/v1/ping", self._ping)
        self.app.router.add_get("/fapi/v1/time", self._time)
        self.app.router.add_get("/fapi/v1/exchangeInfo", self._exchange_info)
        self.app.router.add_get("/fapi/v1/klines", self._klines)
        self.app.router.add_get("/fapi/v1/openInterest", self._open_interest)
        self.app.router.add_get("/futures/data/openInterestHist", self._open_interest_hist)
        self.app.router.add_get("/fapi/v1/fundingRate", self._funding_rate)
        self.app.router.add_get("/fapi/v1/fundingInfo", self._funding_info)
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.base_url = ""

    # ---- running ------------------------------------------------------------------------
    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def __enter__(self) -> str:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="loopback-rest", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("loopback REST server did not start")
        return self.base_url

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._thread is not None
        asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # ---- helpers --------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self.clock.now_ms()

    @web.middleware
    async def _faults_middleware(self, request: web.Request, handler: _Handler):
        self.request_count += 1
        self.request_log.append(request.path_qs)
        plan = self.faults
        if plan.drop_after is not None and self.request_count > plan.drop_after:
            plan.dropped += 1
            if request.transport is not None:
                request.transport.close()  # the client sees the connection die mid-request
            raise asyncio.CancelledError
        if plan.rate_limit_every and self.request_count % plan.rate_limit_every == 0:
            plan.rate_limited += 1
            return _error(429, -1003, "Too many requests; current limit of IP is 2400 "
                          "requests per minute.", {"Retry-After": str(plan.retry_after_s)})
        return await handler(request)

    def _market(self, request: web.Request) -> MarketData:
        market = self.markets.get(request.query.get("symbol", ""))
        if market is None:
            raise web.HTTPBadRequest(text=json.dumps({"code": -1121, "msg": "Invalid symbol."}),
                                     content_type="application/json")
        return market

    def _limit(self, request: web.Request, default: int, maximum: int) -> int:
        limit = _int_param(request, "limit")
        return default if limit is None else max(1, min(limit, maximum))

    # ---- endpoints ------------------------------------------------------------------------
    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": self.now_ms()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response({**self.exchange_info, "serverTime": self.now_ms()})

    async def _klines(self, request: web.Request) -> web.Response:
        market = self._market(request)
        try:
            interval_ms = timeframe_to_ms(request.query.get("interval", ""))
        except ValueError:
            return _error(400, -1120, "Invalid interval.")
        if interval_ms % market.base_interval_ms:
            return _error(400, -1120, "Invalid interval.")
        candles = market.candles
        if interval_ms != market.base_interval_ms:
            candles = resample_candles(candles, interval_ms)
        if self.closed_only:
            closed_until = self.now_ms() - interval_ms
            candles = candles[candles["ts_open_ms"] <= closed_until]
        rows = candles[_window(candles["ts_open_ms"], _int_param(request, "startTime"),
                               _int_param(request, "endTime"), self._limit(request, 500, 1500))]
        return web.json_response([_kline_row(row, interval_ms) for row in rows.rows()])

    def _visible_oi(self, market: MarketData) -> Table:
        oi = market.open_interest
        return oi[oi["ts_ms"] <= self.now_ms()]

    async def _open_interest(self, request: web.Request) -> web.Response:
        market = self._market(request)
        oi = market.open_interest
        times = oi["ts_ms"]  # in time order (load_market_data)
        visible = int(np.searchsorted(times, self.now_ms(), side="right"))
        if not visible:
            # Binance always knows the open interest; recorded data may not hold it yet (or at
            # all). Say so once, plainly, not with Binance's "Invalid symbol".
            return _error(400, NO_RECORDED_OI_CODE, _no_oi_message(market, self.now_ms()))
        return web.json_response({"openInterest": _text(oi["oi_contracts"][visible - 1]),
                                  "symbol": market_id(market.symbol),
                                  "time": int(times[visible - 1])})

    async def _open_interest_hist(self, request: web.Request) -> web.Response:
        market = self._market(request)
        try:
            period_ms = timeframe_to_ms(request.query.get("period", ""))
        except ValueError:
            return _error(400, -1102, "Mandatory parameter 'period' was not sent, was empty/null, "
                          "or malformed.")
        start, end = _int_param(request, "startTime"), _int_param(request, "endTime")
        oldest_ms = None if self.oi_history_days is None \
            else self.now_ms() - self.oi_history_days * DAY_MS
        if oldest_ms is not None and start is not None and start < oldest_ms:
            return _error(400, -1130, "Data sent for parameter 'startTime' is not valid. "
                          f"(openInterestHist starts {self.oi_history_days} days back, at "
                          f"{iso_utc(oldest_ms)}; startTime is {iso_utc(start)}; this loopback "
                          "server takes oi_history_days=None to serve all it has)")
        oi = self._visible_oi(market)
        oi = oi[oi["ts_ms"] % period_ms == 0]
        rows = oi[_window(oi["ts_ms"], start, end, self._limit(request, 30, 500))]
        symbol = market_id(market.symbol)
        return web.json_response([
            {"symbol": symbol, "sumOpenInterest": _text(oi_contracts),
             "sumOpenInterestValue": _text(oi_value_usdt), "timestamp": int(ts_ms)}
            for ts_ms, oi_contracts, oi_value_usdt in rows.rows()])

    async def _funding_info(self, request: web.Request) -> web.Response:
        adjusted = [dict(_BINANCE_DOCS_FUNDING_INFO)]
        for symbol, market in self.markets.items():
            hours = funding_interval_hours(market, self.now_ms())
            if hours is not None and hours != 8:
                adjusted.append({**_BINANCE_DOCS_FUNDING_INFO, "symbol": symbol,
                                 "fundingIntervalHours": hours})
        return web.json_response(adjusted)

    async def _funding_rate(self, request: web.Request) -> web.Response:
        market = self._market(request)
        funding = market.funding[market.funding["ts_ms"] <= self.now_ms()]
        rows = funding[_window(funding["ts_ms"], _int_param(request, "startTime"),
                               _int_param(request, "endTime"), self._limit(request, 100, 1000))]
        symbol = market_id(market.symbol)
        return web.json_response([
            {"symbol": symbol, "fundingTime": int(ts_ms), "fundingRate": _text(rate)}
            for ts_ms, rate in rows.rows()])


def funding_interval_hours(market: MarketData, now_ms: int) -> int | None:
    """The interval in force at `now_ms` by the market's rates: from the last settlement
    published to the next one (a venue knows its schedule), else the last two; None: unknown."""
    ts = market.funding["ts_ms"]
    settled = ts - ts % 60_000
    i = int(np.searchsorted(ts, now_ms, side="right")) - 1
    if i < 0:
        return None
    pair = (i, i + 1) if i + 1 < len(ts) else (i - 1, i)
    if pair[0] < 0:
        return None
    return int((settled[pair[1]] - settled[pair[0]]) // 3_600_000)


_BINANCE_DOCS_FUNDING_INFO = {"symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02500000",
                              "adjustedFundingRateFloor": "-0.02500000",
                              "fundingIntervalHours": 8, "disclaimer": False}


def _no_oi_message(market: MarketData, now_ms: int) -> str:
    oi = market.open_interest
    held = (f"its open interest starts {iso_utc(int(oi['ts_ms'][0]))}" if len(oi)
            else "it holds no open interest")
    return (f"no open interest recorded for {market_id(market.symbol)} by {iso_utc(now_ms)} "
            f"in the replayed data ({held})")


def _text(value: Any) -> str:
    """Binance sends decimals as strings; a missing value as ''."""
    number = float(value)
    return "" if np.isnan(number) else np.format_float_positional(number, trim="-")


def _kline_row(row: tuple, interval_ms: int) -> list[Any]:
    # Quote volume, trade count and taker volumes are not in our tables: sent as zero.
    ts_open_ms, open_, high, low, close, volume = row
    return [int(ts_open_ms), _text(open_), _text(high), _text(low), _text(close), _text(volume),
            int(ts_open_ms) + interval_ms - 1, "0", 0, "0", "0", "0"]
