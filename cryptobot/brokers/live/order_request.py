"""One order's request to Binance USD-M, written as ccxt's `create_order` writes it for
binanceusdm, and sent through ccxt's own endpoint method: POST /fapi/v1/order, or for a stop the
algo-order endpoint (POST /fapi/v1/algoOrder, what ccxt uses for `stopLossPrice`), which signs
it (ccxt's HMAC), spends the request budget, sends it and maps the venue's errors exactly as
under `create_order`. What is left out is `create_order`'s own work around that call: its
per-call option handling and its parse of the answer into a unified order (about 0.16 ms of CPU
an order on this machine, as much as the request's signing, sending and reading together); the
answer is read directly (`sent_from_binance`). Tests hold the request item for item equal to
ccxt's, its signed body equal to ccxt's, and the answer's reading equal to ccxt's parse.
"""

from __future__ import annotations

from typing import Any

import ccxt

from cryptobot.brokers.live.sent_order import SentOrder, sent_from_binance
from cryptobot.brokers.live.tick_rounding import TickRounding
from cryptobot.model import OrderIntent, OrderType


def order_request(rounding: TickRounding, intent: OrderIntent, working_type: str
                  ) -> dict[str, Any]:
    """The request ccxt's `create_order` sends for `intent`, in its order: a market or limit
    order under `newClientOrderId`; a stop as a conditional algo order (STOP_MARKET at
    `triggerPrice`, working on `working_type`) under `clientAlgoId`. Raises ccxt's own
    InvalidOrder where ccxt's would (a type the market does not take, a quantity under one
    lot, a limit without its price), and for a stop without its trigger price (ccxt would send
    a market order). Quantity and price as ccxt's amount_to_precision and price_to_precision
    write them (`rounding`)."""
    exchange, symbol = rounding.exchange, intent.symbol
    market = exchange.market(symbol)
    stop = intent.order_type is OrderType.STOP_MARKET
    order_type = intent.order_type.value.upper()
    if order_type not in (market["info"].get("orderTypes") or []):
        raise ccxt.InvalidOrder(
            f"{exchange.id} triggerPrice parameter is not allowed for {symbol} market orders"
            if stop else f"{exchange.id} {intent.order_type.value} is not a valid order type "
                         f"for the {symbol} market")
    if intent.price is None and intent.order_type is not OrderType.MARKET:  # ccxt: a limit's
        raise ccxt.InvalidOrder(  # refusal; a stop without its trigger would go as a market
            f"{exchange.id} createOrder() requires a {'triggerPrice' if stop else 'price'} "
            f"for a {order_type} order")
    request: dict[str, Any] = {
        "symbol": market["id"], "side": intent.side.value.upper(),
        "clientAlgoId" if stop else "newClientOrderId": intent.client_id,
        "newOrderRespType": "RESULT", "type": order_type,
        "quantity": rounding.amount(symbol, intent.qty_base)}
    if intent.order_type is OrderType.LIMIT:
        request["price"] = rounding.price(symbol, intent.price)
    elif stop:
        request["triggerPrice"] = rounding.price(symbol, intent.price)
    if intent.reduce_only:
        request["reduceOnly"] = True
    if intent.order_type is OrderType.LIMIT:
        request["timeInForce"] = intent.time_in_force or "GTC"
    elif stop:
        request["workingType"] = working_type
        request["algoType"] = "CONDITIONAL"
    return request


_ANSWERED = ("orderId", "algoId", "strategyId", "code")  # an answer names the order, or an error


def post_order(exchange: ccxt.Exchange, intent: OrderIntent, request: dict[str, Any]
               ) -> SentOrder:
    """Send `request` (signed afresh: a new timestamp) and read the venue's answer. An answer
    that is no order (empty, not JSON, an object with neither an order id nor an error code)
    is raised as a lost one (ccxt.NetworkError): the gateway looks the order up before
    anything is sent again."""
    post = (exchange.fapiPrivatePostAlgoOrder if intent.order_type is OrderType.STOP_MARKET
            else exchange.fapiPrivatePostOrder)
    answer = post(dict(request))
    if not isinstance(answer, dict) or all(answer.get(key) in (None, "") for key in _ANSWERED):
        raise ccxt.NetworkError(f"{exchange.id} answered {str(answer)[:200]!r} to the order "
                                f"{intent.client_id}")
    return sent_from_binance(answer, intent.client_id)
