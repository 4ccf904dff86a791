"""A fake Binance USD-M REST server on 127.0.0.1 with real order, algo-order and position state.

ccxt's urls['api'] is pointed at it (see `point_ccxt_at`). Private calls must carry an API key
header and a signature (any HMAC is accepted). A `FaultPlan` (fake_binance_faults.py) makes a
share of private calls, or an exact script of them, fail the ways Binance fails: rate limits
and bans, overload, 5xx, timeouts, and answers lost after the work was done or maybe done.
Unsigned /_control/ routes let a test or a parent process drive the venue
(fake_binance_control.py).

Routes can be mounted on any aiohttp app (`add_routes`), e.g. the market-data loopback server.
This module is the fake's public surface (`__all__`); the fake_binance_* modules are its parts.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from tests.live.fake_binance_batch import check_refusal, place_batch
from tests.live.fake_binance_control import add_control_routes
from tests.live.fake_binance_events import decimal_text as _s
from tests.live.fake_binance_faults import FaultPlan, run_private
from tests.live.fake_binance_protection import unprotected_spans
from tests.live.fake_binance_state import BinanceReject, FakeExchangeState
from tests.live.fake_binance_user_stream import UserStreamHub

__all__ = ["FakeBinanceServer", "FaultPlan", "VenueUrls", "add_routes", "point_ccxt_at",
           "unprotected_spans"]

STATE_KEY = web.AppKey("fake_binance_state", FakeExchangeState)
FAULTS_KEY = web.AppKey("fake_binance_faults", FaultPlan)


def _reject(exc: BinanceReject) -> web.Response:
    return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.http_status)


async def _params(request: web.Request) -> dict:
    params = dict(request.query)
    if request.can_read_body:
        params.update(dict(await request.post()))
    return params


def _private(handler):
    """Key header + signature required; the fault plan decides whether the work is done and
    what the client is told."""

    async def wrapped(request: web.Request) -> web.Response:
        state: FakeExchangeState = request.app[STATE_KEY]
        params = await _params(request)
        if not request.headers.get("X-MBX-APIKEY"):
            return _reject(BinanceReject(-2014, "API-key format invalid.", 401))
        if "signature" not in params or "timestamp" not in params:
            return _reject(BinanceReject(-1022, "Signature for this request is not valid."))

        def work() -> web.Response:
            with state.lock:
                state.requests.append((request.method, request.path))
                try:
                    return handler(state, params)
                except BinanceReject as exc:
                    return _reject(exc)
                except KeyError as exc:
                    return _reject(BinanceReject(
                        -1102, f"Mandatory parameter {exc} was not sent."))

        return await run_private(state, request.app[FAULTS_KEY], request, params, work)

    return wrapped


def _json(payload) -> web.Response:
    return web.json_response(payload)


# --- handlers (state is locked by the wrapper) ---------------------------------------------


def _post_order(state, p):
    check_refusal(state, p)
    return _json(state.new_order(p))


def _post_batch(state, p):
    return _json(place_batch(state, p))


def _get_order(state, p):
    return _json(state.find_order(p["symbol"], p.get("orderId"), p.get("origClientOrderId")))


def _delete_order(state, p):
    return _json(state.cancel_order(p["symbol"], p.get("orderId"), p.get("origClientOrderId")))


def _open_orders(state, p):
    return _json(state.open_orders(p.get("symbol")))


def _all_orders(state, p):
    return _json([o for o in state.orders.values() if o["symbol"] == p["symbol"]])


def _user_trades(state, p):
    start = int(p.get("startTime", 0))
    listed_until = state.now_ms - state.user_trades_lag_ms
    return _json([t for t in state.trades if t["symbol"] == p["symbol"]
                  and start <= t["time"] <= listed_until])


def _post_algo(state, p):
    return _json(state.new_algo_order(p))


def _get_algo(state, p):
    return _json(state.find_algo_order(p.get("algoId"), p.get("clientAlgoId")))


def _delete_algo(state, p):
    return _json(state.cancel_algo_order(p.get("algoId"), p.get("clientAlgoId")))


def _open_algos(state, p):
    return _json(state.open_algo_orders(p.get("symbol")))


def _all_algos(state, p):
    return _json([o for o in state.algo_orders.values() if o["symbol"] == p["symbol"]])


def _position_risk(state, p):
    rows = []
    for symbol, pos in state.account.positions.items():
        if p.get("symbol") not in (None, symbol):
            continue
        mark = state.prices.get(symbol, pos.entry_price)
        rows.append({
            "symbol": symbol, "positionAmt": _s(pos.qty), "entryPrice": _s(pos.entry_price),
            "markPrice": _s(mark), "unRealizedProfit": _s((mark - pos.entry_price) * pos.qty),
            "liquidationPrice": "0", "leverage": str(pos.leverage), "maxNotionalValue": "250000",
            "marginType": pos.margin_type, "isolatedMargin": "0", "isAutoAddMargin": "false",
            "positionSide": "BOTH", "notional": _s(mark * pos.qty), "isolatedWallet": "0",
            "updateTime": pos.update_ms, "breakEvenPrice": _s(pos.entry_price),
        })
    return _json(rows)


def _account(state, p):
    wallet = _s(state.account.wallet_usdt)
    asset = {"asset": "USDT", "walletBalance": wallet, "unrealizedProfit": "0",
             "marginBalance": wallet, "maintMargin": "0", "initialMargin": "0",
             "positionInitialMargin": "0", "openOrderInitialMargin": "0",
             "crossWalletBalance": wallet, "crossUnPnl": "0", "availableBalance": wallet,
             "maxWithdrawAmount": wallet, "marginAvailable": True, "updateTime": state.now_ms}
    return _json({"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                  "updateTime": 0, "multiAssetsMargin": False, "totalWalletBalance": wallet,
                  "totalMarginBalance": wallet, "availableBalance": wallet,
                  "maxWithdrawAmount": wallet, "assets": [asset], "positions": []})


def _leverage_bracket(state, p):
    return _json([{"symbol": s["symbol"], "brackets": [{
        "bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
        "maintMarginRatio": 0.004, "cum": 0.0}]} for s in state.exchange_info["symbols"]])


def _set_leverage(state, p):
    leverage = int(p["leverage"])
    state.position(p["symbol"]).leverage = leverage
    return _json({"leverage": leverage, "maxNotionalValue": "250000", "symbol": p["symbol"]})


def _set_margin_type(state, p):
    pos = state.position(p["symbol"])
    wanted = "isolated" if p["marginType"] == "ISOLATED" else "cross"
    if pos.margin_type == wanted:
        raise BinanceReject(-4046, "No need to change margin type.")
    if pos.qty:
        raise BinanceReject(-4048, "Margin type cannot be changed if there exists position.")
    pos.margin_type = wanted
    return _json({"code": 200, "msg": "success"})


def _get_dual_side(state, p):
    return _json({"dualSidePosition": state.dual_side})


def _set_dual_side(state, p):
    state.set_dual_side(p["dualSidePosition"] == "true")
    return _json({"code": 200, "msg": "success"})


PRIVATE_ROUTES = [
    ("POST", "/fapi/v1/order", _post_order), ("GET", "/fapi/v1/order", _get_order),
    ("POST", "/fapi/v1/batchOrders", _post_batch),
    ("DELETE", "/fapi/v1/order", _delete_order), ("GET", "/fapi/v1/openOrders", _open_orders),
    ("GET", "/fapi/v1/allOrders", _all_orders), ("GET", "/fapi/v1/userTrades", _user_trades),
    ("POST", "/fapi/v1/algoOrder", _post_algo), ("GET", "/fapi/v1/algoOrder", _get_algo),
    ("DELETE", "/fapi/v1/algoOrder", _delete_algo),
    ("GET", "/fapi/v1/openAlgoOrders", _open_algos), ("GET", "/fapi/v1/allAlgoOrders", _all_algos),
    ("GET", "/fapi/v2/positionRisk", _position_risk),
    ("GET", "/fapi/v3/positionRisk", _position_risk),
    ("GET", "/fapi/v2/account", _account), ("GET", "/fapi/v3/account", _account),
    ("GET", "/fapi/v1/leverageBracket", _leverage_bracket),
    ("POST", "/fapi/v1/leverage", _set_leverage), ("POST", "/fapi/v1/marginType", _set_margin_type),
    ("GET", "/fapi/v1/positionSide/dual", _get_dual_side),
    ("POST", "/fapi/v1/positionSide/dual", _set_dual_side),
]


def add_routes(app: web.Application, state: FakeExchangeState, faults: FaultPlan) -> None:
    """Mount the account and order routes (plus exchangeInfo and ticker) on `app`."""
    app[STATE_KEY] = state
    app[FAULTS_KEY] = faults

    async def exchange_info(request):
        return _json(state.exchange_info)

    async def ticker_price(request):
        symbol = request.query.get("symbol", "BTCUSDT")
        return _json({"symbol": symbol, "price": _s(state.prices[symbol]), "time": state.now_ms})

    async def server_time(request):
        return _json({"serverTime": state.now_ms})

    add_control_routes(app, state, faults)
    app.router.add_get("/fapi/v1/exchangeInfo", exchange_info)
    app.router.add_get("/fapi/v1/ticker/price", ticker_price)
    app.router.add_get("/fapi/v1/time", server_time)
    for method, path, handler in PRIVATE_ROUTES:
        app.router.add_route(method, path, _private(handler))


class VenueUrls:
    """The venue's addresses on 127.0.0.1, from its `port`."""

    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def user_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/private/ws"


