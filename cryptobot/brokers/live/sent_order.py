"""What the venue says about one of our orders, in our terms (the gateway's answers), and which
of our orders protect a position (retried and looked up on the shorter schedule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptobot.model import OrderPurpose


@dataclass(frozen=True)
class SentOrder:
    """`status` is the order's, as the venue reports it; `filled_qty` what of it filled: an IOC
    limit that met too little before its limit is "expired" with 0 < filled_qty < its
    quantity."""

    client_id: str
    exchange_order_id: str
    status: str  # open (incl. partly filled and working), filled, canceled, rejected, expired
    filled_qty: float
    avg_price: float | None
    info: dict[str, Any]


PROTECTIVE = (OrderPurpose.STOP, OrderPurpose.FLATTEN)  # resent on the short schedule
# looked up on it: what may have opened a position, or protects one
LOOKED_UP_FAST = (*PROTECTIVE, OrderPurpose.ENTRY)
_STATUS = {"open": "open", "closed": "filled", "canceled": "canceled", "expired": "expired",
           "rejected": "rejected"}


# Binance's own order statuses, in ours (as ccxt's parse_order maps them, then `_STATUS`)
_BINANCE_STATUS = {"NEW": "open", "PARTIALLY_FILLED": "open", "ACCEPTED": "open",
                   "FILLED": "filled", "CANCELED": "canceled", "CANCELLED": "canceled",
                   "REJECTED": "rejected", "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired"}


def sent_from_binance(order: dict[str, Any], client_id: str) -> SentOrder:
    """A Binance USD-M order as the venue answers it (a batchOrders item), read directly: what
    `sent_order` reads from ccxt's parse of it (tests hold the two equal), without ccxt's
    ~0.1 ms of parsing an order."""
    average = float(order.get("avgPrice") or 0.0)
    return SentOrder(client_id, str(order.get("orderId")),
                     _BINANCE_STATUS.get(order.get("status") or "NEW", "open"),
                     float(order.get("executedQty") or 0.0), average or None, order)


def sent_order(order: dict[str, Any], client_id: str) -> SentOrder:
    """A ccxt order structure as a SentOrder."""
    status = _STATUS.get(order.get("status") or "open", "open")
    info = order.get("info") or {}
    if info.get("algoStatus") in ("TRIGGERED", "FINISHED"):
        status = "filled"  # an algo stop that fired: its child market order carries the fill
    return SentOrder(client_id, str(order.get("id")), status, float(order.get("filled") or 0),
                     order.get("average"), info)
