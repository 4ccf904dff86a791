"""The live broker's side of the user data stream: venue events -> recorded fills and statuses.

- A TRADE execution becomes a fill at once, through the same `ingest_trade` as REST polling
  (one record per exchange trade id, whichever path sees it first).
- A stop that fires runs as a new market order with its own order id; ALGO_UPDATE's `ai` tells
  which, so its fill is matched to our stop without a REST look-up.
- CANCELED / EXPIRED / REJECTED of an order we think is working updates its status. A stop that
  finished without filling (its market order was refused) leaves the position unprotected, so
  the next candle reconciles (which re-places a stop).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.state import OPEN_STATUSES, LiveOrderRow, LiveState
from cryptobot.clock import Clock
from cryptobot.exchange.binance_user_stream import AlgoUpdate, OrderUpdate, StreamFill
from cryptobot.model import Fill, OrderIntent, OrderType

log = logging.getLogger("cryptobot.live.stream")
_ENDED = {"CANCELED": "canceled", "EXPIRED": "expired", "EXPIRED_IN_MATCH": "expired",
          "REJECTED": "rejected"}


class StreamFedBroker(Protocol):
    """What applying a user-stream event needs from the broker."""

    clock: Clock
    state: LiveState
    gateway: OrderGateway
    algo_children: dict[str, str]  # a fired stop's market order id -> our stop's client id

    def ingest_trade(self, symbol: str, trade: dict[str, Any], source: str,
                     row: LiveOrderRow | None = None) -> Fill | None: ...

    def report_order(self, intent: OrderIntent, status: str, detail: str = "",
                     filled_qty: float | None = None) -> None: ...

    def reconcile_soon(self) -> None: ...


def apply_user_event(broker: StreamFedBroker, event: object) -> None:
    if isinstance(event, StreamFill):
        _fill(broker, event)
    elif isinstance(event, AlgoUpdate):
        _algo(broker, event)
    elif isinstance(event, OrderUpdate):
        _order(broker, event)


def _fill(broker: StreamFedBroker, event: StreamFill) -> None:
    symbol = broker.gateway.symbol_of(event.market_id)
    if symbol is None or broker.state.has_fill(event.trade_id):
        return
    trade = {"id": event.trade_id, "order": event.exchange_order_id, "timestamp": event.ts_ms,
             "side": event.side, "price": event.price, "amount": event.qty_base,
             "fee": {"cost": event.fee, "currency": event.fee_asset},
             "takerOrMaker": "maker" if event.is_maker else "taker"}
    row = broker.state.order(event.client_id)
    if row is not None and row.symbol != symbol:
        row = None
    broker.ingest_trade(symbol, trade, "stream", row)


def _algo(broker: StreamFedBroker, event: AlgoUpdate) -> None:
    if event.actual_order_id:
        broker.algo_children[event.actual_order_id] = event.client_algo_id
    row = broker.state.order(event.client_algo_id)
    if row is None or row.order_type != OrderType.STOP_MARKET.value:
        return
    if event.status in ("TRIGGERING", "TRIGGERED"):
        log.info("stop %s %s at %g", row.client_id, event.status.lower(), event.trigger_price)
        return
    status = _ENDED.get(event.status)
    if event.status == "FINISHED" and event.filled_qty <= 0:
        status = "expired"  # fired, but its market order did not fill
    if status is None or row.status not in OPEN_STATUSES:
        return
    _ended(broker, row, status, f"{event.status} {event.reason}".strip())
    if status != "canceled":
        log.warning("stop %s ended without a fill (%s); reconciling on the next candle",
                    row.client_id, event.status, extra={"event": "protection"})
        broker.reconcile_soon()


def _order(broker: StreamFedBroker, event: OrderUpdate) -> None:
    row = broker.state.order(event.client_id)
    status = _ENDED.get(event.order_status)
    if row is None or status is None or row.status not in OPEN_STATUSES \
            or row.order_type == OrderType.STOP_MARKET.value:  # a stop's status is its algo's
        return
    _ended(broker, row, status, event.execution_type)


def _ended(broker: StreamFedBroker, row: LiveOrderRow, status: str, detail: str) -> None:
    broker.state.update_order(row.client_id, broker.clock.now_ms(), status=status,
                              detail=f"user stream: {detail}")
    # the engine knows submitted/open/canceled/rejected/filled: an expiry is a cancel to it
    broker.report_order(row.intent(), "canceled" if status == "expired" else status, detail)
