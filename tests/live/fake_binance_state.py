"""Order, algo-order and position state of the fake Binance USD-M account.

Prices move only when a test says so (`set_price_scripted` / `step_scripted`); each move
triggers stops and fills resting limits the way Binance does in one-way mode. Payloads are
shaped like the recorded responses in tests/fixtures/binance/http_json/. Every order change is
also pushed to `listeners` as a user-data-stream event (fake_binance_events.py).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tests.live.fake_binance_events import algo_update, order_trade_update

REPO_ROOT = Path(__file__).resolve().parents[2]
EXCHANGE_INFO_PATH = REPO_ROOT / "data" / "exchange" / "binance_usdm_exchange_info.json"
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}
TAKER_FEE = Decimal("0.0005")
MAKER_FEE = Decimal("0.0002")


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


def _s(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


class FakeExchangeState:
    """Everything the fake venue remembers. Thread-safe: handlers and tests share it."""

    def __init__(self, price_path_scripted: list[float], now_ms: int = 1_722_816_000_000) -> None:
        self.exchange_info = json.loads(EXCHANGE_INFO_PATH.read_text())
        self.filters = {s["symbol"]: {f["filterType"]: f for f in s["filters"]}
                        for s in self.exchange_info["symbols"]}
        self.price_path_scripted = [Decimal(str(p)) for p in price_path_scripted]
        self.path_index = 0
        self.prices: dict[str, Decimal] = {"BTCUSDT": self.price_path_scripted[0]}
        self.now_ms = now_ms
        self.account = FakeAccount()
        self.orders: dict[int, dict] = {}
        self.algo_orders: dict[int, dict] = {}
        self.trades: list[dict] = []
        self.lock = threading.RLock()
        self._ids = itertools.count(8_000_000_001)
        self.reject_next_algo_orders = 0  # tests: how many stop placements to refuse
        self.requests: list[tuple[str, str]] = []  # (method, path) of every call, for tests
        self.listeners: list = []  # callables fed each user-stream event (the websocket hub)
        self.user_events: list[dict] = []  # every event pushed, for tests
        self.listen_keys: dict[str, int] = {}  # key -> last POST/PUT ms
        self.listen_key_calls: list[tuple[str, int]] = []  # (method, now_ms)
        self.refuse_listen_key = False  # tests: answer POST listenKey with -2015

    def emit(self, event: dict) -> None:
        with self.lock:
            self.user_events.append(event)
            for listener in list(self.listeners):
                listener(event)

    def _order_event(self, order: dict, execution_type: str, **trade) -> None:
        self.emit(order_trade_update(order, execution_type, self.now_ms, **trade))

    def _algo_event(self, algo: dict, **filled) -> None:
        self.emit(algo_update(algo, self.now_ms, **filled))

    # --- the scripted price path ---------------------------------------------------------

    def set_price_scripted(self, price: float, symbol: str = "BTCUSDT") -> None:
        with self.lock:
            self.now_ms += 1000
            self.prices[symbol] = Decimal(str(price))
            self._match(symbol)

    def step_scripted(self, symbol: str = "BTCUSDT") -> Decimal:
        with self.lock:
            self.path_index = min(self.path_index + 1, len(self.price_path_scripted) - 1)
            self.set_price_scripted(float(self.price_path_scripted[self.path_index]), symbol)
            return self.prices[symbol]

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
        with self.lock:
            symbol, order_type = params["symbol"], params["type"]
            if order_type not in ("MARKET", "LIMIT"):
                raise BinanceReject(-4120, "Order type not supported for this endpoint. "
                                           "Please use the Algo Order API endpoints instead.")
            client_id = params.get("newClientOrderId") or f"fake{next(self._ids)}"
            self._check_client_id(client_id, [o["clientOrderId"] for o in self.open_orders()])
            qty = self._checked_qty(symbol, params["quantity"])
            side, reduce_only = params["side"], params.get("reduceOnly") == "true"
            price = Decimal(params["price"]) if order_type == "LIMIT" else Decimal(0)
            if reduce_only:
                self._check_reduces(symbol, side)
            elif order_type == "MARKET":
                self._check_notional(symbol, qty * self.prices[symbol])
            order = self._order_record(symbol, side, order_type, qty, price, client_id, reduce_only)
            self.orders[order["orderId"]] = order
            self._order_event(order, "NEW")
            if order_type == "MARKET":
                self._fill(order, self.prices[symbol], is_maker=False)
            else:
                self._match(symbol)
            return dict(order)

    def _order_record(self, symbol, side, order_type, qty, price, client_id, reduce_only) -> dict:
        return {
            "orderId": next(self._ids), "symbol": symbol, "status": "NEW",
            "clientOrderId": client_id, "price": _s(price), "avgPrice": "0", "origQty": _s(qty),
            "executedQty": "0", "cumQuote": "0", "timeInForce": "GTC", "type": order_type,
            "reduceOnly": reduce_only, "closePosition": False, "side": side,
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
            return matches[-1]  # Binance answers with the newest order of that client id

    def cancel_order(self, symbol: str, order_id: str | None, client_id: str | None) -> dict:
        with self.lock:
            try:
                order = self.find_order(symbol, order_id, client_id)
            except BinanceReject:
                raise BinanceReject(-2011, "Unknown order sent.") from None
            if order["status"] not in OPEN_STATUSES:
                raise BinanceReject(-2011, "Unknown order sent.")
            order.update(status="CANCELED", updateTime=self.now_ms)
            self._order_event(order, "CANCELED")
            return dict(order)

    # --- algo (conditional) orders ----------------------------------------------------------

    def new_algo_order(self, params: dict) -> dict:
        with self.lock:
            symbol, side = params["symbol"], params["side"]
            if params.get("algoType") != "CONDITIONAL" or params["type"] != "STOP_MARKET":
                raise BinanceReject(-1116, "Invalid orderType.")
            client_id = params.get("clientAlgoId") or f"fakealgo{next(self._ids)}"
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
                "algoId": next(self._ids), "clientAlgoId": client_id, "algoType": "CONDITIONAL",
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
            self._algo_event(algo)
            return dict(algo)

    def find_algo_order(self, algo_id: str | None, client_id: str | None) -> dict:
        with self.lock:
            matches = [o for o in self.algo_orders.values() if
                       (algo_id and str(o["algoId"]) == str(algo_id))
                       or (client_id and o["clientAlgoId"] == client_id)]
            if not matches:
                raise BinanceReject(-2013, "Order does not exist.")
            return matches[-1]

    def cancel_algo_order(self, algo_id: str | None, client_id: str | None) -> dict:
        with self.lock:
            try:
                algo = self.find_algo_order(algo_id, client_id)
            except BinanceReject:
                raise BinanceReject(-2011, "Unknown order sent.") from None
            if algo["algoStatus"] != "NEW":
                raise BinanceReject(-2011, "Unknown order sent.")
            algo.update(algoStatus="CANCELED", updateTime=self.now_ms)
            self._algo_event(algo)
            return {"algoId": algo["algoId"], "clientAlgoId": algo["clientAlgoId"],
                    "code": "200", "msg": "success"}

    # --- matching ---------------------------------------------------------------------------

    def _match(self, symbol: str) -> None:
        last = self.prices[symbol]
        for algo in self.open_algo_orders(symbol):
            trigger = Decimal(algo["triggerPrice"])
            hit = last <= trigger if algo["side"] == "SELL" else last >= trigger
            if not hit:
                continue
            algo.update(algoStatus="TRIGGERED", triggerTime=self.now_ms, updateTime=self.now_ms)
            qty = Decimal(algo["quantity"])
            if algo["reduceOnly"]:
                qty = min(qty, abs(self.position(symbol).qty))
            if qty <= 0:
                algo["algoStatus"] = "EXPIRED"
                self._algo_event(algo)
                continue
            child = self._order_record(symbol, algo["side"], "MARKET", qty, Decimal(0),
                                       algo["clientAlgoId"], algo["reduceOnly"])
            child["origType"] = "STOP_MARKET"
            child["stopPrice"] = algo["triggerPrice"]
            self.orders[child["orderId"]] = child
            algo["actualOrderId"] = str(child["orderId"])
            self._algo_event(algo)  # TRIGGERED, with the market order's id in `ai`
            self._order_event(child, "NEW")
            self._fill(child, last, is_maker=False)  # a gap fills at the first price past it
            algo["algoStatus"] = "FINISHED"
            self._algo_event(algo, avg_price=Decimal(child["avgPrice"]),
                             filled_qty=Decimal(child["executedQty"]))
        for order in self.open_orders(symbol):
            if order["type"] != "LIMIT":
                continue
            limit = Decimal(order["price"])
            sell = order["side"] == "SELL"
            if (sell and last >= limit) or (not sell and last <= limit):
                self._fill(order, limit, is_maker=True)

    def _fill(self, order: dict, price: Decimal, is_maker: bool) -> None:
        symbol, pos = order["symbol"], self.position(order["symbol"])
        qty = Decimal(order["origQty"]) - Decimal(order["executedQty"])
        signed = qty if order["side"] == "BUY" else -qty
        if order["reduceOnly"]:
            if pos.qty == 0 or (pos.qty > 0) == (signed > 0):
                order.update(status="EXPIRED", updateTime=self.now_ms)
                self._order_event(order, "EXPIRED")
                return
            signed = max(-abs(pos.qty), min(abs(pos.qty), signed))
            qty = abs(signed)
        realized = Decimal(0)
        if pos.qty and (pos.qty > 0) != (signed > 0):
            closed = min(abs(pos.qty), abs(signed))
            direction = 1 if pos.qty > 0 else -1
            realized = (price - pos.entry_price) * closed * direction
        else:
            total = abs(pos.qty) + qty
            pos.entry_price = (pos.entry_price * abs(pos.qty) + price * qty) / total
        pos.qty += signed
        if pos.qty == 0:
            pos.entry_price = Decimal(0)
        pos.update_ms = self.now_ms
        fee = price * qty * (MAKER_FEE if is_maker else TAKER_FEE)
        self.account.wallet_usdt += realized - fee
        executed = Decimal(order["executedQty"]) + qty
        order.update(status="FILLED", executedQty=_s(executed), avgPrice=_s(price),
                     cumQuote=_s(price * executed), updateTime=self.now_ms)
        trade_id = next(self._ids)
        self.trades.append({
            "buyer": order["side"] == "BUY", "commission": _s(fee), "commissionAsset": "USDT",
            "id": trade_id, "maker": is_maker, "orderId": order["orderId"],
            "price": _s(price), "qty": _s(qty), "quoteQty": _s(price * qty),
            "realizedPnl": _s(realized), "side": order["side"], "positionSide": "BOTH",
            "symbol": symbol, "time": self.now_ms,
        })
        self._order_event(order, "TRADE", trade_id=trade_id, last_qty=_s(qty),
                          last_price=_s(price), fee=_s(fee), is_maker=is_maker,
                          realized=_s(realized))
        if pos.qty == 0:  # Binance expires reduce-only limits once the position is gone
            for other in self.open_orders(symbol):
                if other["reduceOnly"]:
                    other.update(status="EXPIRED", updateTime=self.now_ms)
                    self._order_event(other, "EXPIRED")

    # --- checks -----------------------------------------------------------------------------

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
