"""What ccxt's own `create_order` is called with for one of our orders: the reference the
gateway's request (brokers/live/order_request.py) is held equal to."""

from __future__ import annotations

from typing import Any

from cryptobot.model import OrderIntent, OrderType


def ccxt_order_args(exchange: Any, intent: OrderIntent, working_type: str = "CONTRACT_PRICE"
                    ) -> tuple[str, str, str, float, str | None, dict[str, Any]]:
    """(symbol, type, side, amount, price, params) of ccxt's create_order for `intent`, as the
    gateway called it before it wrote the request itself: a stop is a market order with
    `stopLossPrice` (ccxt sends it to the algo-order endpoint), under our client id."""
    symbol = intent.symbol
    amount = float(exchange.amount_to_precision(symbol, intent.qty_base))
    params: dict[str, Any] = {"clientOrderId": intent.client_id}
    if intent.reduce_only:
        params["reduceOnly"] = True
    price = None
    if intent.order_type is OrderType.LIMIT:
        params["timeInForce"] = intent.time_in_force or "GTC"
        price = exchange.price_to_precision(symbol, intent.price)
    elif intent.order_type is OrderType.STOP_MARKET:
        params["stopLossPrice"] = exchange.price_to_precision(symbol, intent.price)
        params["workingType"] = working_type
    order_type = "limit" if intent.order_type is OrderType.LIMIT else "market"
    return symbol, order_type, intent.side.value, amount, price, params
