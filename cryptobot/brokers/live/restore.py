"""After a restart: hand the engine the open position the live broker's reconciled state holds.

The engine takes it over with its stop (the working stop order, else the stored planned stop),
its entry size and fees (from the recorded entry fills, so it knows whether TP1 has filled), the
stop numbering so far (a restored trade never reuses a stop's client id), and the highest signal
close since it opened (from the warm-up candles, for the trailing stop).
"""

from __future__ import annotations

import logging
from typing import Protocol

from cryptobot.brokers.live.state import OPEN_STATUSES, LiveState
from cryptobot.model import Candle, OrderPurpose, OrderType, Position

log = logging.getLogger("cryptobot.live.restore")


class PositionTaker(Protocol):
    """The engine, as far as a restore needs it."""

    symbol: str

    def restore_position(self, position: Position, *, entry_qty_base: float | None = None,
                         entry_fee_usdt: float = 0.0, stop_count: int | None = None,
                         highest_close: float = float("-inf")) -> None: ...


def restore_open_position(engine: PositionTaker, state: LiveState, warm_candles: list[Candle],
                          signal_ms: int) -> str | None:
    """Hand the engine the stored open position in its symbol, if there is one; returns its
    signal id (None when there is none, or when no stop price is known)."""
    for stored in state.positions():
        if stored.symbol != engine.symbol:
            continue
        orders = state.orders(signal_id=stored.signal_id)
        stops = [row for row in orders if row.status in OPEN_STATUSES
                 and row.order_type == OrderType.STOP_MARKET.value]
        stop_price = stops[-1].price if stops else stored.stop_price
        if stop_price is None:
            log.warning("%s: no stop price known; left to the broker's protection",
                        stored.signal_id)
            return None
        entries = [f for f in state.fills(stored.signal_id)
                   if f.purpose == OrderPurpose.ENTRY.value]
        closes = [c.close for c in warm_candles if c.ts_close_ms % signal_ms == 0
                  and c.ts_close_ms - signal_ms >= stored.opened_ms]
        engine.restore_position(
            Position(stored.symbol, stored.qty_base, stored.entry_price, float(stop_price),
                     stored.opened_ms, stored.signal_id),
            entry_qty_base=sum(float(f.qty_base) for f in entries) or None,
            entry_fee_usdt=sum(float(f.fee_usdt) for f in entries),
            stop_count=max((stop_number(row.client_id) for row in orders), default=0),
            highest_close=max(closes, default=float("-inf")))
        return stored.signal_id
    return None


def stop_number(client_id: str) -> int:
    """`<signal>-stop7` -> 7 (other legs: 0), so a restored trade never reuses a stop's id."""
    leg = client_id.rsplit("-", 1)[-1]
    return int(leg[4:]) if leg.startswith("stop") and leg[4:].isdigit() else 0
