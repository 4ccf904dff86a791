"""A fake Binance USD-M REST server on 127.0.0.1 with real order, algo-order and position state.

ccxt's urls['api'] is pointed at it (see `point_ccxt_at`). Private calls must carry an API key
header and a signature (any HMAC is accepted). A `FaultPlan` makes a fraction of private calls
answer 429 or 503 before doing anything, or do the work and then answer 502 or stall past the
client's timeout: the cases where a client cannot know whether its order went in.

Routes can be mounted on any aiohttp app (`add_routes`), e.g. the market-data loopback server.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

from aiohttp import web

from tests.live.fake_binance_state import BinanceReject, FakeExchangeState, _s
from tests.live.fake_binance_user_stream import UserStreamHub

STATE_KEY = web.AppKey("fake_binance_state", FakeExchangeState)
FAULTS_KEY = web.AppKey("fake_binance_faults", object)


@dataclass
class FaultPlan:
    """Which share of private calls misbehave, and how. Seeded: the same run fails the same way."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "503", "502_after", "timeout_after")
    stall_s: float = 0.6  # longer than the client's timeout in tests
    seed: int = 7
    injected: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self) -> str | None:
        if self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


def _reject(exc: BinanceReject) -> web.Response:
    return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.http_status)


async def _params(request: web.Request) -> dict:
    params = dict(request.query)
    if request.can_read_body:
        params.update(dict(await request.post()))
    return params


def _private(handler):
    """Key header + signature required; faults injected around the real work."""

    async def wrapped(request: web.Request) -> web.Response:
        state: FakeExchangeState = request.app[STATE_KEY]
        faults: FaultPlan = request.app[FAULTS_KEY]
        params = await _params(request)
        if not request.headers.get("X-MBX-APIKEY"):
            return _reject(BinanceReject(-2014, "API-key format invalid.", 401))
        if "signature" not in params or "timestamp" not in params:
            return _reject(BinanceReject(-1022, "Signature for this request is not valid."))
        kind = faults.draw()
        if kind == "429":
            return _reject(BinanceReject(-1003, "Too many requests.", 429))
        if kind == "503":
            return web.Response(status=503, text="Service Unavailable")
        with state.lock:
            state.requests.append((request.method, request.path))
            try:
                response = handler(state, params)
            except BinanceReject as exc:
                response = _reject(exc)
            except KeyError as exc:
                response = _reject(BinanceReject(-1102, f"Mandatory parameter {exc} was not sent."))
        if kind == "502_after":
            return web.Response(status=502, text="Bad Gateway")
        if kind == "timeout_after":
            await asyncio.sleep(faults.stall_s)
        return response

    return wrapped


def _json(payload) -> web.Response:
    return web.json_response(payload)


# --- handlers (state is locked by the wrapper) ---------------------------------------------


def _post_order(state, p):
    return _json(state.new_order(p))


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
    return _json([t for t in state.trades if t["symbol"] == p["symbol"] and t["time"] >= start])


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


PRIVATE_ROUTES = [
    ("POST", "/fapi/v1/order", _post_order), ("GET", "/fapi/v1/order", _get_order),
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

    async def control_price(request):  # test control: move the scripted price from any process
        state.set_price_scripted(float(request.query["price"]))
        return _json({"price": _s(state.prices["BTCUSDT"])})

    app.router.add_post("/_control/price", control_price)
    app.router.add_get("/fapi/v1/exchangeInfo", exchange_info)
    app.router.add_get("/fapi/v1/ticker/price", ticker_price)
    app.router.add_get("/fapi/v1/time", server_time)
    for method, path, handler in PRIVATE_ROUTES:
        app.router.add_route(method, path, _private(handler))


class FakeBinanceServer:
    """Runs the app on 127.0.0.1 (ephemeral port) in a background thread."""

    def __init__(self, state: FakeExchangeState, faults: FaultPlan | None = None) -> None:
        self.state, self.faults = state, faults or FaultPlan()
        self.app = web.Application()
        add_routes(self.app, self.state, self.faults)
        self.user_stream = UserStreamHub(self.state)  # listenKey routes + /private/ws
        self.user_stream.add_routes(self.app)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def user_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/private/ws"

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
