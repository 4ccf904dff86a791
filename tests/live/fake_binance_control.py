"""Test-control routes of the fake venue: unsigned, under /_control/, never faulted, so a
parent process (a benchmark running the bot in a child) can drive the venue and read it.

    POST /_control/price?price=P[&symbol=ETHUSDT]   last price := P (BTCUSDT unless given), one
                                   second later (stops and limits fire)
    POST /_control/sleep?ms=N      the venue clock moves N ms: the bot's sleeps in a fault run
    POST /_control/walk            JSON {ts_open_ms, ts_close_ms, open, high, low, close[,
                                   symbol]}: the price walks through that candle (walk_candle)
    GET  /_control/state           orders, algo orders, trades, positions, now_ms, protection
                                   log (FakeExchangeState.snapshot) and the faults answered
"""

from __future__ import annotations

from aiohttp import web

from tests.live.fake_binance_events import decimal_text
from tests.live.fake_binance_faults import FaultPlan
from tests.live.fake_binance_state import FakeExchangeState


def add_control_routes(app: web.Application, state: FakeExchangeState,
                       faults: FaultPlan) -> None:
    async def price(request: web.Request) -> web.Response:
        market = request.query.get("symbol", "BTCUSDT")
        state.set_price_scripted(float(request.query["price"]), market)
        return web.json_response({"price": decimal_text(state.prices[market]),
                                  "now_ms": state.now_ms})

    async def sleep(request: web.Request) -> web.Response:
        with state.lock:
            if faults.trace is not None:
                faults.trace.append((state.now_ms, "SLEEP", request.query["ms"], "", ""))
            state.now_ms += int(request.query["ms"])
            return web.json_response({"now_ms": state.now_ms})

    async def walk(request: web.Request) -> web.Response:
        candle = await request.json()
        market = candle.get("symbol", "BTCUSDT")
        state.walk_candle(int(candle["ts_open_ms"]), int(candle["ts_close_ms"]),
                          float(candle["open"]), float(candle["high"]), float(candle["low"]),
                          float(candle["close"]), symbol=market)
        return web.json_response({"price": decimal_text(state.prices[market]),
                                  "now_ms": state.now_ms})

    async def snapshot(request: web.Request) -> web.Response:
        body = state.snapshot()
        body["faults"] = {"injected": dict(faults.injected), "executed": dict(faults.executed),
                          "early_requests": faults.early_requests, "bans": faults.bans}
        return web.json_response(body)

    app.router.add_post("/_control/price", price)
    app.router.add_post("/_control/sleep", sleep)
    app.router.add_post("/_control/walk", walk)
    app.router.add_get("/_control/state", snapshot)
