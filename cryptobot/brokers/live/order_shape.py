"""An order made sendable before the live broker writes and sends it: lot and tick rounded, the
market's minimum notional checked, and a market entry turned into a price-capped limit IOC."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.errors import OrderRejectedError
from cryptobot.model import OrderIntent, OrderType, PositionSide

ReferencePrice = Callable[[str], float]  # symbol -> the price an order is judged against


def rounded(gateway: OrderGateway, intent: OrderIntent,
            reference_price: ReferencePrice) -> OrderIntent:
    """Quantity down to the lot, price to the tick; an opening order under the market's minimum
    notional (or a quantity under one lot) is refused before it is sent."""
    qty = gateway.round_qty(intent.symbol, intent.qty_base)
    if qty <= 0:
        raise OrderRejectedError(f"{intent.client_id}: quantity {intent.qty_base} rounds to 0")
    price = None if intent.price is None else gateway.round_price(intent.symbol, intent.price)
    if not intent.reduce_only:
        reference = price or reference_price(intent.symbol)
        minimum = gateway.min_notional_usdt(intent.symbol)
        if qty * reference < minimum:
            raise OrderRejectedError(
                f"{intent.client_id}: notional {qty * reference:.2f} USDT is below the "
                f"market minimum {minimum:g} USDT")
    if qty == intent.qty_base and price == intent.price:
        return intent  # on the lot and the tick already (the engine's orders): no copy
    return replace(intent, qty_base=qty, price=price)


def price_capped(gateway: OrderGateway, intent: OrderIntent, slippage_bps: float,
                 reference_price: ReferencePrice) -> OrderIntent:
    """A market entry as a limit IOC at most `slippage_bps` worse than the reference price:
    above it for a buy, below it for a sell (0: left a market order)."""
    if intent.order_type is not OrderType.MARKET or slippage_bps <= 0:
        return intent
    sign = PositionSide.of(intent.side).sign
    cap = reference_price(intent.symbol) * (1.0 + sign * slippage_bps / 10_000.0)
    return replace(intent, order_type=OrderType.LIMIT, time_in_force="IOC",
                   price=gateway.round_price(intent.symbol, cap))