class FakeBinanceServer(VenueUrls):
    """Runs the app on 127.0.0.1 (ephemeral port) in a background thread. `fill_parts`,
    `latency_ms` and `timeout_ms` set the state's (see FakeExchangeState) when given."""

    def __init__(self, state: FakeExchangeState, faults: FaultPlan | None = None, *,
                 fill_parts: int | None = None, latency_ms: int | None = None,
                 timeout_ms: int | None = None) -> None:
        self.state, self.faults = state, faults or FaultPlan()
        for name, value in (("fill_parts", fill_parts), ("latency_ms", latency_ms),
                            ("timeout_ms", timeout_ms)):
            if value is not None:
                setattr(state, name, value)
        self.app = web.Application()
        add_routes(self.app, self.state, self.faults)
        self.user_stream = UserStreamHub(self.state)  # listenKey routes + /private/ws
        self.user_stream.add_routes(self.app)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> FakeBinanceServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.user_stream.drop_all()
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def point_ccxt_at(exchange, base_url: str) -> None:
    """Rewrite every ccxt REST base (https://host/fapi/v1 ...) to base_url + the same path."""
    for name, url in list(exchange.urls["api"].items()):
        if isinstance(url, str) and "://" in url:
            path = "/" + url.split("://", 1)[1].split("/", 1)[1]
            exchange.urls["api"][name] = base_url + path
