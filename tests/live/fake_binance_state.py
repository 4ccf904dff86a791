"""Order, algo-order and position state of the fake Binance USD-M account.

Prices move only when a test says so (`set_price_scripted`, `step_scripted`, `walk_candle`);
each move fires stops and fills limits the way Binance does in one-way mode
(fake_binance_matching.py). Payloads are shaped like the recorded responses in
tests/fixtures/binance/http_json/; every order change is also pushed to `listeners` as a
user-data-stream event (fake_binance_events.py).

`now_ms` is the venue's clock and, in a fault run, the run's simulated time: a private request
costs `latency_ms`, an answer lost to a timeout `timeout_ms` (fake_binance_faults.py).
`protection_log` records after every change of a position or a stop how much of the position
the working stops cover (fake_binance_protection.py reads it); `protection_logs` the same for
each market apart (a venue of several symbols).
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tests.live.fake_binance_events import algo_update, order_trade_update
from tests.live.fake_binance_events import decimal_text as _s
from tests.live.fake_binance_matching import OPEN_STATUSES, fill_taker, match

REPO_ROOT = Path(__file__).resolve().parents[2]
EXCHANGE_INFO_PATH = REPO_ROOT / "data" / "exchange" / "binance_usdm_exchange_info.json"
TIME_IN_FORCE = ("GTC", "IOC")  # FOK and GTX exist on Binance but are not modelled here


class BinanceReject(Exception):
    """An error Binance answers with {"code": ..., "msg": ...} and an HTTP status."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.http_status = code, msg, http_status


@dataclass
class FakePosition:
    qty: Decimal = Decimal(0)  # signed, one-way mode
    entry_price: Decimal = Decimal(0)
    leverage: int = 20
    margin_type: str = "cross"
    update_ms: int = 0


@dataclass
class FakeAccount:
    wallet_usdt: Decimal = Decimal("10000")
    positions: dict[str, FakePosition] = field(default_factory=dict)


