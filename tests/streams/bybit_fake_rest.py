"""A Bybit v5 market REST stand-in on 127.0.0.1, enough for ccxt's `bybit` to load the market
and fetch klines, open-interest history and funding history, served from real candles/samples.

Shapes follow the documented responses (docs/v5/market/{instrument,kline,open-interest,
history-fund-rate}.mdx): `{"retCode": 0, "result": {"list": [...]}}`, lists newest first.
Where the docs are silent on which rows a [start, end] window larger than `limit` returns, this
fake returns the newest `limit` ones (the pessimistic reading of "sort in reverse").
Only rows visible by `clock` are served, like a venue that has not seen the future.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web

from cryptobot.clock import Clock
from cryptobot.model import Candle, FundingRate, OpenInterest
from tests.streams.bybit_loopback import BYBIT_FIXTURES

_INTERVALS_MS = {"1": 60_000, "5": 300_000, "15": 900_000, "60": 3_600_000}
_OI_INTERVALS_MS = {"5min": 300_000, "15min": 900_000, "1h": 3_600_000}


def _ok(result: dict) -> web.Response:
    return web.json_response({"retCode": 0, "retMsg": "OK", "result": result,
                              "retExtInfo": {}, "time": 0})




@dataclass
class BybitFakeRest:
    candles: list[Candle]
    samples: list[OpenInterest]
    clock: Clock
    funding: list[FundingRate] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v5/market/instruments-info", self._instruments)
        app.router.add_get("/v5/market/kline", self._kline)
        app.router.add_get("/v5/market/open-interest", self._open_interest)
        app.router.add_get("/v5/market/funding/history", self._funding)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _limit(self, request: web.Request, default: int, most: int) -> int:
        self.paths.append(request.path)
        limit = int(request.query.get("limit", default))
        if not 1 <= limit <= most:
            raise web.HTTPOk(text=json.dumps({"retCode": 10001, "retMsg": "params error: limit",
                                              "result": {}}), content_type="application/json")
        return limit

    def _visible(self, request: web.Request, rows: list, ts_of, start_key: str, end_key: str,
                 limit: int) -> list:
        """Rows from `start_key` to `end_key` (or now), seen by the clock: the newest `limit`,
        newest first."""
        now_ms = self.clock.now_ms()
        end = min(int(request.query.get(end_key, now_ms)), now_ms)
        start = int(request.query.get(start_key, 0))
        inside = [r for r in rows if start <= ts_of(r) <= end]
        return list(reversed(inside[-limit:]))

    async def _instruments(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        text = (BYBIT_FIXTURES / "rest_instruments_info_linear_BTCUSDT_from_bybit_docs.json")
        return web.json_response(json.loads(text.read_text()))

    async def _kline(self, request: web.Request) -> web.Response:
        limit = self._limit(request, 200, 1000)
        interval_ms = _INTERVALS_MS[request.query["interval"]]
        # the candle still forming is served too, as the venue does
        rows = [c for c in self.candles if c.interval_ms == interval_ms]
        picked = self._visible(request, rows, lambda c: c.ts_open_ms, "start", "end", limit)
        return _ok({"category": "linear", "symbol": request.query["symbol"], "list": [
            [str(c.ts_open_ms), repr(c.open), repr(c.high), repr(c.low), repr(c.close),
             repr(c.volume), "0"] for c in picked]})

    async def _open_interest(self, request: web.Request) -> web.Response:
        limit = self._limit(request, 50, 200)
        step_ms = _OI_INTERVALS_MS[request.query["intervalTime"]]
        rows = [s for s in self.samples if s.ts_ms % step_ms == 0]
        picked = self._visible(request, rows, lambda s: s.ts_ms, "startTime", "endTime", limit)
        return _ok({"category": "linear", "symbol": request.query["symbol"], "list": [
            {"openInterest": repr(s.oi_contracts), "timestamp": str(s.ts_ms)} for s in picked],
            "nextPageCursor": ""})

    async def _funding(self, request: web.Request) -> web.Response:
        limit = self._limit(request, 200, 200)
        picked = self._visible(request, self.funding, lambda r: r.ts_ms, "startTime", "endTime",
                               limit)
        return _ok({"category": "linear", "list": [
            {"symbol": request.query["symbol"], "fundingRate": repr(r.rate),
             "fundingRateTimestamp": str(r.ts_ms)} for r in picked]})