class FakeExchangeState:
    """Everything the fake venue remembers. Thread-safe: handlers and tests share it."""

    def __init__(self, price_path_scripted: list[float], now_ms: int = 1_722_816_000_000,
                 fill_parts: int = 1, other_prices: Mapping[str, float] | None = None) -> None:
        """`price_path_scripted` starts BTCUSDT; `other_prices`: other markets' first prices
        (ETHUSDT ...: a venue of several symbols)."""
        self.exchange_info = json.loads(EXCHANGE_INFO_PATH.read_text())
        self.filters = {s["symbol"]: {f["filterType"]: f for f in s["filters"]}
                        for s in self.exchange_info["symbols"]}
        self.price_path_scripted = [Decimal(str(p)) for p in price_path_scripted]
        self.path_index = 0
        self.prices: dict[str, Decimal] = {"BTCUSDT": self.price_path_scripted[0]}
        self.prices.update({market: Decimal(str(price))
                            for market, price in (other_prices or {}).items()})
        self.now_ms = now_ms
        self.fill_parts = fill_parts  # trades per taker order (fake_binance_matching.py)
        self.latency_ms = 0  # simulated cost of every private request
        self.timeout_ms = 400  # the client's request timeout: what a stalled answer costs
        self.dual_side = False  # hedge mode; the fake trades one-way only
        self.account = FakeAccount()
        self.orders: dict[int, dict] = {}
        self.algo_orders: dict[int, dict] = {}
        self.trades: list[dict] = []
        self.protection_log: list[tuple[int, float, float]] = []  # (ms, position, covered)
        self.protection_logs: dict[str, list[tuple[int, float, float]]] = {}  # by market
        self.lock = threading.RLock()
        self._ids = itertools.count(8_000_000_001)
        self.reject_next_algo_orders = 0  # tests: how many stop placements to refuse
        # tests: GET userTrades leaves out trades younger than this (its index can lag the
        # order's status: an order already FILLED whose trades are not listed yet)
        self.user_trades_lag_ms = 0
        # tests: how many reduce-only market orders (exits) to refuse, as Binance does when the
        # book is too far from the mark in a cascade (-4131, PERCENT_PRICE)
        self.reject_next_market_exits = 0
        self.refuse_orders: dict[str, tuple[int, str]] = {}  # tests: fake_binance_batch.py
        self.requests: list[tuple[str, str]] = []  # (method, path) of every call, for tests
        self.listeners: list = []  # callables fed each user-stream event (the websocket hub)
        self.user_events: list[dict] = []  # every event pushed, for tests
        self.listen_keys: dict[str, int] = {}  # key -> last POST/PUT ms
        self.listen_key_calls: list[tuple[str, int]] = []  # (method, now_ms)
        self.refuse_listen_key = False  # tests: answer POST listenKey with -2015

    def next_id(self) -> int:
        return next(self._ids)

    def emit(self, event: dict) -> None:
        with self.lock:
            self.user_events.append(event)
            for listener in list(self.listeners):
                listener(event)

    def order_event(self, order: dict, execution_type: str, **trade) -> None:
        self.emit(order_trade_update(order, execution_type, self.now_ms, **trade))

    def algo_event(self, algo: dict, **filled) -> None:
        """Every change of a stop goes through here, so the protection log sees it."""
        self.emit(algo_update(algo, self.now_ms, **filled))
        self.record_protection(algo["symbol"])

    def record_protection(self, symbol: str) -> None:
        """(now, signed position, qty of working reduce-only stops on its closing side)."""
        qty = self.position(symbol).qty
        closing = "SELL" if qty > 0 else "BUY"
        covered = sum((Decimal(a["quantity"]) for a in self.open_algo_orders(symbol)
                       if a["reduceOnly"] and a["side"] == closing), Decimal(0)) if qty else 0
        entry = (self.now_ms, float(qty), float(covered))
        self.protection_log.append(entry)  # every market's, in one line: one market's runs
        self.protection_logs.setdefault(symbol, []).append(entry)

    # --- prices and time ----------------------------------------------------------------

    def set_price_scripted(self, price: float, symbol: str = "BTCUSDT") -> None:
        with self.lock:
            self.now_ms += 1000
            self.prices[symbol] = Decimal(str(price))
            match(self, symbol)

    def step_scripted(self, symbol: str = "BTCUSDT") -> Decimal:
        with self.lock:
            self.path_index = min(self.path_index + 1, len(self.price_path_scripted) - 1)
            self.set_price_scripted(float(self.price_path_scripted[self.path_index]), symbol)
            return self.prices[symbol]

    def walk_candle(self, ts_open_ms: int, ts_close_ms: int, open_price: float, high: float,
                    low: float, close: float, steps_per_leg: int = 8,
                    symbol: str = "BTCUSDT") -> None:
        """Move the price through one candle: open, the nearer extreme, the other, close, in
        small steps (to 0.1), so stops and limits fire inside it, as on the exchange. The clock
        ends at the candle's close."""
        up = close >= open_price
        points = [open_price, low if up else high, high if up else low, close]
        with self.lock:
            self.now_ms = max(self.now_ms, ts_open_ms)
            self.set_price_scripted(round(open_price, 1), symbol)
            for start, end in zip(points, points[1:], strict=False):
                for step in range(1, steps_per_leg + 1):
                    self.set_price_scripted(
                        round(start + (end - start) * step / steps_per_leg, 1), symbol)
            self.now_ms = max(self.now_ms, ts_close_ms)

    def walk_candles(self, ts_open_ms: int, ts_close_ms: int,
                     candles: Mapping[str, tuple[float, float, float, float]],
                     steps_per_leg: int = 8) -> None:
        """Several markets' candles of one interval at once, step by step in turn (each its
        open, nearer extreme, other extreme, close), so that they move together, as a
        cascade moves the whole market. `candles`: market -> (open, high, low, close)."""
        paths = {}
        for market, (open_price, high, low, close) in candles.items():
            up = close >= open_price
            points = [open_price, low if up else high, high if up else low, close]
            paths[market] = [round(open_price, 1)] + [
                round(start + (end - start) * step / steps_per_leg, 1)
                for start, end in zip(points, points[1:], strict=False)
                for step in range(1, steps_per_leg + 1)]
        with self.lock:
            self.now_ms = max(self.now_ms, ts_open_ms)
            for index in range(max((len(path) for path in paths.values()), default=0)):
                for market, path in paths.items():
                    self.set_price_scripted(path[min(index, len(path) - 1)], market)
            self.now_ms = max(self.now_ms, ts_close_ms)

    def position(self, symbol: str) -> FakePosition:
        return self.account.positions.setdefault(symbol, FakePosition())

    def open_orders(self, symbol: str | None = None) -> list[dict]:
        return [o for o in self.orders.values()
                if o["status"] in OPEN_STATUSES and symbol in (None, o["symbol"])]

    def open_algo_orders(self, symbol: str | None = None) -> list[dict]:
        return [o for o in self.algo_orders.values()
                if o["algoStatus"] == "NEW" and symbol in (None, o["symbol"])]

    # --- orders ---------------------------------------------------------------------------

    def new_order(self, params: dict) -> dict:
        """Accept, then match. The answer is the order as accepted for newOrderRespType ACK
        (Binance's default), its state after matching for RESULT (what ccxt asks for)."""
        with self.lock:
            symbol, order_type = params["symbol"], params["type"]
            if order_type not in ("MARKET", "LIMIT"):
                raise BinanceReject(-4120, "Order type not supported for this endpoint. "
                                           "Please use the Algo Order API endpoints instead.")
            time_in_force = self._checked_time_in_force(order_type, params.get("timeInForce"))
            client_id = params.get("newClientOrderId") or f"fake{self.next_id()}"
            self._check_client_id(client_id, [o["clientOrderId"] for o in self.open_orders()])
            qty = self._checked_qty(symbol, params["quantity"])
            side, reduce_only = params["side"], params.get("reduceOnly") == "true"
            price = Decimal(params["price"]) if order_type == "LIMIT" else Decimal(0)
            if reduce_only:
                self._check_reduces(symbol, side)
                if order_type == "MARKET" and self.reject_next_market_exits > 0:
                    self.reject_next_market_exits -= 1
                    raise BinanceReject(-4131, "The counterparty's best price does not meet "
                                               "the PERCENT_PRICE filter limit.")
            elif order_type == "MARKET":
                self._check_notional(symbol, qty * self.prices[symbol])
            order = self.order_record(symbol, side, order_type, qty, price, client_id,
                                      reduce_only, time_in_force)
            self.orders[order["orderId"]] = order
            accepted = dict(order)
            self.order_event(order, "NEW")
            if order_type == "MARKET":
                fill_taker(self, order)
            elif time_in_force == "IOC":
                fill_taker(self, order, limit=price)
            else:
                match(self, symbol)
            return accepted if params.get("newOrderRespType", "ACK") == "ACK" else dict(order)

    def order_record(self, symbol: str, side: str, order_type: str, qty: Decimal,
                     price: Decimal, client_id: str, reduce_only: bool,
                     time_in_force: str = "GTC") -> dict:
        return {
            "orderId": self.next_id(), "symbol": symbol, "status": "NEW",
            "clientOrderId": client_id, "price": _s(price), "avgPrice": "0", "origQty": _s(qty),
            "executedQty": "0", "cumQuote": "0", "timeInForce": time_in_force,
            "type": order_type, "reduceOnly": reduce_only, "closePosition": False, "side": side,
            "positionSide": "BOTH", "stopPrice": "0", "workingType": "CONTRACT_PRICE",
            "priceProtect": False, "origType": order_type, "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE", "goodTillDate": 0,
            "time": self.now_ms, "updateTime": self.now_ms,
        }

    def find_order(self, symbol: str, order_id: str | None, client_id: str | None) -> dict:
        with self.lock:
            matches = [o for o in self.orders.values() if o["symbol"] == symbol and (
                (order_id and str(o["orderId"]) == str(order_id))
                or (client_id and o["clientOrderId"] == client_id))]
            if not matches:
                raise BinanceReject(-2013, "Order does not exist.")
            return dict(matches[-1])  # Binance answers with the newest order of that client id

    def cancel_order(self, symbol: str, order_id: str | None, client_id: str | None) -> dict:
        with self.lock:
            try:
                order = self.find_order(symbol, order_id, client_id)
            except BinanceReject:
                raise BinanceReject(-2011, "Unknown order sent.") from None
            order = self.orders[order["orderId"]]
            if order["status"] not in OPEN_STATUSES:
                raise BinanceReject(-2011, "Unknown order sent.")
            order.update(status="CANCELED", updateTime=self.now_ms)
            self.order_event(order, "CANCELED")
            return dict(order)

    # --- algo (conditional) orders ----------------------------------------------------------

    def new_algo_order(self, params: dict) -> dict:
        with self.lock:
            symbol, side = params["symbol"], params["side"]
            if params.get("algoType") != "CONDITIONAL" or params["type"] != "STOP_MARKET":
                raise BinanceReject(-1116, "Invalid orderType.")
            client_id = params.get("clientAlgoId") or f"fakealgo{self.next_id()}"
            self._check_client_id(client_id, [o["clientAlgoId"] for o in self.open_algo_orders()])
            if self.reject_next_algo_orders > 0:
                self.reject_next_algo_orders -= 1
                raise BinanceReject(-2021, "Order would immediately trigger.")
            trigger = Decimal(params["triggerPrice"])
            qty = self._checked_qty(symbol, params["quantity"])
            last = self.prices[symbol]
            if (side == "SELL" and trigger >= last) or (side == "BUY" and trigger <= last):
                raise BinanceReject(-2021, "Order would immediately trigger.")
            algo = {
                "algoId": self.next_id(), "clientAlgoId": client_id, "algoType": "CONDITIONAL",
                "orderType": "STOP_MARKET", "symbol": symbol, "side": side,
                "positionSide": "BOTH", "timeInForce": "GTC", "quantity": _s(qty),
                "algoStatus": "NEW", "triggerPrice": _s(trigger), "price": "0",
                "workingType": params.get("workingType", "CONTRACT_PRICE"),
                "priceMatch": "NONE", "closePosition": False, "priceProtect": False,
                "reduceOnly": params.get("reduceOnly") == "true", "createTime": self.now_ms,
                "updateTime": self.now_ms, "triggerTime": 0, "goodTillDate": 0,
                "actualOrderId": "",
            }
            self.algo_orders[algo["algoId"]] = algo
            self.algo_event(algo)
            return dict(algo)

    def find_algo_order(self, algo_id: str | None, client_id: str | None) -> dict:
        with self.lock:
            matches = [o for o in self.algo_orders.values() if
                       (algo_id and str(o["algoId"]) == str(algo_id))
                       or (client_id and o["clientAlgoId"] == client_id)]
            if not matches:
                raise BinanceReject(-2013, "Order does not exist.")
            return dict(matches[-1])

    def cancel_algo_order(self, algo_id: str | None, client_id: str | None) -> dict:
        with self.lock:
            try:
                algo = self.algo_orders[self.find_algo_order(algo_id, client_id)["algoId"]]
            except BinanceReject:
                raise BinanceReject(-2011, "Unknown order sent.") from None
            if algo["algoStatus"] != "NEW":
                raise BinanceReject(-2011, "Unknown order sent.")
            algo.update(algoStatus="CANCELED", updateTime=self.now_ms)
            self.algo_event(algo)
            return {"algoId": algo["algoId"], "clientAlgoId": algo["clientAlgoId"],
                    "code": "200", "msg": "success"}

    # --- account settings ---------------------------------------------------------------

    def set_dual_side(self, dual_side: bool) -> None:
        """POST /fapi/v1/positionSide/dual, refused as Binance refuses it."""
        with self.lock:
            if dual_side == self.dual_side:
                raise BinanceReject(-4059, "No need to change position side.")
            if any(p.qty for p in self.account.positions.values()):
                raise BinanceReject(-4068, "Position side cannot be changed if there exists "
                                           "position.")
            if self.open_orders() or self.open_algo_orders():
                raise BinanceReject(-4067, "Position side cannot be changed if there exists "
                                           "open orders.")
            self.dual_side = dual_side

    def snapshot(self) -> dict:
        """Everything a parent process may want to check, as JSON-ready copies."""
        with self.lock:
            return {
                "now_ms": self.now_ms, "prices": {s: _s(p) for s, p in self.prices.items()},
                "orders": [dict(o) for o in self.orders.values()],
                "algo_orders": [dict(a) for a in self.algo_orders.values()],
                "trades": [dict(t) for t in self.trades],
                "positions": {symbol: {"qty": _s(p.qty), "entry_price": _s(p.entry_price),
                                       "leverage": p.leverage, "margin_type": p.margin_type,
                                       "update_ms": p.update_ms}
                              for symbol, p in self.account.positions.items()},
                "wallet_usdt": _s(self.account.wallet_usdt), "dual_side": self.dual_side,
                "protection_log": [list(entry) for entry in self.protection_log],
                "protection_logs": {market: [list(entry) for entry in log]
                                    for market, log in self.protection_logs.items()},
            }

    # --- checks -----------------------------------------------------------------------------

    def _checked_time_in_force(self, order_type: str, time_in_force: str | None) -> str:
        if order_type == "MARKET":
            return "GTC"  # what Binance shows on a market order
        if not time_in_force:
            raise BinanceReject(-1102, "Mandatory parameter 'timeInForce' was not sent, was "
                                       "empty/null, or malformed.")
        if time_in_force not in TIME_IN_FORCE:
            raise BinanceReject(-1115, "Invalid timeInForce.")
        return time_in_force

    def _check_client_id(self, client_id: str, open_ids: list[str]) -> None:
        if len(client_id) > 36:
            raise BinanceReject(-4015, "Client order id is not valid.")
        if client_id in open_ids:  # Binance keeps client ids unique among OPEN orders only
            raise BinanceReject(-4116, "ClientOrderId is duplicated.")

    def _checked_qty(self, symbol: str, text: str) -> Decimal:
        qty = Decimal(text)
        lot = self.filters[symbol]["LOT_SIZE"]
        if qty < Decimal(lot["minQty"]) or qty % Decimal(lot["stepSize"]) != 0:
            raise BinanceReject(-1111, "Precision is over the maximum defined for this asset.")
        return qty

    def _check_notional(self, symbol: str, notional: Decimal) -> None:
        if notional < Decimal(self.filters[symbol]["MIN_NOTIONAL"]["notional"]):
            raise BinanceReject(-4164, "Order's notional must be no smaller than 100 "
                                       "(unless you choose reduce only).")

    def _check_reduces(self, symbol: str, side: str) -> None:
        pos = self.position(symbol)
        if pos.qty == 0 or (pos.qty > 0) == (side == "BUY"):
            raise BinanceReject(-2022, "ReduceOnly Order is rejected.")


class VenueClock:
    """The fake venue's time, as a Clock (a broker's in tests), and a `sleep` that moves it: a
    client's waits pass on the venue, never on the wall clock."""

    def __init__(self, state: FakeExchangeState) -> None:
        self.state = state

    def now_ms(self) -> int:
        return self.state.now_ms

    def sleep(self, seconds: float) -> None:
        with self.state.lock:
            self.state.now_ms += math.ceil(seconds * 1000)
